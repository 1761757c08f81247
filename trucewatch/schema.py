"""The one schema module: every message that crosses a topic, versioned and validated.

Producers serialise with these models, processors decode with them, sinks read them;
no stage parses message JSON by hand (``decode`` below is the only way in).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Literal, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator

from trucewatch.errors import DecodeError

SCHEMA_VERSION = 1
MAX_MESSAGE_BYTES = 4 * 1024 * 1024  # a raw message larger than this is dead-lettered, not parsed

LabelName = Literal["ceasefire", "mediation", "aid"]
LABEL_NAMES: tuple[LabelName, ...] = ("ceasefire", "mediation", "aid")
VisitStatus = Literal["arrived", "upcoming", "ongoing"]
AlertKind = Literal["new_visit", "visit_update", "story"]
Severity = Literal["low", "medium", "high", "critical"]


def utcnow() -> datetime:
    """Now, timezone-aware in UTC."""
    return datetime.now(UTC)


def stable_id(*parts: str | None, length: int = 16) -> str:
    """A short deterministic hex id from the given parts (None counts as empty)."""
    h = hashlib.sha256("\x1f".join(p or "" for p in parts).encode("utf-8"))
    return h.hexdigest()[:length]


def article_id(
    url: str | None = None, source: str | None = None, guid: str | None = None, text: str | None = None
) -> str:
    """Stable article id: hash of the canonical URL, else of source+guid, else of the text."""
    if url:
        return stable_id("url", url)
    if guid:
        return stable_id("guid", source, guid)
    return stable_id("text", source, text)


def alert_id(kind: str, key: str) -> str:
    """Deterministic alert id from kind + key, so redelivery never doubles an alert."""
    return stable_id("alert", kind, key)


class Message(BaseModel):
    """Base of every message: a schema version, strict about unknown versions."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    version: int = SCHEMA_VERSION

    @field_validator("version")
    @classmethod
    def _known_version(cls, v: int) -> int:
        if v != SCHEMA_VERSION:
            raise ValueError(f"unsupported schema version {v} (this build reads {SCHEMA_VERSION})")
        return v

    def to_bytes(self) -> bytes:
        """Serialise to UTF-8 JSON bytes for a topic (``model_dump_json`` as bytes, without a str in between)."""
        return self.__pydantic_serializer__.to_json(self)


class Article(Message):
    """A raw article as producers publish it to ``articles.raw``."""

    id: str = Field(min_length=1, max_length=128)
    url: str | None = None
    source: str = "unknown"
    feed: str | None = None
    title: str = ""
    summary: str = ""
    body: str = ""
    lang: str | None = "ar"
    published_at: AwareDatetime | None = None
    fetched_at: AwareDatetime = Field(default_factory=utcnow)
    replay: bool = False
    notify: bool = True  # False: alerts from this article go to the store only, never to Slack/email (replay)

    @property
    def event_time(self) -> datetime:
        """Event time: ``published_at``, falling back to ``fetched_at``."""
        return self.published_at or self.fetched_at

    @property
    def text(self) -> str:
        """Title, summary and body joined for analysis (summary skipped when the body repeats it)."""
        parts = [self.title]
        if self.summary and self.summary not in self.body:
            parts.append(self.summary)
        parts.append(self.body)
        return "\n".join(p for p in parts if p)


class Label(BaseModel):
    """One label's verdict: the decision, a score and the evidence that fired."""

    model_config = ConfigDict(frozen=True)

    value: bool = False
    score: float = 0.0
    evidence: list[str] = Field(default_factory=list)


class Labels(BaseModel):
    """The three story labels of an article."""

    model_config = ConfigDict(frozen=True)

    ceasefire: Label = Field(default_factory=Label)
    mediation: Label = Field(default_factory=Label)
    aid: Label = Field(default_factory=Label)

    def true_labels(self) -> list[str]:
        """Names of the labels that are set."""
        return [n for n in LABEL_NAMES if getattr(self, n).value]


class Visit(Message):
    """A high-level visit reported by one article."""

    visitor: str | None = None
    visitor_id: str
    role: str | None = None
    role_en: str | None = None
    visitor_country: str | None = None
    destination_city: str | None = None
    destination_country: str | None = None
    status: VisitStatus = "arrived"
    first_in: str | None = None
    key: str
    evidence: str = ""
    article_id: str = ""
    source: str = ""
    url: str | None = None
    title: str = ""
    published_at: AwareDatetime | None = None
    fetched_at: AwareDatetime | None = None
    replay: bool = False
    notify: bool = True


class VisitReports(Message):
    """Several visit reports of one ``visits`` partition in one message (the enrich agent sends one per batch and
    partition; a single Visit message is read as one report)."""

    visits: list[Visit]


class EnrichedArticle(Article):
    """An article plus its labels and visits, as published to ``articles.enriched``."""

    labels: Labels = Field(default_factory=Labels)
    visits: list[Visit] = Field(default_factory=list)
    story_key: str | None = None


class AlertLink(BaseModel):
    """One corroborating article of an alert."""

    model_config = ConfigDict(frozen=True)

    source: str
    url: str | None = None
    article_id: str
    title: str = ""
    published_at: AwareDatetime | None = None


class Alert(Message):
    """An alert raised by the novelty stage, consumed by sinks and notifiers."""

    id: str
    kind: AlertKind
    key: str
    severity: Severity = "medium"
    title: str
    summary: str = ""
    links: list[AlertLink] = Field(default_factory=list)
    article_ids: list[str] = Field(default_factory=list)
    labels: list[str] = Field(default_factory=list)
    visit: Visit | None = None
    first_seen: AwareDatetime
    last_seen: AwareDatetime | None = None
    corroborations: int = 1
    replay: bool = False
    notify: bool = True  # False: store only, no Slack/email (replays without --notify)
    created_at: AwareDatetime = Field(default_factory=utcnow)


class DeadLetter(BaseModel):
    """What the dead-letter topic carries: the payload that failed and why."""

    model_config = ConfigDict(frozen=True)

    version: int = SCHEMA_VERSION
    stage: str
    reason: str
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    key: str | None = None
    payload: str = ""  # the original bytes, decoded with replacement, truncated
    payload_bytes: int = 0
    failed_at: AwareDatetime = Field(default_factory=utcnow)

    def to_bytes(self) -> bytes:
        """Serialise to UTF-8 JSON bytes for the dead-letter topic."""
        return self.__pydantic_serializer__.to_json(self)


M = TypeVar("M", bound=BaseModel)


def decode(model: type[M], raw: bytes | str | None) -> M:
    """Decode one message into ``model``.

    Raises DecodeError (with a one-line reason) for empty, oversized, non-UTF-8,
    non-JSON or schema-invalid input; never anything else.
    """
    if raw is None or len(raw) == 0:
        raise DecodeError("empty message", model=model.__name__)
    if len(raw) > MAX_MESSAGE_BYTES:
        raise DecodeError(f"message of {len(raw)} bytes exceeds {MAX_MESSAGE_BYTES}", model=model.__name__)
    try:
        # bytes go to the parser as they are: it checks UTF-8 itself, and a str in between cost more than the parse
        return model.model_validate_json(raw)
    except ValidationError as e:
        if isinstance(raw, bytes):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as u:
                raise DecodeError(f"not UTF-8: {u}", model=model.__name__) from None
        first = e.errors()[0]
        where = ".".join(str(x) for x in first.get("loc", ())) or "message"
        kind = "not JSON" if first.get("type") == "json_invalid" else "invalid"
        raise DecodeError(f"{kind}: {where}: {first.get('msg')}", model=model.__name__) from None


def dead_letter(
    stage: str,
    reason: str,
    raw: bytes | str | None,
    *,
    topic: str | None = None,
    partition: int | None = None,
    offset: int | None = None,
    key: bytes | str | None = None,
    limit: int = 64 * 1024,
) -> DeadLetter:
    """Build the dead-letter record for a payload that failed at ``stage``."""
    if isinstance(raw, bytes):
        size, text = len(raw), raw[:limit].decode("utf-8", errors="replace")
    else:
        size, text = len((raw or "").encode("utf-8")), (raw or "")[:limit]
    if isinstance(key, bytes):
        key = key.decode("utf-8", errors="replace")
    return DeadLetter(
        stage=stage, reason=reason, topic=topic, partition=partition, offset=offset,
        key=key, payload=text, payload_bytes=size,
    )
