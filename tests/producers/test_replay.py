"""Unit tests for replay: reading, filtering, ordering, de-duplication, pacing, bad input, summary, options."""

from __future__ import annotations

import gzip
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from producers.publish import Publisher
from producers.replay import Pacer, Selection, parse_bound, replay, run_replay
from sinks.archive import ArchiveWriter
from trucewatch.errors import ConfigError, PublishError
from trucewatch.schema import Article, decode
from trucewatch.settings import Settings


class FakeProducer:
    """A kafka-python stand-in that records what is sent."""

    def __init__(self, fail_flush: int = 0) -> None:
        self.sent: list[bytes] = []
        self.fail_flush = fail_flush
        self.closed = False

    def send(self, topic: str, key: bytes | None = None, value: bytes = b""):  # type: ignore[no-untyped-def]
        self.sent.append(value)

        class F:  # an already-acknowledged future
            def add_both(self, fn):  # type: ignore[no-untyped-def]
                fn(None)
                return self

            def add_callback(self, fn):  # type: ignore[no-untyped-def]
                fn(None)
                return self

            def add_errback(self, fn):  # type: ignore[no-untyped-def]
                return self

        return F()

    def flush(self, timeout: float | None = None) -> None:
        pass

    def close(self, timeout: float | None = None) -> None:
        self.closed = True


class FailingPublisher(Publisher):
    def flush(self, timeout: float = 30.0) -> None:
        raise PublishError("2 message(s) were not acknowledged", topic=self.topic, key=None)


def published(prod: FakeProducer) -> list[Article]:
    return [decode(Article, v) for v in prod.sent]


def day(d: int, h: int = 12) -> datetime:
    return datetime(2024, 6, d, h, tzinfo=UTC)


def art(i: str, when: datetime | None, source: str = "bbc", fetched: datetime | None = None) -> Article:
    return Article(id=i, source=source, title=f"t {i}", body="نص", published_at=when,
                   fetched_at=fetched or (when or day(1)) + timedelta(minutes=1))


def make_archive(directory: Path, articles: list[Article]) -> None:
    with ArchiveWriter(directory) as w:
        for a in articles:
            w.write(a)


def run(paths: list[Path], **kw):  # type: ignore[no-untyped-def]
    prod = FakeProducer()
    out, err = io.StringIO(), io.StringIO()
    summary = replay(paths, Publisher(prod, "raw"), out=out, err=err, **kw)
    return prod, summary, out.getvalue(), err.getvalue()


def test_reads_archives_jsonl_and_text_in_event_time_order(tmp_path: Path) -> None:
    make_archive(tmp_path / "arch", [art("c", day(12)), art("a", day(10)), art("b", day(10))])
    jl = tmp_path / "more.jsonl"
    jl.write_text(json.dumps({"id": "j", "title": "x", "text": "y", "date": "2024-06-11", "source": "aj"}) + "\n",
                  encoding="utf-8")
    texts = tmp_path / "texts"
    texts.mkdir()
    (texts / "t1.txt").write_text("عنوان\nنص المقال", encoding="utf-8")  # no date: fetched now, last
    nodate = art("n", None, fetched=day(11, 1))  # no published_at: fetched_at is its event time
    make_archive(tmp_path / "arch2", [nodate])
    prod, s, out, err = run([tmp_path / "arch", jl, texts, tmp_path / "arch2"])
    got = published(prod)
    assert [a.id for a in got] == ["a", "b", "j", "n", "c", "t1"]  # ties on time broken by id
    assert all(a.replay and not a.notify for a in got)
    assert s.read == 6 and s.published == 6 and not s.skipped
    assert "read 6 article(s) in" in out and "published 6 in" in out and err == ""


def test_notify_flag_is_carried(tmp_path: Path) -> None:
    make_archive(tmp_path, [art("a", day(10))])
    prod, *_ = run([tmp_path], notify=True)
    assert published(prod)[0].notify is True
    assert published(prod)[0].model_dump(exclude={"replay", "notify"}) == art("a", day(10)).model_dump(
        exclude={"replay", "notify"})  # otherwise exactly the archived article


def test_filters_and_duplicates_are_counted_with_reasons(tmp_path: Path) -> None:
    make_archive(tmp_path / "a", [art("old", day(1)), art("x", day(10)), art("late", day(20)),
                                  art("other", day(11), source="cnn"), art("y", day(12, 1))])
    make_archive(tmp_path / "b", [art("x", day(10)), art("y", day(12, 0))])  # y earlier here: this copy wins
    sel = Selection(since=day(5, 0), until=day(15, 0), sources=frozenset({"bbc"}))
    prod, s, out, _ = run([tmp_path / "a", tmp_path / "b"], selection=sel)
    got = published(prod)
    assert [a.id for a in got] == ["x", "y"]
    assert got[1].published_at == day(12, 0)
    assert s.skipped == {"before --since": 1, "at/after --until": 1, "source not selected": 1, "duplicate id": 2}
    assert "skipped 5:" in out and "duplicate id" in out


def test_corrupt_line_and_truncated_member_are_reported_and_skipped(tmp_path: Path) -> None:
    good = [art(f"g{i}", day(10, 0) + timedelta(minutes=i)) for i in range(200)]
    lines = [a.to_bytes() + b"\n" for a in good]
    corrupt = tmp_path / "corrupt.jsonl.gz"
    with gzip.open(corrupt, "wb") as f:
        f.write(b"".join(lines[:3]) + b'{"id": "broken", "tit\n' + b"".join(lines[3:10]))
    blob = gzip.compress(b"".join(lines[10:200]))
    truncated = tmp_path / "truncated.jsonl.gz"
    truncated.write_bytes(blob[: len(blob) * 2 // 3])
    after = tmp_path / "after.jsonl"
    after.write_bytes(art("z", day(11)).to_bytes() + b"\n")
    prod, s, out, err = run([corrupt, truncated, after])
    ids = [a.id for a in published(prod)]
    assert ids[:10] == [f"g{i}" for i in range(10)] and ids[-1] == "z"  # the replay went on
    n_trunc = len(ids) - 11
    assert 0 < n_trunc < 190  # every line before the cut was kept
    assert f"{corrupt}:4:" in err  # file and line of the corrupt record
    assert f"{truncated}:{n_trunc + 1}:" in err and "end-of-stream" in err  # where the member was cut
    assert s.unreadable == 2
    assert "2 unreadable" in out


def test_open_part_tail_is_not_an_error(tmp_path: Path) -> None:
    w = ArchiveWriter(tmp_path)
    w.write(art("a", day(10)))
    w.flush()
    prod, s, _, err = run([tmp_path])
    assert [a.id for a in published(prod)] == ["a"]
    assert s.unreadable == 0 and s.skipped["open part, read up to its last flush"] == 1
    assert ".part:2:" in err
    w.close()


def test_publish_failures_are_counted(tmp_path: Path) -> None:
    make_archive(tmp_path, [art("a", day(10)), art("b", day(10)), art("c", day(10))])
    prod = FakeProducer()
    out = io.StringIO()
    s = replay([tmp_path], FailingPublisher(prod, "raw"), out=out, err=io.StringIO())
    assert s.failed == 2 and s.published == 1
    assert "FAILED to publish 2" in out.getvalue()


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.t

    def sleep(self, d: float) -> None:
        self.sleeps.append(d)
        self.t += d


def test_pacer_rate() -> None:
    c = FakeClock()
    p = Pacer(rate=4, clock=c.clock, sleep=c.sleep)
    for i in range(5):
        p.wait(i, day(10))
    assert c.t == pytest.approx(1.0)  # 5 articles at 4/s: the last is due at 1 s


def test_pacer_speedup_follows_event_time() -> None:
    c = FakeClock()
    p = Pacer(speedup=60, clock=c.clock, sleep=c.sleep)
    for t in (day(10, 0), day(10, 0) + timedelta(minutes=1), day(10, 0) + timedelta(minutes=3)):
        p.wait(0, t)
    assert c.sleeps == pytest.approx([1.0, 2.0])


def test_pacer_max_never_sleeps() -> None:
    c = FakeClock()
    p = Pacer(clock=c.clock, sleep=c.sleep)
    for i in range(100):
        p.wait(i, day(10))
    assert c.sleeps == []


def test_progress_bar_on_a_terminal(tmp_path: Path) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    make_archive(tmp_path, [art(f"a{i}", day(10)) for i in range(450)])
    out = Tty()
    replay([tmp_path], Publisher(FakeProducer(), "raw"), out=out, err=io.StringIO())
    text = out.getvalue()
    assert "450/450" in text and "/s" in text and "ETA" in text


def test_bounds_and_options() -> None:
    assert parse_bound("2024-06-10", "--since") == day(10, 0)
    assert parse_bound("2024-06-10T03:00:00+03:00", "--since") == day(10, 0)
    assert parse_bound(None, "--since") is None
    with pytest.raises(ConfigError, match="--since"):
        parse_bound("yesterday", "--since")
    s = Settings(kafka_bootstrap=None)
    with pytest.raises(ConfigError, match="one of"):
        run_replay(s, [], rate=10, max_speed=True)
    with pytest.raises(ConfigError, match="before --until"):
        run_replay(s, [], since="2024-06-10", until="2024-06-01")
    with pytest.raises(ConfigError, match="--rate"):
        run_replay(s, [], rate=0)
    with pytest.raises(ConfigError, match="TRUCEWATCH_KAFKA_BOOTSTRAP"):
        run_replay(s, [])


def test_run_replay_exit_status(tmp_path: Path) -> None:
    make_archive(tmp_path / "ok", [art("a", day(10))])
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{nope\n", encoding="utf-8")
    s = Settings(kafka_bootstrap=None)
    quiet = dict(out=io.StringIO(), err=io.StringIO())
    assert run_replay(s, [tmp_path / "ok"], publisher=Publisher(FakeProducer(), "raw"), **quiet) == 0
    assert run_replay(s, [tmp_path / "ok", bad], publisher=Publisher(FakeProducer(), "raw"), **quiet) == 1
    prod = FakeProducer()
    assert run_replay(s, [tmp_path / "ok"], sources=["CNN"], publisher=Publisher(prod, "raw"), **quiet) == 0
    assert prod.sent == []
