"""Unit tests for the archive writer: daily gzip JSONL parts, atomic completion, restarts, crashes."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from producers.files import iter_paths
from producers.publish import Publisher
from sinks.archive import ArchiveWriter, parse_name, part_name
from trucewatch.errors import InputError
from trucewatch.schema import Article, decode


def art(i: int, day: int = 10, hour: int = 12, published: bool = True) -> Article:
    when = datetime(2024, 6, day, hour, tzinfo=UTC)
    return Article(id=f"a{i}", source="s", title=f"عنوان {i}", body="نص " * 20,
                   published_at=when if published else None, fetched_at=when + timedelta(minutes=5))


def lines_of(path: Path) -> list[Article]:
    with gzip.open(path, "rb") as f:
        return [decode(Article, line) for line in f]


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_names_round_trip() -> None:
    assert part_name("articles", date(2024, 6, 10), 0) == "articles-2024-06-10.jsonl.gz"
    assert part_name("articles", date(2024, 6, 10), 3) == "articles-2024-06-10.003.jsonl.gz"
    assert parse_name("articles-2024-06-10.003.jsonl.gz.part") == ("articles", date(2024, 6, 10), 3)
    assert parse_name("articles-2024-06-10.jsonl.gz") == ("articles", date(2024, 6, 10), 0)
    assert parse_name("notes.txt") is None


def test_daily_files_by_event_date_utc(tmp_path: Path) -> None:
    tz = timezone_plus3()
    late_local = Article(id="x", title="t", published_at=datetime(2024, 6, 11, 1, tzinfo=tz))  # 2024-06-10 22:00 UTC
    with ArchiveWriter(tmp_path) as w:
        w.write(art(1, day=10))
        w.write(art(2, day=11))
        w.write(art(3, day=10, published=False))  # fetched_at decides
        w.write(late_local)
        assert all(p.name.endswith(".part") for p in w.open_parts)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["articles-2024-06-10.jsonl.gz", "articles-2024-06-11.jsonl.gz"]
    assert [a.id for a in lines_of(tmp_path / names[0])] == ["a1", "a3", "x"]
    assert [a.id for a in lines_of(tmp_path / names[1])] == ["a2"]
    assert lines_of(tmp_path / names[0])[0] == art(1, day=10)  # exactly the article


def timezone_plus3():  # type: ignore[no-untyped-def]
    from datetime import timezone

    return timezone(timedelta(hours=3))


def test_restart_writes_a_new_numbered_part_and_never_touches_completed_files(tmp_path: Path) -> None:
    with ArchiveWriter(tmp_path) as w:
        w.write(art(1))
    first = tmp_path / "articles-2024-06-10.jsonl.gz"
    before = first.read_bytes()
    with ArchiveWriter(tmp_path) as w:
        w.write(art(2))
    assert first.read_bytes() == before
    assert [a.id for a in lines_of(tmp_path / "articles-2024-06-10.001.jsonl.gz")] == ["a2"]


def test_lru_rotation_and_late_article_opens_new_part(tmp_path: Path) -> None:
    with ArchiveWriter(tmp_path, max_open=2) as w:
        w.write(art(1, day=10))
        w.write(art(2, day=11))
        w.write(art(3, day=12))  # day 10 is least recently written: completed
        assert (tmp_path / "articles-2024-06-10.jsonl.gz").exists()
        w.write(art(4, day=10))  # late article for a completed day
    assert [a.id for a in lines_of(tmp_path / "articles-2024-06-10.001.jsonl.gz")] == ["a4"]
    assert len(list(tmp_path.glob("*.part"))) == 0


def test_idle_day_is_completed_and_flush_makes_part_readable(tmp_path: Path) -> None:
    clock = Clock()
    w = ArchiveWriter(tmp_path, clock=clock, flush_interval=1.0, idle_close=60.0)
    w.write(art(1, day=10))
    w.flush()
    part = tmp_path / "articles-2024-06-10.jsonl.gz.part"
    items = list(iter_paths([part]))  # an open part reads up to its last flush
    assert [a.id for a in items if isinstance(a, Article)] == ["a1"]
    clock.t += 61
    w.write(art(2, day=11))  # the periodic flush completes the idle day
    assert (tmp_path / "articles-2024-06-10.jsonl.gz").exists()
    w.close()
    w.close()  # idempotent
    with pytest.raises(ValueError):
        w.write(art(3))


def test_two_writers_in_one_directory_never_collide(tmp_path: Path) -> None:
    a, b = ArchiveWriter(tmp_path), ArchiveWriter(tmp_path)
    a.write(art(1))
    b.write(art(2))
    assert a.open_parts != b.open_parts
    b.close()
    a.close()
    got = sorted(x.id for p in tmp_path.glob("*.jsonl.gz") for x in lines_of(p))
    assert got == ["a1", "a2"]


def test_recover_completes_a_crashed_writers_part_but_not_a_live_one(tmp_path: Path) -> None:
    live = ArchiveWriter(tmp_path)
    live.write(art(1, day=9))
    # A writer in another process that dies without closing: its part is left behind, flushed but unfinished.
    code = (
        "import os, sys\n"
        "from sinks.archive import ArchiveWriter\n"
        "from datetime import datetime, UTC\n"
        "from trucewatch.schema import Article\n"
        "w = ArchiveWriter(sys.argv[1])\n"
        "for i in range(50):\n"
        "    w.write(Article(id=f'c{i}', title='t', published_at=datetime(2024, 6, 10, tzinfo=UTC)))\n"
        "w.flush()\n"
        "os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True, cwd=Path(__file__).parents[2])
    assert (tmp_path / "articles-2024-06-10.jsonl.gz.part").exists()
    again = ArchiveWriter(tmp_path)
    assert [p.name for p in again.stats.recovered] == ["articles-2024-06-10.jsonl.gz"]
    assert (tmp_path / "articles-2024-06-09.jsonl.gz.part").exists()  # the live writer's part is untouched
    items = list(iter_paths([tmp_path / "articles-2024-06-10.jsonl.gz"]))
    ids = [x.id for x in items if isinstance(x, Article)]
    errors = [x for x in items if isinstance(x, InputError)]
    assert ids == [f"c{i}" for i in range(50)]
    assert len(errors) == 1 and errors[0].line == 51  # the cut end is reported with file and line
    live.close()
    again.close()


def test_empty_orphan_part_is_removed(tmp_path: Path) -> None:
    (tmp_path / "articles-2024-06-10.jsonl.gz.part").write_bytes(b"")
    ArchiveWriter(tmp_path).close()
    assert list(tmp_path.iterdir()) == []


def test_completion_is_fsynced_and_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real(fd)))
    with ArchiveWriter(tmp_path) as w:
        w.write(art(1))
    assert len(synced) >= 2  # the file and its directory


class FakeProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes]] = []
        self.closed = False

    def send(self, topic: str, key: bytes | None = None, value: bytes = b""):  # type: ignore[no-untyped-def]
        self.sent.append((topic, key, value))

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


def test_publisher_archives_before_sending_and_closes_the_archive(tmp_path: Path) -> None:
    order: list[str] = []
    w = ArchiveWriter(tmp_path)
    real_write = w.write
    prod = FakeProducer()
    real_send = prod.send

    def write(a: Article, data: bytes | None = None) -> Path:
        order.append("archive")
        return real_write(a, data)

    def send(topic, key=None, value=b""):  # type: ignore[no-untyped-def]
        order.append("send")
        return real_send(topic, key, value)

    w.write = write  # type: ignore[method-assign]
    prod.send = send  # type: ignore[method-assign]
    pub = Publisher(prod, "raw", archive=w)
    pub.publish(art(1))
    assert order == ["archive", "send"]
    pub.close()
    assert prod.closed
    assert [a.id for a in lines_of(tmp_path / "articles-2024-06-10.jsonl.gz")] == ["a1"]
    assert prod.sent[0][2] == art(1).to_bytes()


def test_publisher_without_archive_is_unchanged() -> None:
    prod = FakeProducer()
    pub = Publisher(prod, "raw")
    pub.publish(art(1))
    pub.close()
    assert len(prod.sent) == 1 and pub.archive is None


def test_publisher_keeps_sending_when_the_archive_fails(tmp_path: Path) -> None:
    w = ArchiveWriter(tmp_path)

    def broken(a: Article, data: bytes | None = None) -> Path:
        raise OSError(28, "No space left on device")

    w.write = broken  # type: ignore[method-assign]
    prod = FakeProducer()
    pub = Publisher(prod, "raw", archive=w)
    pub.publish(art(1))
    assert len(prod.sent) == 1 and pub.archive_failed == 1
    pub.close()
