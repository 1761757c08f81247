"""The delivery loop: drains the store's notification outbox into Slack/email, with retries and pacing.

Each outbox row (alert id x channel) goes pending -> sent. The send happens first, the state commit
second, so a crash between the two re-sends that one notification after restart (the only source
of duplicates; see docs/notifications.md). A failure leaves the row pending with a backoff
(``Retry-After`` when the channel gave one); all state is in the store, so it survives restarts.

Run it inside the sink process (``start_delivery_thread``) or alone: ``python -m sinks.delivery``.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sinks.base import Sink
from sinks.metrics import Metrics, build_metrics
from sinks.routing import Channel, RoutingConfig, config_path, configured_channels, load_config
from sinks.store import AlertStore, OutboxItem, open_store
from trucewatch.errors import SinkError, StoreError, TrucewatchError
from trucewatch.schema import Alert, AlertLink, Visit, alert_id, utcnow
from trucewatch.settings import Settings, load_settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff for failed notifications: base, base*factor, ... capped at ``cap`` seconds."""

    base: float = 5.0
    factor: float = 2.0
    cap: float = 900.0

    def delay(self, attempts: int) -> float:
        """Seconds to wait after the ``attempts``-th failed attempt (1-based)."""
        return float(min(self.cap, self.base * self.factor ** max(0, attempts - 1)))


@dataclass
class RateLimiter:
    """Token bucket: at most ``per_minute`` sends a minute (bursts up to ``burst``)."""

    per_minute: float
    burst: float = 0.0
    tokens: float = field(default=-1.0)
    stamp: float = 0.0

    def __post_init__(self) -> None:
        self.burst = self.burst or max(1.0, min(self.per_minute, 5.0))
        self.tokens = self.burst

    def take(self, now: float) -> bool:
        """Spend one token if available at monotonic time ``now``."""
        if self.stamp:
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.per_minute / 60.0)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class Delivery:
    """Drains the outbox of each channel that has a notifier. I/O (store, notifiers, clock) is injected."""

    def __init__(self, store: AlertStore, notifiers: Mapping[str, Sink], metrics: Metrics | None = None, *,
                 channels: Mapping[str, Channel] | None = None, backoff: Backoff | None = None,
                 batch: int = 50, clock: Any = utcnow, monotonic: Any = time.monotonic) -> None:
        self.store = store
        self.notifiers = dict(notifiers)
        self.metrics = metrics or build_metrics()
        self.channels = dict(channels or {})
        self.backoff = backoff or Backoff()
        self.batch = batch
        self.clock = clock
        self.monotonic = monotonic
        self.limiters = {name: RateLimiter(ch.rate_per_minute) for name, ch in self.channels.items()
                         if ch.rate_per_minute}
        self.sent = 0
        self.failed = 0
        self.stop = threading.Event()  # set by run()'s caller; ends the wait for a store that is down
        self.sleep = self.stop.wait

    def run_once(self) -> int:
        """One pass over every channel; returns how many notifications were delivered. Raises StoreError."""
        delivered = 0
        for name, notifier in self.notifiers.items():
            ch = self.channels.get(name)
            if ch is not None and ch.digest:
                delivered += self._digest(name, notifier, ch)
            else:
                delivered += self._drain(name, notifier)
            self.metrics.outbox_pending.labels(name).set(self.store.pending_count(name))
        return delivered

    def _drain(self, name: str, notifier: Sink) -> int:
        delivered = 0
        limiter = self.limiters.get(name)
        for item in self.store.due(name, self.clock(), self.batch):
            if limiter is not None and not limiter.take(self.monotonic()):
                break  # the rest waits in the outbox for the next pass
            alert = self.store.get_alert(item.alert_id)
            if alert is None:
                self.store.mark_failed(item.alert_id, name, "alert not in store", None, now=self.clock(),
                                       permanent=True)
                continue
            if item.revision > 1:
                alert = alert.model_copy(update={"kind": "visit_update"})  # a rolled-up update of a sent visit
            try:
                notifier.send(alert)
            except Exception as e:  # noqa: BLE001 - one bad notification never stops the loop
                self._failed(name, item, e)
                continue
            # the duplicate window: the far end has the message, the store does not know yet
            self._mark_sent(item.alert_id, name, item.revision)
            self.metrics.notifications_sent.labels(name).inc()
            self.sent += 1
            delivered += 1
        return delivered

    def _digest(self, name: str, notifier: Sink, ch: Channel) -> int:
        now = self.clock()
        boundary = ch.digest_boundary(now) or now
        items = [i for i in self.store.due(name, now, 1000) if i.created_at <= boundary or i.attempts > 0]
        if not items:
            return 0
        alerts = [a for a in (self.store.get_alert(i.alert_id) for i in items) if a is not None]
        send_digest = getattr(notifier, "send_digest", None)
        try:
            if send_digest is None:
                raise SinkError(f"{name}: this channel cannot send digests", sink=name, permanent=True)
            send_digest(alerts, ch.digest or "")
        except Exception as e:  # noqa: BLE001
            for item in items:
                self._failed(name, item, e)
            return 0
        for item in items:
            self._mark_sent(item.alert_id, name, item.revision)
        self.metrics.notifications_sent.labels(name).inc()
        self.sent += 1
        return 1

    def _mark_sent(self, alert_id: str, name: str, revision: int) -> None:
        """Record a delivered notification, waiting out a store outage: giving up here would leave the row
        pending and send it a second time once the store is back. Raises StoreError only when stopping."""
        wait = 0.5
        while True:
            try:
                self.store.mark_sent(alert_id, name, revision=revision, now=self.clock())
                return
            except StoreError as e:
                if self.stop.is_set():
                    raise
                log.error("delivery: %s sent alert %s but the store is unavailable (%s); recording it again in "
                          "%.1fs", name, alert_id, e, wait)
                self.sleep(wait)
                wait = min(wait * 2, 10.0)

    def _failed(self, name: str, item: OutboxItem, e: Exception) -> None:
        self.failed += 1
        self.metrics.notifications_failed.labels(name).inc()
        if isinstance(e, SinkError):
            msg, permanent = str(e), bool(e.context.get("permanent"))
            retry_after = e.context.get("retry_after")
        else:
            redact = getattr(self.notifiers.get(name), "redact", str)
            msg, permanent, retry_after = redact(f"{type(e).__name__}: {e}"), False, None
        wait = max(retry_after or 0.0, self.backoff.delay(item.attempts + 1))
        next_attempt = None if permanent else self.clock() + timedelta(seconds=wait)
        log.warning("%s: alert %s not delivered (attempt %s): %s; %s", name, item.alert_id, item.attempts + 1, msg,
                    "giving up" if permanent else f"next try in {wait:.0f}s")
        self.store.mark_failed(item.alert_id, name, msg, next_attempt, now=self.clock(), permanent=permanent)

    def idle_seconds(self, poll: float) -> float:
        """How long to sleep before the next pass: until the next due row, at most ``poll``."""
        now = self.clock()
        nexts = [d for d in (self.store.next_due(n) for n in self.notifiers) if d is not None]
        if not nexts:
            return poll
        return float(max(0.0, min(poll, (min(nexts) - now).total_seconds())))

    def run(self, stop: threading.Event, poll: float = 1.0) -> None:
        """Deliver until ``stop`` is set; store failures are logged and retried with backoff."""
        self.stop, self.sleep = stop, stop.wait
        for notifier in self.notifiers.values():
            try:
                notifier.setup()
            except SinkError as e:
                log.error("%s", e)
        backoff = 0.5
        while not stop.is_set():
            try:
                busy = self.run_once() > 0
                wait = 0.0 if busy else self.idle_seconds(poll)
                backoff = 0.5
            except StoreError as e:
                log.error("delivery: store unavailable (%s); retrying in %.1fs", e, backoff)
                wait, backoff = backoff, min(backoff * 2, 10.0)
            except Exception:  # a bug must not silently end delivery: log it and keep going
                log.exception("delivery: unexpected error; retrying in %.1fs", backoff)
                wait, backoff = backoff, min(backoff * 2, 10.0)
            if wait:
                stop.wait(wait)
        for notifier in self.notifiers.values():
            notifier.close()


def build_notifiers(settings: Settings, config: RoutingConfig, names: set[str] | frozenset[str] | None = None
                    ) -> dict[str, Sink]:
    """Notifiers for the enabled, configured channels of ``config`` (or just ``names``)."""
    import httpx

    from sinks.email import EmailNotifier
    from sinks.slack import SlackNotifier

    out: dict[str, Sink] = {}
    for name in sorted(names if names is not None else configured_channels(settings, config)):
        ch = config.channels[name]
        if ch.type == "slack":
            if settings.slack_webhook_url is None:
                raise SinkError(f"{name}: TRUCEWATCH_SLACK_WEBHOOK_URL is not set", sink=name, permanent=True)
            out[name] = SlackNotifier(httpx.Client(), settings.slack_webhook_url, name=name)
        else:
            out[name] = EmailNotifier.from_settings(settings, name=name, to=ch.to)
    return out


def make_delivery(settings: Settings, store: AlertStore, metrics: Metrics | None = None,
                  notifiers: Mapping[str, Sink] | None = None, **kwargs: Any) -> Delivery:
    """A Delivery over ``store`` with the routing file's channels; sets the store's roll-up windows."""
    config = load_config(config_path(settings))
    store.default_rollup = {name: ch.rollup_seconds for name, ch in config.channels.items()}
    if notifiers is None:
        notifiers = build_notifiers(settings, config)
    return Delivery(store, notifiers, metrics, channels=config.channels, **kwargs)


def start_delivery_thread(settings: Settings, store: AlertStore, metrics: Metrics, stop: threading.Event,
                          notifiers: Mapping[str, Sink] | None = None, poll: float = 1.0) -> threading.Thread | None:
    """Run the delivery loop in a daemon thread until ``stop`` is set (None when no channel is configured)."""
    delivery = make_delivery(settings, store, metrics, notifiers)
    if not delivery.notifiers:
        log.info("no notification channel configured; outbox delivery not started")
        return None
    log.info("delivering notifications on: %s", ", ".join(sorted(delivery.notifiers)))
    t = threading.Thread(target=delivery.run, args=(stop, poll), name="outbox-delivery", daemon=True)
    t.start()
    return t


def run_delivery(settings: Settings, stop: threading.Event | None = None, poll: float = 1.0,
                 notifiers: Mapping[str, Sink] | None = None) -> int:
    """Run the delivery loop in this thread against the configured store until SIGINT/SIGTERM or ``stop``."""
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
    store = open_store(settings.effective_store_url)
    try:
        delivery = make_delivery(settings, store, build_metrics(), notifiers)
        if not delivery.notifiers:
            log.error("no notification channel is configured (see config/alerts.yaml and the settings)")
            return 2
        delivery.run(stop, poll)
    finally:
        store.close()
    return 0


def sample_alert() -> Alert:
    """A sample alert for ``trucewatch notify --test`` (Arabic text, markup characters, two sources)."""
    now = utcnow()
    visit = Visit(visitor="حسن رشاد", visitor_id="test", role="رئيس المخابرات المصرية", visitor_country="مصر",
                  destination_city="تل أبيب", destination_country="إسرائيل", status="arrived", key="test")
    return Alert(
        id=alert_id("test", now.isoformat()), kind="new_visit", key="test", severity="low",
        title="اختبار: رئيس المخابرات المصرية يصل إلى تل أبيب <test> & check",
        summary="This is a test notification from trucewatch.", labels=["mediation", "ceasefire"], visit=visit,
        links=[AlertLink(source="example", url="https://example.org/a?x=1&y=2", article_id="t1", title="مثال"),
               AlertLink(source="example-2", url="https://example.net/b", article_id="t2", title="مثال ثان")],
        article_ids=["t1", "t2"], corroborations=2, first_seen=now,
    )


def run_notify_test(settings: Settings, channel: str, out: Any = None) -> int:
    """Send one test notification on ``channel`` (a channel of alerts.yaml, or ``slack``/``email``).

    Returns 0 when delivered, 1 when the channel failed, 2 when it is unknown or not configured."""
    out = out or sys.stdout
    config = load_config(config_path(settings))
    ch = config.channels.get(channel) or (Channel(name=channel, type=channel) if channel in ("slack", "email")
                                          else None)
    if ch is None:
        print(f"trucewatch: error: unknown channel {channel!r} (known: {', '.join(sorted(config.channels))})",
              file=sys.stderr)
        return 2
    cfg = RoutingConfig(channels={**config.channels, channel: ch}, routes=config.routes, path=config.path)
    notifier: Sink | None = None
    try:
        notifier = build_notifiers(settings, cfg, {channel})[channel]
        notifier.setup()
        notifier.send(sample_alert())
    except SinkError as e:
        print(f"trucewatch: test notification failed: {e}", file=sys.stderr)
        return 2 if e.context.get("permanent") and "not set" in str(e) else 1
    finally:
        if notifier is not None:
            notifier.close()
    print(f"test notification sent on {channel}", file=out)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m sinks.delivery [--poll S]``: the delivery loop as its own process."""
    p = argparse.ArgumentParser(prog="python -m sinks.delivery", description=__doc__)
    p.add_argument("--poll", type=float, default=1.0, help="seconds between outbox polls when idle")
    args = p.parse_args(argv)
    try:
        settings = load_settings()
        logging.basicConfig(level=settings.log_level.upper(), stream=sys.stderr,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        return run_delivery(settings, poll=args.poll)
    except TrucewatchError as e:
        print(f"trucewatch: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
