"""``trucewatch alerts``: JSONL and table output from a SQLite store."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sinks.listing import isolate, parse_since, run_alerts
from sinks.store import open_store
from trucewatch.errors import InputError
from trucewatch.schema import Alert, AlertLink, alert_id
from trucewatch.settings import Settings

T0 = datetime(2025, 1, 10, 8, 0, tzinfo=UTC)


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    s = Settings(data_dir=tmp_path)
    store = open_store(s.effective_store_url)
    for i, kind in enumerate(["new_visit", "story", "new_visit"]):
        key = f"k{i}"
        store.record(Alert(id=alert_id(kind, key), kind=kind, key=key, title=f"وصل الوزير {i} <b>",
                           links=[AlertLink(source="الجزيرة", article_id=f"a{i}", url=f"https://x/{i}")],
                           article_ids=[f"a{i}"], first_seen=T0 + timedelta(days=i)), [])
    store.close()
    return s


def test_jsonl(settings: Settings) -> None:
    out = io.StringIO()
    assert run_alerts(settings, jsonl=True, out=out) == 0
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["key"] for r in rows] == ["k2", "k1", "k0"]
    assert all(Alert.model_validate(r) for r in rows)
    assert rows[0]["article_ids"] == ["a2"] and rows[0]["id"] == alert_id("new_visit", "k2")


def test_filters(settings: Settings) -> None:
    out = io.StringIO()
    run_alerts(settings, jsonl=True, kind="new_visit", since="2025-01-11", out=out)
    assert [json.loads(x)["key"] for x in out.getvalue().splitlines()] == ["k2"]
    out = io.StringIO()
    run_alerts(settings, jsonl=True, limit=1, out=out)
    assert len(out.getvalue().splitlines()) == 1


def test_bad_options(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_alerts(settings, kind="nope", out=io.StringIO()) == 2
    assert run_alerts(settings, since="yesterday", out=io.StringIO()) == 2
    assert "--since" in capsys.readouterr().err


def test_table_is_rtl_safe(settings: Settings) -> None:
    out = io.StringIO()
    assert run_alerts(settings, out=out) == 0
    text = out.getvalue()
    assert "3 alert(s)" in text
    assert "\u2068وصل الوزير 2 <b>\u2069" in text
    assert alert_id("story", "k1") in text
    assert "\x1b[" not in text  # no colour codes when not a terminal


def test_isolate_and_since() -> None:
    assert isolate("a\u202eb") == "\u2068ab\u2069"
    assert isolate("") == ""
    assert parse_since("2025-01-02") == datetime(2025, 1, 2, tzinfo=UTC)
    assert parse_since("2025-01-02T03:00:00+02:00") == datetime(2025, 1, 2, 1, tzinfo=UTC)
    assert parse_since(None) is None
    with pytest.raises(InputError):
        parse_since("soon")
