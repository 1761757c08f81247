"""The sink interface (setup, send, close) and an in-memory list sink for tests and --dry-run."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from trucewatch.errors import SinkError
from trucewatch.schema import Alert


@runtime_checkable
class Sink(Protocol):
    """Something alerts are delivered to. ``send`` raises SinkError (with ``sink``, ``alert_id`` and, when
    rate-limited, ``retry_after`` seconds; ``permanent`` when retrying cannot help) and nothing else."""

    name: str

    def setup(self) -> None:
        """Prepare (connect, check configuration); may raise SinkError."""

    def send(self, alert: Alert) -> None:
        """Deliver one alert; returns once the far end has accepted it."""

    def close(self) -> None:
        """Release resources; never raises."""


@runtime_checkable
class DigestSink(Sink, Protocol):
    """A sink that can also deliver several alerts as one summary message."""

    def send_digest(self, alerts: Sequence[Alert], period: str) -> None:
        """Deliver one digest of ``alerts`` for ``period`` (e.g. ``daily``)."""


class ListSink:
    """Appends every alert it is sent to ``self.sent`` (and digests to ``self.digests``).

    ``fail`` makes the next N sends raise SinkError (``retry_after`` when given) for failure tests.
    """

    def __init__(self, name: str = "list", fail: int = 0, retry_after: float | None = None) -> None:
        self.name = name
        self.sent: list[Alert] = []
        self.digests: list[tuple[str, list[Alert]]] = []
        self.fail = fail
        self.retry_after = retry_after
        self.attempts = 0
        self.closed = False

    def setup(self) -> None:
        """Nothing to prepare."""

    def _maybe_fail(self, alert_id: str | None) -> None:
        self.attempts += 1
        if self.fail > 0:
            self.fail -= 1
            raise SinkError(f"{self.name}: simulated failure", sink=self.name, alert_id=alert_id,
                            retry_after=self.retry_after)

    def send(self, alert: Alert) -> None:
        """Record ``alert`` (or fail, see ``fail``)."""
        self._maybe_fail(alert.id)
        self.sent.append(alert)

    def send_digest(self, alerts: Sequence[Alert], period: str) -> None:
        """Record one digest."""
        self._maybe_fail(None)
        self.digests.append((period, list(alerts)))

    def close(self) -> None:
        """Mark closed."""
        self.closed = True
