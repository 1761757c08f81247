"""``trucewatch alerts``: list stored alerts as JSONL or as a readable, right-to-left-safe table."""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime
from typing import TextIO

from sinks.store import open_store
from trucewatch.errors import InputError
from trucewatch.schema import Alert
from trucewatch.settings import Settings

KINDS = ("new_visit", "visit_update", "story")
# Bidi controls in untrusted text could reorder the columns around them; they are removed before display.
_BIDI_CONTROLS = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
FSI, PDI = "\u2068", "\u2069"


def isolate(text: str) -> str:
    """``text`` without bidi controls, wrapped in First Strong Isolate … Pop Directional Isolate, so Arabic
    (right-to-left) text stays inside its own cell and never reorders its neighbours."""
    clean = _BIDI_CONTROLS.sub("", text)
    return f"{FSI}{clean}{PDI}" if clean else ""


def parse_since(value: str | None) -> datetime | None:
    """A ``--since`` value (``YYYY-MM-DD`` or ISO-8601 datetime; naive = UTC) as an aware datetime."""
    if not value:
        return None
    try:
        d = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"--since: not a date or ISO-8601 datetime: {value!r}", path="--since") from None
    return d if d.tzinfo else d.replace(tzinfo=UTC)


def render_table(alerts: list[Alert], out: TextIO, *, width: int | None = None) -> None:
    """Write ``alerts`` as a rich table to ``out`` (colour only on a terminal)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(show_lines=False, title=f"{len(alerts)} alert(s)", title_justify="left")
    table.add_column("first seen (UTC)", no_wrap=True)
    table.add_column("kind", no_wrap=True)
    table.add_column("sev", no_wrap=True)
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("title", overflow="fold")
    table.add_column("sources", overflow="fold")
    table.add_column("id", no_wrap=True)
    for a in alerts:
        sources = ", ".join(sorted({isolate(lk.source) for lk in a.links}))
        table.add_row(a.first_seen.astimezone(UTC).strftime("%Y-%m-%d %H:%M"), a.kind, a.severity,
                      str(a.corroborations), isolate(a.title) + (" [replay]" if a.replay else ""), sources, a.id)
    console = Console(file=out, width=width or (None if out.isatty() else 160), highlight=False,
                      force_terminal=None if out.isatty() else False, soft_wrap=False)
    console.print(table)


def run_alerts(settings: Settings, jsonl: bool = False, kind: str | None = None, since: str | None = None,
               limit: int = 1000, out: TextIO | None = None) -> int:
    """List alerts from the store at ``settings.effective_store_url``, newest first. Returns an exit status:
    0 on success, 2 on a bad option (message on stderr). StoreError propagates to the CLI."""
    out = out or sys.stdout
    if kind is not None and kind not in KINDS:
        print(f"trucewatch: error: --kind must be one of {', '.join(KINDS)}", file=sys.stderr)
        return 2
    try:
        since_dt = parse_since(since)
    except InputError as e:
        print(f"trucewatch: error: {e}", file=sys.stderr)
        return 2
    store = open_store(settings.effective_store_url)
    try:
        alerts = store.list_alerts(kind=kind, since=since_dt, limit=limit)
    finally:
        store.close()
    if jsonl:
        for a in alerts:
            out.write(a.model_dump_json() + "\n")
        out.flush()
    else:
        render_table(alerts, out)
    return 0
