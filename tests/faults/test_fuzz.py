"""Fuzzing: random bytes, XML and JSON at the feed parser, the article decoder and `trucewatch classify`."""

from __future__ import annotations

import io
import json
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from producers.entries import entry_key, entry_to_article
from producers.feedconfig import FeedConfig
from producers.feeds import parse_document
from trucewatch.errors import DecodeError, FeedError, TrucewatchError
from trucewatch.schema import Article, decode

EXAMPLES = 2000
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])

FEED = FeedConfig(name="fuzz", url="http://127.0.0.1:1/feed.xml", source="fuzz")
NOW = datetime(2026, 1, 1, tzinfo=UTC)

ARABIC = st.text(alphabet=st.characters(min_codepoint=0x0600, max_codepoint=0x06FF), max_size=40)
TEXT = st.one_of(st.text(max_size=60), ARABIC, st.sampled_from(["&amp;", "&lt;b&gt;", "<![CDATA[x]]>", "&#0;",
                                                                  "&bogus;", "]]>", "<", "\x00", "\ufffe"]))
TAGS = ["rss", "channel", "item", "entry", "feed", "title", "link", "description", "summary", "content",
        "pubDate", "published", "updated", "guid", "id", "author", "category", "rdf:RDF", "dc:date", "x"]


@st.composite
def xml_field(draw) -> str:
    """One leaf element: a random tag, maybe an attribute, random text, a right, missing or wrong close."""
    tag = draw(st.sampled_from(TAGS))
    attr = draw(st.sampled_from(["", ' href="http://x/?a=1&amp;b=2"', ' rel="alternate"', ' type="html"', ' x="<"']))
    close = draw(st.sampled_from([f"</{tag}>", f"</{tag}>", f"</{tag}>", "", "</other>"]))
    return f"<{tag}{attr}>{draw(TEXT)}{close}"


@st.composite
def xml_document(draw) -> bytes:
    """A random RSS/Atom/RDF-ish document: items of random fields, random encodings, maybe truncated."""
    decl = draw(st.sampled_from(['<?xml version="1.0" encoding="UTF-8"?>', '<?xml version="1.0" '
                                 'encoding="windows-1256"?>', "", "<!DOCTYPE html>"]))
    root = draw(st.sampled_from(["rss", "feed", "rdf:RDF", "html", "channel"]))
    item = draw(st.sampled_from(["item", "entry"]))
    items = draw(st.lists(st.lists(xml_field(), max_size=5), max_size=4))
    inner = "".join(f"<{item}>{''.join(fields)}</{item}>" for fields in items)
    doc = f"{decl}<{root}><channel>{draw(xml_field())}{inner}</channel></{root}>"
    enc = draw(st.sampled_from(["utf-8", "cp1256", "utf-16"]))
    data = doc.encode(enc, errors="replace")
    if draw(st.booleans()):
        data = data[: draw(st.integers(min_value=0, max_value=len(data)))]
    return data


JSON_VALUE = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
                          lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
                          max_leaves=12)
ARTICLE_KEYS = ["id", "title", "text", "body", "summary", "date", "published_at", "url", "source", "version", "lang"]
ARTICLE_LIKE = st.dictionaries(st.sampled_from(ARTICLE_KEYS), JSON_VALUE | TEXT, max_size=8)
RANDOM_JSON = st.one_of(JSON_VALUE, ARTICLE_LIKE).map(lambda v: json.dumps(v, ensure_ascii=False).encode())


def parse_feed_bytes(body: bytes) -> int:
    """The poller's path for one response body: parse, then key and convert every entry."""
    try:
        parsed = parse_document(body, {"content-type": "application/rss+xml"}, FEED, FEED.url)
    except FeedError:
        return 0
    n = 0
    for entry in parsed.entries:
        entry_key(entry, FEED, FEED.url)
        if entry_to_article(entry, FEED, fetched_at=NOW, base_url=FEED.url, feed_meta=parsed.meta) is not None:
            n += 1
    return n


INPUTS = {"bytes": st.binary(max_size=3000), "xml": xml_document(), "json": RANDOM_JSON}
KINDS = pytest.mark.parametrize("kind", sorted(INPUTS))


@KINDS
@FUZZ
@given(data=st.data())
def test_feed_parser_never_raises_unhandled(kind: str, data: st.DataObject) -> None:
    parse_feed_bytes(data.draw(INPUTS[kind]))


@KINDS
@FUZZ
@given(data=st.data())
def test_article_decoder_raises_only_decode_error(kind: str, data: st.DataObject) -> None:
    try:
        article = decode(Article, data.draw(INPUTS[kind]))
    except DecodeError:
        return
    assert isinstance(article, Article)


@KINDS
@FUZZ
@given(data=st.data(), name=st.sampled_from(["x.jsonl", "x.txt"]))
def test_classify_command_gives_a_result_or_a_per_record_error(kind: str, data: st.DataObject, name: str) -> None:
    from processors.report import run_classify

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / name
        path.write_bytes(data.draw(INPUTS[kind]))
        out = io.StringIO()
        try:
            status = run_classify([str(path)], jsonl=True, out=out)
        except TrucewatchError as e:  # only a configuration problem may stop the command
            raise AssertionError(f"classify stopped on input data: {e}") from e
    assert status in (0, 1, 2)
    for line in out.getvalue().splitlines():
        assert "labels" in json.loads(line)
