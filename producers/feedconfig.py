"""Load and validate the feed list (config/feeds.yaml); errors name the file, line and entry."""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from trucewatch.errors import ConfigError
from trucewatch.settings import PACKAGE_CONFIG_DIR, Settings

DEFAULT_INTERVAL = 300.0  # seconds between polls of one feed
MIN_INTERVAL = 30.0
MAX_INTERVAL = 24 * 3600.0
_SOURCE_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class FeedConfig:
    """One configured feed.

    ``source`` is the bounded metric label and the Article ``source``; ``tz_correction_hours`` is
    added to every entry date (for feeds whose timestamps are known to be wrong by whole hours);
    ``timezone`` is the zone of dates written without one (Arabic-word dates, naive ISO);
    ``encoding`` overrides whatever the server and document declare.
    """

    name: str
    url: str
    source: str
    enabled: bool = True
    lang: str = "ar"
    interval: float = DEFAULT_INTERVAL
    fulltext: bool = False
    tz_correction_hours: float = 0.0
    timezone: str = "UTC"
    encoding: str | None = None
    max_items: int = 200
    confidence: str | None = None
    notes: str | None = None
    line: int | None = field(default=None, compare=False)

    @property
    def host(self) -> str:
        """The host name of the feed URL (the per-host concurrency key)."""
        return (urlsplit(self.url).hostname or "").lower()

    @property
    def tzinfo(self) -> ZoneInfo:
        """The configured timezone object."""
        return ZoneInfo(self.timezone)


_KNOWN = {f.name for f in fields(FeedConfig)} - {"line"}
_IGNORED = {"seen_in"}  # provenance kept in the YAML for humans


def source_from_url(url: str) -> str:
    """A source label derived from the URL host: ``www.bbc.co.uk`` -> ``bbc.co.uk``."""
    host = (urlsplit(url).hostname or "unknown").lower()
    for pre in ("www.", "feeds.", "rss.", "feed."):
        if host.startswith(pre) and host.count(".") >= 2:
            host = host[len(pre):]
    return host[:64]


def _mapping_lines(node: yaml.Node) -> list[int]:
    """1-based start line of each item of a YAML sequence node."""
    if not isinstance(node, yaml.SequenceNode):
        return []
    return [item.start_mark.line + 1 for item in node.value]


def _feeds_node(root: yaml.Node | None) -> yaml.Node | None:
    if isinstance(root, yaml.MappingNode):
        for k, v in root.value:
            if isinstance(k, yaml.ScalarNode) and k.value == "feeds":
                return v
    return root if isinstance(root, yaml.SequenceNode) else None


def validate_feed(raw: Any, defaults: dict[str, Any], *, path: str, line: int | None, index: int) -> FeedConfig:
    """One feed mapping (after defaults) -> FeedConfig; ConfigError naming the entry when invalid."""
    entry = f"feeds[{index}]"
    if not isinstance(raw, dict):
        raise ConfigError(f"a feed must be a mapping, not {type(raw).__name__}", path=path, line=line, entry=entry)
    name = raw.get("name")
    if name:
        entry = f"feeds[{index}] ({name})"

    def bad(msg: str) -> ConfigError:
        return ConfigError(msg, path=path, line=line, entry=entry)

    unknown = set(raw) - _KNOWN - _IGNORED
    if unknown:
        raise bad(f"unknown key(s): {', '.join(sorted(map(str, unknown)))}")
    data: dict[str, Any] = {k: v for k, v in defaults.items() if k in _KNOWN}
    data.update({k: v for k, v in raw.items() if k in _KNOWN})
    url = data.get("url")
    if not isinstance(url, str) or not url.strip():
        raise bad("missing 'url'")
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise bad(f"url must be http(s)://host/..., got {url!r}")
    data["url"] = url
    data["name"] = str(data.get("name") or url)
    data["source"] = str(data.get("source") or source_from_url(url)).lower()
    if not _SOURCE_RE.match(data["source"]):
        raise bad(f"source {data['source']!r} must match {_SOURCE_RE.pattern} (it is a metric label)")
    for key in ("enabled", "fulltext"):
        if not isinstance(data.get(key, False), bool):
            raise bad(f"{key} must be true or false")
    try:
        data["interval"] = float(data.get("interval", DEFAULT_INTERVAL))
        data["tz_correction_hours"] = float(data.get("tz_correction_hours", 0.0))
        data["max_items"] = int(data.get("max_items", 200))
    except (TypeError, ValueError) as e:
        raise bad(f"not a number: {e}") from None
    if not MIN_INTERVAL <= data["interval"] <= MAX_INTERVAL:
        raise bad(f"interval must be between {MIN_INTERVAL:.0f} and {MAX_INTERVAL:.0f} seconds")
    if not -14 <= data["tz_correction_hours"] <= 14:
        raise bad("tz_correction_hours must be between -14 and 14")
    if data["max_items"] < 1:
        raise bad("max_items must be >= 1")
    try:
        ZoneInfo(str(data.get("timezone", "UTC")))
    except (ZoneInfoNotFoundError, ValueError):
        raise bad(f"unknown timezone {data.get('timezone')!r}") from None
    if data.get("encoding") is not None:
        try:
            codecs.lookup(str(data["encoding"]))
        except LookupError:
            raise bad(f"unknown encoding {data['encoding']!r}") from None
    for key in ("lang", "timezone", "confidence", "notes"):
        if data.get(key) is not None:
            data[key] = str(data[key])
    return FeedConfig(line=line, **data)


def parse_feeds(text: str, path: str = "<feeds>") -> list[FeedConfig]:
    """Parse a feeds YAML document: ``{defaults: {...}, feeds: [...]}`` or a bare list.

    Raises ConfigError (file, line, entry) for YAML errors, invalid entries and duplicate URLs.
    """
    try:
        root = yaml.compose(text)
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise ConfigError(f"invalid YAML: {getattr(e, 'problem', e)}", path=path,
                          line=mark.line + 1 if mark else None) from None
    if doc is None:
        return []
    defaults: dict[str, Any] = {}
    if isinstance(doc, dict):
        defaults = doc.get("defaults") or {}
        if not isinstance(defaults, dict):
            raise ConfigError("'defaults' must be a mapping", path=path, entry="defaults")
        unknown = set(doc) - {"feeds", "defaults"}
        if unknown:
            raise ConfigError(f"unknown top-level key(s): {', '.join(sorted(map(str, unknown)))}", path=path)
        items = doc.get("feeds") or []
    else:
        items = doc
    if not isinstance(items, list):
        raise ConfigError("'feeds' must be a list", path=path, entry="feeds")
    lines = _mapping_lines(_feeds_node(root)) if root is not None else []
    out: list[FeedConfig] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(items):
        line = lines[i] if i < len(lines) else None
        feed = validate_feed(raw, defaults, path=path, line=line, index=i)
        if feed.url in seen:
            raise ConfigError(f"duplicate url (already feeds[{seen[feed.url]}])", path=path, line=line,
                              entry=f"feeds[{i}] ({feed.name})")
        seen[feed.url] = i
        out.append(feed)
    return out


def load_feeds(path: Path) -> list[FeedConfig]:
    """Read and validate a feeds YAML file; ConfigError when unreadable or invalid."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read: {e}", path=str(path)) from None
    return parse_feeds(text, str(path))


def default_feeds_path(settings: Settings) -> Path:
    """config_dir/feeds.yaml when present, else the shipped config/feeds.yaml."""
    if settings.config_dir and (settings.config_dir / "feeds.yaml").exists():
        return settings.config_dir / "feeds.yaml"
    return PACKAGE_CONFIG_DIR / "feeds.yaml"
