"""Topic names (with the configured prefix) and their keys."""

from __future__ import annotations

from dataclasses import dataclass

from trucewatch.settings import Settings

RAW = "articles.raw"
ENRICHED = "articles.enriched"
VISITS = "visits"
ALERTS = "alerts"
DEADLETTER = "deadletter"
ALL = (RAW, ENRICHED, VISITS, ALERTS, DEADLETTER)
STORIES = "stories"  # the story stage's input (story items from enrich); Faust declares it, so not in ALL


@dataclass(frozen=True)
class Topics:
    """The full topic names for one deployment."""

    raw: str
    enriched: str
    visits: str
    alerts: str
    deadletter: str
    stories: str = ""

    @classmethod
    def from_settings(cls, settings: Settings) -> Topics:
        """Topic names with ``settings.topic_prefix``."""
        p = settings.topic_prefix
        return cls(raw=p + RAW, enriched=p + ENRICHED, visits=p + VISITS, alerts=p + ALERTS,
                   deadletter=p + DEADLETTER, stories=p + STORIES)

    def all(self) -> list[str]:
        """Every topic name."""
        return [self.raw, self.enriched, self.visits, self.alerts, self.deadletter]


def story_group(settings: Settings) -> str:
    """The consumer group (Faust app id) of the story stage when it runs in a process of its own."""
    return f"{settings.app_id}-stories"
