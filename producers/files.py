"""Read articles from text files (first line = title), directories of them, and JSONL records.

Every reader yields either an Article or an InputError for that one record, so one bad
line or file never stops a run.
"""

from __future__ import annotations

import gzip
import json
import sys
import zlib
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from trucewatch.errors import InputError
from trucewatch.schema import Article, article_id

MAX_RECORD_BYTES = 8 * 1024 * 1024  # a record or text file above this is reported, not read
TEXT_SUFFIXES = {".txt", ".text", ".md"}
JSONL_SUFFIXES = {".jsonl", ".ndjson", ".json"}

Item = Article | InputError


def parse_date(value: Any) -> datetime | None:
    """A date/datetime from JSON (ISO 8601, 'YYYY-MM-DD', epoch seconds) as aware UTC; None if absent.

    Raises ValueError for a value that is present but unreadable.
    """
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError("date must be a string or number, not bool")
    if isinstance(value, int | float):
        try:
            return datetime.fromtimestamp(float(value), UTC)
        except (OverflowError, OSError, ValueError):  # inf, nan, or beyond the platform's time_t / year 9999
            raise ValueError(f"date {value!r} is not a readable epoch timestamp") from None
    if not isinstance(value, str):
        raise ValueError(f"date must be a string or number, not {type(value).__name__}")
    s = value.strip()
    try:
        if len(s) == 10:
            d = date.fromisoformat(s)
            return datetime(d.year, d.month, d.day, tzinfo=UTC)
        dt = datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"date {value[:40]!r} is not ISO 8601 (YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS+00:00) "
                         "nor epoch seconds") from None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _clean(s: Any) -> str:
    """Text with NULs and other C0 controls (except newline/tab) removed."""
    if not isinstance(s, str):
        return "" if s is None else str(s)
    if not any(ord(c) < 32 for c in s):
        return s
    return "".join(c for c in s if ord(c) >= 32 or c in "\n\t")


def article_from_record(rec: dict[str, Any], *, default_source: str = "file", replay: bool = False) -> Article:
    """Build an Article from a JSONL record (``id,title,text,date,url,source``; Article fields also accepted).

    Raises ValueError / ValidationError for a record that cannot be an Article.
    """
    if not isinstance(rec, dict):
        raise ValueError(f"record is a JSON {type(rec).__name__}, not an object")
    if "version" in rec and "body" in rec and "fetched_at" in rec:  # already an Article (archives)
        art = Article.model_validate(rec)
        return art.model_copy(update={"replay": True}) if replay else art
    title = _clean(rec.get("title"))
    body = _clean(rec.get("text") if rec.get("text") is not None else rec.get("body"))
    summary = _clean(rec.get("summary"))
    url = rec.get("url") or None
    source = _clean(rec.get("source")) or default_source
    rid = rec.get("id")
    aid = str(rid) if rid not in (None, "") else article_id(url=url, source=source, text=title + body)
    published = parse_date(rec.get("date", rec.get("published_at")))
    fields: dict[str, Any] = dict(id=aid, url=url, source=source, feed=rec.get("feed"), title=title,
                                  summary=summary, body=body, lang=rec.get("lang") or "ar",
                                  published_at=published, replay=replay)
    return Article(**fields)


def read_text_file(path: Path, *, source: str = "file", replay: bool = False) -> Article:
    """An Article from a text file: first non-empty line the title, the rest the body; id = file stem.

    Raises InputError for unreadable, oversized or non-UTF-8 files.
    """
    try:
        size = path.stat().st_size
        if size > MAX_RECORD_BYTES:
            raise InputError(f"{size} bytes exceeds the {MAX_RECORD_BYTES}-byte limit", path=str(path), line=None)
        raw = path.read_bytes()
    except OSError as e:
        raise InputError(f"cannot read: {e.strerror}", path=str(path), line=None) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError(f"not UTF-8 (byte {e.start})", path=str(path), line=None) from None
    lines = _clean(text).strip().splitlines()
    title = lines[0].strip() if lines else ""
    body = "\n".join(lines[1:]).strip()
    return Article(id=path.stem, source=source, title=title, body=body, replay=replay)


_ARTICLE_LINE = b'{"version":'  # how a serialised Article (an archive line) starts
_ARCHIVE_KEYS = frozenset(("version", "body", "fetched_at"))


def _archived_article(raw: bytes, replay: bool) -> Article | None:
    """The Article of an archive line parsed straight from its bytes (no dict in between: ~3x faster), or None to
    take the general path. Only a line that holds ``version``, ``body`` and ``fetched_at`` itself is taken here
    (``model_fields_set`` is what the line holds), exactly the lines ``article_from_record`` validates as an
    Article; anything else, including every line that fails, goes the general way and gets its usual error."""
    try:
        art = Article.model_validate_json(raw)
    except ValidationError:
        return None
    if not _ARCHIVE_KEYS <= art.model_fields_set:
        return None
    return art.model_copy(update={"replay": True}) if replay else art


def read_jsonl(lines: Iterable[bytes], name: str, *, replay: bool = False) -> Iterator[Item]:
    """Articles from JSONL lines; a bad line yields an InputError naming ``name`` and the line number.

    A read failure (a truncated or corrupt gzip member, an I/O error) yields one InputError naming the
    line where reading stopped, after every line read before it; the rest of that input is skipped.
    """
    it = enumerate(lines, 1)
    n = 0
    while True:
        try:
            n, raw = next(it)
        except StopIteration:
            return
        except (OSError, EOFError, zlib.error) as e:  # truncated gzip (EOFError), bad CRC/header, bad deflate
            yield InputError(f"cannot read further (rest of file skipped): {e}", path=name, line=n + 1)
            return
        if not raw.strip():
            continue
        if raw.startswith(_ARTICLE_LINE) and len(raw) <= MAX_RECORD_BYTES:
            art = _archived_article(raw, replay)
            if art is not None:
                yield art
                continue
        try:
            if len(raw) > MAX_RECORD_BYTES:
                raise ValueError(f"line of {len(raw)} bytes exceeds the {MAX_RECORD_BYTES}-byte limit")
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise ValueError(f"not UTF-8 (byte {e.start})") from None
            rec = json.loads(text)
            yield article_from_record(rec, replay=replay)
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(x) for x in first.get("loc", ()))
            yield InputError(f"{where}: {first.get('msg')}", path=name, line=n)
        except (ValueError, TypeError) as e:  # json.JSONDecodeError is a ValueError
            yield InputError(str(e), path=name, line=n)


def _open_lines(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as head:  # gzip by content, so archive parts (``.jsonl.gz.part``) read too
        gz = head.read(2) == b"\x1f\x8b"
    opener = gzip.open if gz or path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        yield from f


def iter_path(path: Path, *, replay: bool = False) -> Iterator[Item]:
    """Articles from one path: a text file, a (gzipped) JSONL file, a directory of them, or '-' (stdin JSONL)."""
    if str(path) == "-":
        yield from read_jsonl(sys.stdin.buffer, "<stdin>", replay=replay)
        return
    if path.is_dir():
        for child in sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")):
            yield from iter_path(child, replay=replay)
        return
    if not path.exists():
        yield InputError("no such file or directory", path=str(path), line=None)
        return
    suffixes = {s.lower() for s in path.suffixes}
    if suffixes & JSONL_SUFFIXES:
        try:
            yield from read_jsonl(_open_lines(path), str(path), replay=replay)
        except (OSError, EOFError) as e:  # truncated gzip, unreadable file
            yield InputError(f"cannot read further: {e}", path=str(path), line=None)
        return
    try:
        yield read_text_file(path, replay=replay)
    except InputError as e:
        yield e


def iter_paths(paths: Iterable[Path | str], *, replay: bool = False) -> Iterator[Item]:
    """Articles from many paths, in order; errors are yielded, not raised."""
    for p in paths:
        yield from iter_path(Path(p), replay=replay)
