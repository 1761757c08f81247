"""The one error tree of trucewatch; every error carries its context as attributes.

    TrucewatchError
    ├── ConfigError          (path, line, entry)      bad settings or YAML knowledge/config files
    ├── DecodeError          (model)                  a message that is not valid JSON / schema
    ├── BrokerError          (bootstrap)              the broker cannot be started or reached
    │   └── BrokerLostError                          the embedded broker died (a new, empty cluster)
    ├── PublishError         (topic, key)             a message could not be handed to the broker
    │   └── BufferFullError                          the producer's bounded buffer is full
    ├── FeedError            (feed_url, kind)         one feed failed this cycle (the others go on)
    ├── InputError           (path, line)             an input file/record that cannot be read
    ├── StoreError           (url)                    the alert store failed
    └── SinkError            (sink, alert_id, retry_after)  a notifier failed to deliver one alert
"""

from __future__ import annotations

from typing import Any


class TrucewatchError(Exception):
    """Base of every trucewatch error. Keyword arguments become attributes."""

    def __init__(self, message: str, **context: Any) -> None:
        super().__init__(message)
        self.message = message
        self.context = context
        for k, v in context.items():
            setattr(self, k, v)

    def __str__(self) -> str:
        return self.message


class ConfigError(TrucewatchError):
    """A settings value or config file is wrong; names the file, line and entry when known."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None,
                 entry: str | None = None) -> None:
        where = ""
        if path:
            where = f"{path}:{line}: " if line else f"{path}: "
        if entry:
            where += f"{entry}: "
        super().__init__(where + message, path=path, line=line, entry=entry)


class DecodeError(TrucewatchError):
    """A message failed to decode or validate."""


class BrokerError(TrucewatchError):
    """The Kafka broker could not be started or reached."""


class BrokerLostError(BrokerError):
    """The embedded broker died; its replacement is a new, empty cluster."""


class PublishError(TrucewatchError):
    """A message could not be published."""


class BufferFullError(PublishError):
    """The producer's bounded send buffer is full."""


class FeedError(TrucewatchError):
    """One feed failed (timeout, HTTP status, size, unusable XML...)."""


class InputError(TrucewatchError):
    """One input record or file could not be read."""


class StoreError(TrucewatchError):
    """The alert store failed."""


class SinkError(TrucewatchError):
    """A sink failed to deliver an alert; ``retry_after`` seconds when rate-limited."""

    def __init__(self, message: str, *, sink: str, alert_id: str | None = None,
                 retry_after: float | None = None, permanent: bool = False) -> None:
        super().__init__(message, sink=sink, alert_id=alert_id, retry_after=retry_after,
                         permanent=permanent)
