"""Enrichment as one pure function: an Article in, an EnrichedArticle (labels + visits) out."""

from __future__ import annotations

from processors.classify import classify
from processors.visits import extract_visits
from trucewatch.schema import Article, EnrichedArticle

_ARTICLE_FIELDS = tuple(Article.model_fields)


def enrich_article(article: Article) -> EnrichedArticle:
    """Classify the article and extract its visits (each stamped with the article's ingest time; an undated
    article's visit keys take the month it was fetched, see ``extract_visits``).

    The result is assembled without validating again what is already validated (the article's fields, the
    classifier's Labels, the extractor's Visits): ``model_construct`` gives the same model, equal to and
    serialising the same as ``EnrichedArticle(**article.model_dump(), labels=labels, visits=visits)``.
    """
    found = extract_visits(article, fetch_time_bucket=True)
    labels = classify(article, found)
    stamp = {"fetched_at": article.fetched_at, "replay": article.replay, "notify": article.notify}
    visits = [v.model_copy(update=stamp) for v in found]
    fields = {name: getattr(article, name) for name in _ARTICLE_FIELDS}
    return EnrichedArticle.model_construct(**fields, labels=labels, visits=visits)
