"""Enrichment as one pure function: an Article in, an EnrichedArticle (labels + visits) out."""

from __future__ import annotations

from processors.classify import classify
from processors.visits import extract_visits
from trucewatch.schema import Article, EnrichedArticle


def enrich_article(article: Article) -> EnrichedArticle:
    """Classify the article and extract its visits (each stamped with the article's ingest time)."""
    found = extract_visits(article)
    labels = classify(article, found)
    visits = [v.model_copy(update={"fetched_at": article.fetched_at, "replay": article.replay,
                                       "notify": article.notify})
              for v in found]
    return EnrichedArticle(**article.model_dump(), labels=labels, visits=visits)
