"""The console sink: one readable, right-to-left-safe line per alert."""

from __future__ import annotations

import sys
from typing import TextIO

from trucewatch.schema import Alert

FSI, PDI = "\u2068", "\u2069"  # first-strong isolate / pop directional isolate


def isolate(text: str) -> str:
    """Wrap text in Unicode isolates so Arabic runs never reorder the surrounding line."""
    return f"{FSI}{text}{PDI}" if text else text


def format_alert(alert: Alert) -> str:
    """One line: kind, severity, headline, corroborations and sources."""
    tag = {"new_visit": "NEW VISIT", "visit_update": "UPDATE", "story": "STORY"}[alert.kind]
    sources = sorted({link.source for link in alert.links})
    src = ", ".join(sources[:5]) + (f" +{len(sources) - 5}" if len(sources) > 5 else "")
    date = alert.first_seen.date().isoformat()
    line = f"[{tag} · {alert.severity}] {isolate(alert.title)} · {date} · {alert.corroborations} report(s)"
    if alert.summary and alert.kind != "visit_update":
        line += f" · {isolate(alert.summary)}"
    if src:
        line += f" · {src}"
    if alert.replay:
        line += " · replay"
    return line


class ConsoleSink:
    """Prints alerts to a stream (stdout by default); implements the sink interface."""

    name = "console"

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout

    def setup(self) -> None:
        """Nothing to set up."""

    def send(self, alert: Alert) -> None:
        """Print one line for the alert and flush."""
        print(format_alert(alert), file=self.out, flush=True)

    def close(self) -> None:
        """Flush the stream."""
        self.out.flush()
