"""Alert routing from ``config/alerts.yaml``: which alerts go to which channel, at what pace.

The file has two parts (see the shipped ``config/alerts.yaml`` for a commented example):

``channels``: named notification channels. ``type`` is ``slack`` (the webhook from settings) or
``email`` (SMTP from settings; ``to`` overrides the recipients from settings, so one email channel per
recipient list gives per-route recipients). Optional: ``rate_per_minute`` (at most this many messages
a minute; the rest wait in the outbox), ``rollup_seconds`` (after a visit was notified, its updates are
batched into at most one message per this many seconds), ``digest`` (``hourly`` or ``daily``: alerts are
collected and sent as one summary per period; ``digest_hour`` = UTC hour of the daily digest) and
``enabled`` (default true).

``routes``: each route matches alerts by ``kinds``, ``labels`` (any of), ``min_severity``, ``sources``
(any link from one of them) and sends them to its ``channels``. An alert goes to the union of the
channels of every matching route. An alert with ``notify: false`` (a replay without ``--notify``) goes to
no channel, unless it is a replay and the route says ``notify_replays: true``.

Loading validates everything and raises ConfigError naming the file, line and entry.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from sinks.merge import SEVERITY_RANK
from trucewatch.errors import ConfigError
from trucewatch.schema import LABEL_NAMES, Alert
from trucewatch.settings import PACKAGE_CONFIG_DIR, Settings

log = logging.getLogger(__name__)

KINDS = ("new_visit", "visit_update", "story")
CHANNEL_TYPES = ("slack", "email")
DIGESTS = ("hourly", "daily")
_LINE = "__line__"


@dataclass(frozen=True)
class Channel:
    """One notification channel and its pacing."""

    name: str
    type: str
    to: tuple[str, ...] = ()
    rate_per_minute: float | None = None
    rollup_seconds: float = 0.0
    digest: str | None = None
    digest_hour: int = 7
    enabled: bool = True

    def digest_boundary(self, now: datetime) -> datetime | None:
        """The latest digest send time at/before ``now`` (None for a channel without a digest)."""
        if self.digest is None:
            return None
        now = now.astimezone(UTC)
        top = now.replace(minute=0, second=0, microsecond=0)
        if self.digest == "hourly":
            return top
        day = top.replace(hour=self.digest_hour)
        return day if day <= now else day - timedelta(days=1)


@dataclass(frozen=True)
class Route:
    """Which alerts a route matches, and where it sends them."""

    name: str
    channels: tuple[str, ...]
    kinds: tuple[str, ...] = KINDS
    labels: tuple[str, ...] = ()
    min_severity: str = "low"
    sources: tuple[str, ...] = ()
    notify_replays: bool = False

    def matches(self, alert: Alert) -> bool:
        """True when ``alert`` passes every filter of this route (replays excepted, see ``Router``)."""
        if alert.kind not in self.kinds:
            return False
        if SEVERITY_RANK[alert.severity] < SEVERITY_RANK[self.min_severity]:
            return False
        if self.labels and not set(self.labels) & set(alert.labels):
            return False
        return not (self.sources and not {lk.source for lk in alert.links} & set(self.sources))


@dataclass(frozen=True)
class RoutingConfig:
    """The validated contents of alerts.yaml."""

    channels: dict[str, Channel]
    routes: tuple[Route, ...]
    path: str = "<memory>"


@dataclass
class Router:
    """Callable: ``router(alert) -> [channel names]``; only enabled channels are ever returned."""

    config: RoutingConfig
    enabled: frozenset[str] = field(default_factory=frozenset)

    def __call__(self, alert: Alert) -> list[str]:
        wanted: set[str] = set()
        asked = bool(getattr(alert, "notify", True))  # False for replays without --notify
        for route in self.config.routes:
            if not route.matches(alert):
                continue
            if not (asked or (alert.replay and route.notify_replays)):
                continue
            wanted.update(route.channels)
        return sorted(c for c in wanted if c in self.enabled)

    @property
    def rollup_seconds(self) -> dict[str, float]:
        """Roll-up window per channel, for ``AlertStore.record``."""
        return {name: ch.rollup_seconds for name, ch in self.config.channels.items()}


class _LineLoader(yaml.SafeLoader):  # type: ignore[misc]
    """A safe loader that records each mapping's line under ``__line__``."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict[str, Any]:
    mapping = loader.construct_mapping(node, deep=True)
    mapping[_LINE] = node.start_mark.line + 1
    return dict(mapping)


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _strs(value: Any, what: str, err: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise err(f"{what} must be a list of strings")
    return tuple(value)


def _number(value: Any, what: str, err: Any, *, minimum: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
        raise err(f"{what} must be a number >= {minimum:g}")
    return float(value)


def parse_config(data: Any, path: str = "<memory>") -> RoutingConfig:
    """Validate parsed YAML (mappings may carry ``__line__``) into a RoutingConfig; raises ConfigError."""

    def fail(line: int | None, entry: str | None) -> Any:
        def raise_(msg: str) -> None:
            raise ConfigError(msg, path=path, line=line, entry=entry)
        return raise_

    if not isinstance(data, dict):
        fail(None, None)("the file must be a mapping with 'channels' and 'routes'")
    unknown = set(data) - {"channels", "routes", _LINE}
    if unknown:
        fail(data.get(_LINE), None)(f"unknown top-level key(s): {', '.join(sorted(unknown))}")
    raw_channels = data.get("channels") or {}
    if not isinstance(raw_channels, dict):
        fail(data.get(_LINE), "channels")("'channels' must be a mapping of name -> channel")
    channels: dict[str, Channel] = {}
    for name, spec in raw_channels.items():
        if name == _LINE:
            continue
        line = spec.get(_LINE) if isinstance(spec, dict) else raw_channels.get(_LINE)
        err = fail(line, f"channels.{name}")
        if not isinstance(spec, dict):
            err("a channel must be a mapping")
        bad = set(spec) - {"type", "to", "rate_per_minute", "rollup_seconds", "digest", "digest_hour", "enabled",
                           _LINE}
        if bad:
            err(f"unknown key(s): {', '.join(sorted(bad))}")
        if spec.get("type") not in CHANNEL_TYPES:
            err(f"type must be one of {', '.join(CHANNEL_TYPES)}")
        to = _strs(spec.get("to"), "to", err)
        if to and spec["type"] != "email":
            err("'to' is only for email channels")
        if any("@" not in addr for addr in to):
            err("every 'to' entry must be an email address")
        rate = spec.get("rate_per_minute")
        digest = spec.get("digest")
        if digest is not None and digest not in DIGESTS:
            err(f"digest must be one of {', '.join(DIGESTS)}")
        hour = spec.get("digest_hour", 7)
        if isinstance(hour, bool) or not isinstance(hour, int) or not 0 <= hour <= 23:
            err("digest_hour must be an integer 0-23 (UTC)")
        enabled = spec.get("enabled", True)
        if not isinstance(enabled, bool):
            err("enabled must be true or false")
        channels[name] = Channel(
            name=name, type=spec["type"], to=to,
            rate_per_minute=None if rate is None else _number(rate, "rate_per_minute", err, minimum=0.001),
            rollup_seconds=_number(spec.get("rollup_seconds", 0), "rollup_seconds", err),
            digest=digest, digest_hour=hour, enabled=enabled,
        )
    raw_routes = data.get("routes") or []
    if not isinstance(raw_routes, list):
        fail(data.get(_LINE), "routes")("'routes' must be a list")
    routes: list[Route] = []
    for i, spec in enumerate(raw_routes):
        name = spec.get("name", f"#{i + 1}") if isinstance(spec, dict) else f"#{i + 1}"
        err = fail(spec.get(_LINE) if isinstance(spec, dict) else None, f"routes[{i}] ({name})")
        if not isinstance(spec, dict):
            err("a route must be a mapping")
        bad = set(spec) - {"name", "kinds", "labels", "min_severity", "sources", "channels", "notify_replays", _LINE}
        if bad:
            err(f"unknown key(s): {', '.join(sorted(bad))}")
        chans = _strs(spec.get("channels"), "channels", err)
        if not chans:
            err("a route needs at least one channel")
        missing = [c for c in chans if c not in channels]
        if missing:
            err(f"unknown channel(s): {', '.join(missing)}")
        kinds = _strs(spec.get("kinds"), "kinds", err) or KINDS
        if set(kinds) - set(KINDS):
            err(f"kinds must be among {', '.join(KINDS)}")
        labels = _strs(spec.get("labels"), "labels", err)
        if set(labels) - set(LABEL_NAMES):
            err(f"labels must be among {', '.join(LABEL_NAMES)}")
        sev = spec.get("min_severity", "low")
        if sev not in SEVERITY_RANK:
            err(f"min_severity must be one of {', '.join(SEVERITY_RANK)}")
        replays = spec.get("notify_replays", False)
        if not isinstance(replays, bool):
            err("notify_replays must be true or false")
        routes.append(Route(name=str(name), channels=chans, kinds=kinds, labels=labels, min_severity=sev,
                            sources=_strs(spec.get("sources"), "sources", err), notify_replays=replays))
    return RoutingConfig(channels=channels, routes=tuple(routes), path=path)


def load_config(path: Path) -> RoutingConfig:
    """Read and validate one alerts.yaml; ConfigError names the file, line and entry."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot read: {e.strerror}", path=str(path)) from None
    try:
        data = yaml.load(text, Loader=_LineLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise ConfigError(f"invalid YAML: {getattr(e, 'problem', e)}", path=str(path),
                          line=mark.line + 1 if mark else None) from None
    return parse_config(data, str(path))


def config_path(settings: Settings) -> Path:
    """The user's ``alerts.yaml`` in ``settings.config_dir`` when present, else the shipped one."""
    if settings.config_dir is not None and (settings.config_dir / "alerts.yaml").is_file():
        return settings.config_dir / "alerts.yaml"
    return PACKAGE_CONFIG_DIR / "alerts.yaml"


def configured_channels(settings: Settings, config: RoutingConfig) -> frozenset[str]:
    """Channels that are enabled in the file and whose transport is configured in settings."""
    ok = set()
    for name, ch in config.channels.items():
        if not ch.enabled:
            continue
        if ch.type == "slack" and settings.slack_webhook_url is None:
            continue
        if ch.type == "email" and (not settings.smtp_host or not (ch.to or settings.email_to)):
            continue
        ok.add(name)
    return frozenset(ok)


def load_router(settings: Settings, path: Path | None = None) -> Router:
    """The Router for ``settings``: the routing file plus which channels the settings enable."""
    config = load_config(path or config_path(settings))
    enabled = configured_channels(settings, config)
    log.info("alert routing from %s: %d route(s), channels enabled: %s", config.path, len(config.routes),
             ", ".join(sorted(enabled)) or "none")
    return Router(config, enabled)
