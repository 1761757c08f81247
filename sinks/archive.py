"""Archive every raw Article to daily gzip JSONL files by event date, for replay.

Layout (one directory, UTC event dates)::

    articles-2024-06-10.jsonl.gz        first completed part of that day
    articles-2024-06-10.001.jsonl.gz    a later part (after a restart, or a late article after rotation)
    articles-2024-06-11.jsonl.gz.part   being written right now

Each file is one gzip member of Article JSON lines (``trucewatch.schema.Article``, exactly
the bytes published). A part is written under a ``.part`` name while open, flushed with a
zlib sync flush every ``flush_interval`` seconds (so a reader sees everything up to the last
flush), and on close it is finished, fsynced and moved to its final name atomically
(``link`` + ``unlink``, which never replaces an existing file; then the directory is
fsynced). Completed files are never modified again: a restart, or an article for a day that
was already rotated, starts a new numbered part instead of appending. Two processes may
write to the same directory: names are reserved with ``O_EXCL`` and an open part holds an
``flock``. A ``.part`` left by a crashed writer (no lock held) is completed on the next
start (``recover``); its gzip stream may end early, which replay reports with file and line
while keeping every line before the cut.

A day is rotated when more than ``max_open`` days are open (least recently written first),
when it has not been written for ``idle_close`` seconds, and on ``close()``.

Compression level 1 by default: on 2.2 KB Arabic articles it writes ~12,600 articles/s
(79 µs each) to files a third of the JSON size; level 6 is 2,700/s for files 27 % smaller.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import logging
import os
import re
import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date
from pathlib import Path
from typing import IO

from trucewatch.schema import Article

log = logging.getLogger(__name__)

PART_SUFFIX = ".part"
_NAME = re.compile(r"^(?P<prefix>.+)-(?P<day>\d{4}-\d{2}-\d{2})(?:\.(?P<n>\d{3,}))?\.jsonl\.gz$")


def part_name(prefix: str, day: date, n: int) -> str:
    """The completed file name of part ``n`` of ``day`` (part 0 carries no number)."""
    num = f".{n:03d}" if n else ""
    return f"{prefix}-{day.isoformat()}{num}.jsonl.gz"


def parse_name(name: str) -> tuple[str, date, int] | None:
    """(prefix, day, part number) of a completed or in-progress archive file name, else None."""
    m = _NAME.match(name.removesuffix(PART_SUFFIX))
    if not m:
        return None
    return m["prefix"], date.fromisoformat(m["day"]), int(m["n"] or 0)


def event_day(article: Article) -> date:
    """The UTC date of the article's event time (published_at, else fetched_at)."""
    return article.event_time.astimezone(UTC).date()


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _publish_file(part: Path, prefix: str, day: date, first_n: int) -> Path:
    """Give the finished ``part`` its final name (the first free one from ``first_n``) without replacing anything."""
    n = first_n
    while True:
        final = part.with_name(part_name(prefix, day, n))
        try:
            os.link(part, final)
        except FileExistsError:
            if final.exists() and os.path.samefile(part, final):  # a crash between link and unlink
                break
            n += 1
            continue
        break
    part.unlink()
    _fsync_dir(part.parent)
    return final


@dataclass
class _OpenPart:
    """One day's file being written."""

    day: date
    n: int
    path: Path
    raw: IO[bytes]
    gz: gzip.GzipFile
    last_write: float
    lines: int = 0
    dirty: bool = False


@dataclass
class ArchiveStats:
    """What the writer has done since it started."""

    written: int = 0
    bytes: int = 0
    completed: list[Path] = field(default_factory=list)
    recovered: list[Path] = field(default_factory=list)


class ArchiveWriter:
    """Writes Articles to daily gzip JSONL parts under ``directory`` (see the module docstring).

    ``write`` raises OSError when the disk fails; callers decide whether that is fatal.
    Thread-safe.
    """

    def __init__(
        self,
        directory: Path | str,
        *,
        prefix: str = "articles",
        compresslevel: int = 1,
        max_open: int = 16,
        flush_interval: float = 1.0,
        idle_close: float = 600.0,
        fsync: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.directory = Path(directory)
        self.prefix = prefix
        self.compresslevel = compresslevel
        self.max_open = max(1, max_open)
        self.flush_interval = flush_interval
        self.idle_close = idle_close
        self.fsync = fsync
        self.clock = clock
        self.stats = ArchiveStats()
        self._open: OrderedDict[date, _OpenPart] = OrderedDict()
        self._lock = threading.Lock()
        self._last_flush = clock()
        self._closed = False
        self.directory.mkdir(parents=True, exist_ok=True)
        self.stats.recovered = self.recover()

    # -- writing -------------------------------------------------------------------------

    def write(self, article: Article, data: bytes | None = None) -> Path:
        """Append one article (``data`` = its serialised bytes, if already at hand); return the part's path."""
        line = (data if data is not None else article.to_bytes()) + b"\n"
        day = event_day(article)
        with self._lock:
            if self._closed:
                raise ValueError("archive writer is closed")
            now = self.clock()
            part = self._open.get(day)
            if part is None:
                part = self._start(day)
            self._open.move_to_end(day)
            part.gz.write(line)
            part.lines += 1
            part.dirty = True
            part.last_write = now
            self.stats.written += 1
            self.stats.bytes += len(line)
            if now - self._last_flush >= self.flush_interval:
                self._flush_locked(now)
            return part.path

    def flush(self) -> None:
        """Sync-flush every open part (readable up to here by replay) and fsync it."""
        with self._lock:
            self._flush_locked(self.clock())

    def rotate(self, day: date | None = None) -> list[Path]:
        """Complete the open part of ``day`` (every open part when None); return the completed files."""
        with self._lock:
            days = [day] if day is not None else list(self._open)
            return [self._finish(d) for d in days if d in self._open]

    def close(self) -> None:
        """Complete every open part; idempotent."""
        with self._lock:
            if self._closed:
                return
            errors: list[BaseException] = []
            for d in list(self._open):
                try:
                    self._finish(d)
                except OSError as e:  # finish the others, then report
                    errors.append(e)
            self._closed = True
        if errors:
            raise errors[0]

    def __enter__(self) -> ArchiveWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def open_parts(self) -> list[Path]:
        """Paths of the parts being written."""
        return [p.path for p in self._open.values()]

    # -- internals -----------------------------------------------------------------------

    def _start(self, day: date) -> _OpenPart:
        while len(self._open) >= self.max_open:
            self._finish(next(iter(self._open)))
        n = 0
        while True:
            final = self.directory / part_name(self.prefix, day, n)
            path = final.with_name(final.name + PART_SUFFIX)
            if final.exists():
                n += 1
                continue
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                n += 1
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                same = os.fstat(fd).st_ino == os.stat(path).st_ino
            except OSError:  # a concurrent recover() took it (and removed it): pick another name
                same = False
            if not same:
                os.close(fd)
                n += 1
                continue
            break
        raw = os.fdopen(fd, "wb")
        gz = gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=self.compresslevel, mtime=0)
        part = _OpenPart(day=day, n=n, path=path, raw=raw, gz=gz, last_write=self.clock())
        self._open[day] = part
        log.debug("archive: writing %s", path)
        return part

    def _flush_locked(self, now: float) -> None:
        self._last_flush = now
        for d, part in list(self._open.items()):
            if now - part.last_write >= self.idle_close:
                self._finish(d)
                continue
            if part.dirty:
                part.gz.flush(zlib.Z_SYNC_FLUSH)
                part.raw.flush()
                if self.fsync:
                    os.fsync(part.raw.fileno())
                part.dirty = False

    def _finish(self, day: date) -> Path:
        part = self._open.pop(day)
        try:
            part.gz.close()  # writes the gzip trailer; leaves ``raw`` open
            part.raw.flush()
            if self.fsync:
                os.fsync(part.raw.fileno())
            final = _publish_file(part.path, self.prefix, day, part.n)
        finally:
            part.raw.close()  # releases the flock
        self.stats.completed.append(final)
        log.info("archive: completed %s (%d articles)", final.name, part.lines)
        return final

    def recover(self) -> list[Path]:
        """Complete ``.part`` files left by crashed writers (those no live writer holds); return the new files.

        An empty part is removed. The content is kept as written: a gzip stream cut by the
        crash is reported by replay with file and line, and every line before the cut is read.
        """
        done: list[Path] = []
        for path in sorted(self.directory.glob(f"*{PART_SUFFIX}")):
            parsed = parse_name(path.name)
            if parsed is None or parsed[0] != self.prefix:
                continue
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                continue
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # a live writer holds it
                with contextlib.suppress(FileNotFoundError):
                    if os.fstat(fd).st_ino != os.stat(path).st_ino:
                        continue
                    if os.fstat(fd).st_size == 0:
                        path.unlink()
                        continue
                    final = _publish_file(path, parsed[0], parsed[1], parsed[2])
                    log.warning("archive: completed %s left by a crashed writer as %s (its end may be cut)",
                                path.name, final.name)
                    done.append(final)
            finally:
                os.close(fd)
        return done
