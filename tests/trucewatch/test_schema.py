"""Unit tests for the schema module: versioning, decoding errors, ids, dead letters."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from trucewatch.errors import DecodeError
from trucewatch.schema import (
    MAX_MESSAGE_BYTES,
    Alert,
    Article,
    EnrichedArticle,
    Visit,
    alert_id,
    article_id,
    dead_letter,
    decode,
)


def _article(**kw) -> Article:
    base = dict(id="a1", source="s", title="عنوان", body="نص", published_at=datetime(2024, 6, 10, tzinfo=UTC))
    base.update(kw)
    return Article(**base)


def test_round_trip_every_message_type() -> None:
    art = _article()
    assert decode(Article, art.to_bytes()) == art
    visit = Visit(visitor_id="eg-intel", key="k", published_at=art.published_at)
    enriched = EnrichedArticle(**art.model_dump(), visits=[visit])
    assert decode(EnrichedArticle, enriched.to_bytes()).visits == [visit]
    alert = Alert(id=alert_id("new_visit", "k"), kind="new_visit", key="k", title="t", first_seen=art.published_at)
    assert decode(Alert, alert.to_bytes()) == alert


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"", "empty"),
        (b"{not json", "not JSON"),
        (b"\xff\xfe", "UTF-8"),
        (json.dumps({"id": "x", "version": 2}).encode(), "version"),
        (json.dumps({"title": "no id"}).encode(), "id"),
        (json.dumps([1, 2]).encode(), "invalid"),
        (json.dumps({"id": "x", "published_at": "2024-06-10T00:00:00"}).encode(), "published_at"),
    ],
)
def test_decode_failures_are_one_clear_decode_error(raw: bytes, fragment: str) -> None:
    with pytest.raises(DecodeError) as e:
        decode(Article, raw)
    assert fragment in str(e.value)


def test_oversized_message_is_refused_before_parsing() -> None:
    with pytest.raises(DecodeError, match="exceeds"):
        decode(Article, b"x" * (MAX_MESSAGE_BYTES + 1))


def test_datetimes_must_be_timezone_aware() -> None:
    with pytest.raises(ValueError):
        Article(id="a", published_at=datetime(2024, 1, 1))  # noqa: DTZ001


def test_ids_are_deterministic_and_distinguish_inputs() -> None:
    assert article_id(url="https://x/a") == article_id(url="https://x/a")
    assert article_id(url="https://x/a") != article_id(url="https://x/b")
    assert article_id(source="s", guid="g") != article_id(source="t", guid="g")
    assert article_id(text="abc") != article_id(text="abd")
    assert alert_id("new_visit", "k") == alert_id("new_visit", "k") != alert_id("story", "k")


def test_event_time_falls_back_to_fetch_time() -> None:
    art = _article(published_at=None)
    assert art.event_time == art.fetched_at


def test_dead_letter_keeps_reason_position_and_truncated_payload() -> None:
    dl = dead_letter("decode", "not JSON", b"\xff" * 10 + b"x" * 100, topic="t", partition=1, offset=7,
                     key=b"k", limit=20)
    assert (dl.stage, dl.reason, dl.topic, dl.partition, dl.offset, dl.key) == ("decode", "not JSON", "t", 1, 7, "k")
    assert dl.payload_bytes == 110
    assert len(dl.payload) == 20
    assert json.loads(dl.to_bytes())["reason"] == "not JSON"
