"""Replay archived articles into ``articles.raw`` in event-time order, through the live publish path.

Inputs are whatever ``producers.files.iter_paths`` reads: archive files (``.jsonl.gz``, also
``.jsonl.gz.part`` being written), plain JSONL and directories of text articles. Every article
is read, filtered (``--since`` inclusive, ``--until`` exclusive, ``--source``), sorted by event
time (``published_at``, else ``fetched_at``; ties by id), de-duplicated by id (the first in that
order is kept), marked ``replay=True`` and ``notify=<--notify>`` and published with the same
``Publisher`` the live producers use, paced by ``--rate``, ``--speedup`` or ``--max``.

A corrupt line, a truncated gzip member or an unreadable file is reported with its file and line
and skipped; the replay goes on. Exit status: 0 when everything read was published or filtered on
purpose, 1 when some input was unreadable or some publish failed, 2 for a usage or broker error.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from producers.files import iter_paths, parse_date
from producers.publish import Publisher, make_producer
from trucewatch.errors import BufferFullError, ConfigError, InputError, PublishError
from trucewatch.schema import Article
from trucewatch.settings import Settings
from trucewatch.topics import Topics

log = logging.getLogger(__name__)

# The live producer's settings with bigger batches: replay sends bursts, not a trickle.
REPLAY_PRODUCER: dict[str, Any] = dict(linger_ms=20, batch_size=512 * 1024, client_id="trucewatch-replay")
PROGRESS_EVERY = 200  # articles between progress-bar updates

OPEN_PART = "open part, read up to its last flush"
UNREADABLE = "unreadable"


@dataclass(frozen=True)
class Selection:
    """Which articles to replay: event time in [since, until), source among ``sources`` (all when empty)."""

    since: datetime | None = None
    until: datetime | None = None
    sources: frozenset[str] = frozenset()

    def reason_to_skip(self, a: Article) -> str | None:
        """Why ``a`` is filtered out, or None to keep it."""
        t = a.event_time
        if self.since is not None and t < self.since:
            return "before --since"
        if self.until is not None and t >= self.until:
            return "at/after --until"
        if self.sources and a.source.casefold() not in self.sources:
            return "source not selected"
        return None


@dataclass
class Summary:
    """What a replay did."""

    read: int = 0
    published: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    errors: list[InputError] = field(default_factory=list)
    failed: int = 0
    seconds: float = 0.0
    publish_seconds: float = 0.0

    @property
    def unreadable(self) -> int:
        return self.skipped[UNREADABLE]

    def lines(self) -> list[str]:
        """The human summary printed at the end."""
        rate = self.published / self.publish_seconds if self.publish_seconds > 0 else 0.0
        out = [f"read {self.read} article(s) in {self.seconds - self.publish_seconds:.1f} s; "
               f"published {self.published} in {self.publish_seconds:.1f} s ({rate:,.0f}/s)"]
        total = sum(self.skipped.values())
        if total:
            reasons = ", ".join(f"{n} {r}" for r, n in self.skipped.most_common())
            out.append(f"skipped {total}: {reasons}")
        else:
            out.append("skipped 0")
        if self.failed:
            out.append(f"FAILED to publish {self.failed} (not acknowledged by the broker)")
        return out


def parse_bound(value: str | None, option: str) -> datetime | None:
    """A --since/--until value (``YYYY-MM-DD`` or ISO 8601, UTC when no offset) or None; ConfigError if unreadable."""
    if value is None or value == "":
        return None
    try:
        return parse_date(value)
    except ValueError as e:
        raise ConfigError(f"not a date: {value!r} ({e})", entry=option) from None


def order_key(a: Article) -> tuple[datetime, str]:
    """Replay order: event time, then id (stable across runs and inputs)."""
    return (a.event_time, a.id)


def _describe(e: InputError) -> str:
    path, line = getattr(e, "path", None), getattr(e, "line", None)
    return f"{path}:{line}" if line else f"{path}"


def collect(paths: Iterable[Path | str], selection: Selection, summary: Summary,
            report: Callable[[InputError, str], None] | None = None) -> list[Article]:
    """Read, filter, sort and de-duplicate; counts go to ``summary``; each skipped bad record to ``report``."""
    kept: list[Article] = []
    for item in iter_paths(paths, replay=True):
        if isinstance(item, InputError):
            reason = UNREADABLE
            if str(getattr(item, "path", "")).endswith(".part") and "ended before the end-of-stream" in item.message:
                reason = OPEN_PART  # a part still being written: its tail is past the last flush
            summary.skipped[reason] += 1
            summary.errors.append(item)
            if report:
                report(item, reason)
            continue
        summary.read += 1
        why = selection.reason_to_skip(item)
        if why:
            summary.skipped[why] += 1
            continue
        kept.append(item)
    kept.sort(key=order_key)
    unique: list[Article] = []
    seen: set[str] = set()
    for a in kept:
        if a.id in seen:
            summary.skipped["duplicate id"] += 1
            continue
        seen.add(a.id)
        unique.append(a)
    return unique


class Pacer:
    """Sleeps before each article: ``rate`` articles/s, or event time ``speedup`` times faster, or not at all."""

    def __init__(self, *, rate: float | None = None, speedup: float | None = None,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        if rate is not None and rate <= 0:
            raise ConfigError("must be > 0", entry="--rate")
        if speedup is not None and speedup <= 0:
            raise ConfigError("must be > 0", entry="--speedup")
        self.rate, self.speedup = rate, speedup
        self.clock, self.sleep = clock, sleep
        self._t0: float | None = None
        self._e0: datetime | None = None

    def wait(self, index: int, event_time: datetime) -> None:
        """Block until article number ``index`` (0-based) with this event time is due."""
        if self.rate is None and self.speedup is None:
            return
        if self._t0 is None:
            self._t0, self._e0 = self.clock(), event_time
        if self.rate is not None:
            due = self._t0 + index / self.rate
        else:
            assert self._e0 is not None and self.speedup is not None
            due = self._t0 + max(0.0, (event_time - self._e0).total_seconds()) / self.speedup
        delay = due - self.clock()
        if delay > 0:
            self.sleep(delay)


def publish_all(articles: Sequence[Article], publisher: Publisher, pacer: Pacer, *, notify: bool,
                summary: Summary, progress: Callable[[int], None] | None = None) -> None:
    """Mark and publish every article in order, paced; flush at the end. Failures are counted in ``summary``."""
    mark = {"replay": True, "notify": notify}
    for i, a in enumerate(articles):
        pacer.wait(i, a.event_time)
        out = a.model_copy(update=mark)
        try:
            publisher.publish(out)
        except BufferFullError:
            log.warning("producer buffer full; waiting for the broker to catch up")
            try:
                publisher.flush()
                publisher.publish(out)
            except PublishError as e:
                log.error("cannot publish %s: %s", a.id, e)
                summary.failed += 1
                continue
        except PublishError as e:
            log.error("cannot publish %s: %s", a.id, e)
            summary.failed += 1
            continue
        summary.published += 1
        if progress and (i + 1) % PROGRESS_EVERY == 0:
            progress(i + 1)
    try:
        publisher.flush()
    except PublishError as e:  # "N message(s) were not acknowledged"
        m = re.match(r"(\d+) ", str(e))
        n = min(int(m[1]) if m else 1, summary.published)
        log.error("%s", e)
        summary.failed += n
        summary.published -= n
    if progress:
        progress(len(articles))


def _progress_bar(out: TextIO, total: int) -> tuple[Any, Callable[[int], None]]:
    """A rich progress bar with rate and ETA on ``out``; returns (context manager, update function)."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        Task,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class RateColumn(ProgressColumn):
        def render(self, task: Task) -> Text:
            return Text(f"{task.speed:,.0f}/s" if task.speed else "-/s")

    bar = Progress(TextColumn("replay"), BarColumn(), MofNCompleteColumn(), RateColumn(), TimeElapsedColumn(),
                   TextColumn("ETA"), TimeRemainingColumn(), console=Console(file=out), transient=False)
    task = bar.add_task("replay", total=total)
    return bar, lambda done: bar.update(task, completed=done)


def replay(paths: Sequence[Path | str], publisher: Publisher, *, selection: Selection = Selection(),
           pacer: Pacer | None = None, notify: bool = False, out: TextIO | None = None,
           err: TextIO | None = None, clock: Callable[[], float] = time.monotonic) -> Summary:
    """Replay ``paths`` through ``publisher``; print bad records on ``err`` and the summary on ``out``."""
    out = out or sys.stdout
    err = err or sys.stderr
    summary = Summary()
    t0 = clock()

    def report(e: InputError, reason: str) -> None:
        print(f"trucewatch: replay: skipped {_describe(e)}: {e.message}"
              + (f" ({reason})" if reason != UNREADABLE else ""), file=err)

    articles = collect(paths, selection, summary, report)
    pacer = pacer or Pacer()
    t1 = clock()
    if out.isatty() and articles:
        bar, update = _progress_bar(out, len(articles))
        with bar:
            publish_all(articles, publisher, pacer, notify=notify, summary=summary, progress=update)
    else:
        publish_all(articles, publisher, pacer, notify=notify, summary=summary)
    summary.seconds = clock() - t0
    summary.publish_seconds = clock() - t1
    for line in summary.lines():
        print(f"replay: {line}", file=out)
    return summary


def run_replay(settings: Settings, paths: Sequence[Path | str], since: str | None = None, until: str | None = None,
               sources: Sequence[str] | None = None, rate: float | None = None, speedup: float | None = None,
               max_speed: bool = False, notify: bool = False, *, publisher: Publisher | None = None,
               out: TextIO | None = None, err: TextIO | None = None) -> int:
    """CLI entry (``trucewatch replay``): 0 ok, 1 input unreadable or unpublished; ConfigError (exit 2) if misused."""
    if sum(x for x in (rate is not None, speedup is not None, max_speed)) > 1:
        raise ConfigError("choose one of --rate, --speedup and --max", entry="replay")
    selection = Selection(since=parse_bound(since, "--since"), until=parse_bound(until, "--until"),
                          sources=frozenset(s.casefold() for s in sources or ()))
    if selection.since and selection.until and selection.since >= selection.until:
        raise ConfigError("--since must be before --until", entry="replay")
    pacer = Pacer(rate=rate, speedup=speedup)
    own = publisher is None
    if publisher is None:
        if not settings.kafka_bootstrap:
            raise ConfigError("no broker: set TRUCEWATCH_KAFKA_BOOTSTRAP to the broker to replay into (the embedded "
                              "broker of `trucewatch up` logs its address at start)",
                              path="environment", entry="TRUCEWATCH_KAFKA_BOOTSTRAP")
        from trucewatch.broker import ensure_topics

        topics = Topics.from_settings(settings)
        ensure_topics(settings.kafka_bootstrap, topics.all(), settings.partitions)
        # The live publish path (same Publisher, same schema); no archive: the input already is one.
        publisher = Publisher(make_producer(settings.kafka_bootstrap, **REPLAY_PRODUCER), topics.raw)
    try:
        summary = replay(paths, publisher, selection=selection, pacer=pacer, notify=notify, out=out, err=err)
    finally:
        if own:
            publisher.close()
    return 1 if summary.unreadable or summary.failed else 0
