"""Turn one feedparser entry into an Article: canonical URL, stable id, clean text, sane dates."""

from __future__ import annotations

import calendar
import html
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from producers.feedconfig import FeedConfig
from trucewatch.schema import Article, article_id

MAX_TITLE = 1_000
MAX_SUMMARY = 20_000
MAX_BODY = 500_000
FUTURE_SKEW = timedelta(minutes=5)  # later than fetch time + this is "in the future" and clamped

TRACKING_PARAMS = frozenset({
    "fbclid", "gclid", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "twclid", "igshid", "mc_cid", "mc_eid",
    "_ga", "_gl", "_hsenc", "_hsmi", "mkt_tok", "oly_anon_id", "oly_enc_id", "vero_id", "rb_clickid", "s_cid",
    "ocid", "cmpid", "ncid", "ito", "at_medium", "at_campaign", "at_custom1", "at_custom2", "at_custom3",
    "at_custom4", "ref_src", "ref_url", "spm",
})
TRACKING_PREFIXES = ("utm_", "at_", "pk_", "mtm_", "hsa_")


# ---------------------------------------------------------------- URLs


def canonical_url(url: str | None, base: str | None = None) -> str | None:
    """``url`` resolved against ``base``, lower-cased scheme/host, default port, fragment and tracking
    parameters (utm_*, fbclid, gclid, ...) removed; None for an empty or non-http(s) URL."""
    if not url or not url.strip():
        return None
    url = url.strip()
    if base:
        url = urljoin(base, url)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname.lower()
    if port and not ((scheme == "http" and port == 80) or (scheme == "https" and port == 443)):
        host = f"{host}:{port}"
    if parts.username:
        host = f"{parts.username}@{host}"
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
             if k.lower() not in TRACKING_PARAMS and not k.lower().startswith(TRACKING_PREFIXES)]
    return urlunsplit((scheme, host, parts.path or "/", urlencode(query, doseq=True), ""))


# ---------------------------------------------------------------- HTML


class _TextExtractor(HTMLParser):
    """Collects the text of an HTML fragment; block elements become line breaks."""

    BLOCK = frozenset({"p", "br", "div", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "table",
                       "blockquote", "section", "article", "figure", "figcaption", "hr"})
    SKIP = frozenset({"script", "style", "noscript", "iframe", "template"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in self.SKIP:
            self.skip += 1
        elif tag in self.BLOCK:
            self.parts.append("\n")

    def handle_startendtag(self, tag: str, attrs: Any) -> None:
        if tag in self.BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag in self.BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.parts.append(data)


_WS = re.compile(r"[ \t\u00a0\u200b\r\f\v]+")
_NL = re.compile(r"\s*\n\s*")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean_text(value: str | None, *, limit: int | None = None) -> str:
    """Plain text from an HTML (or plain) fragment: tags dropped, entities decoded, whitespace collapsed."""
    if not value:
        return ""
    s = value
    if "<" in s or "&" in s:
        parser = _TextExtractor()
        try:
            parser.feed(s)
            parser.close()
            s = "".join(parser.parts)
        except Exception:  # noqa: BLE001 - a broken fragment falls back to a crude strip
            s = html.unescape(re.sub(r"<[^>]*>", " ", s))
    s = _CONTROL.sub("", s)
    s = _NL.sub("\n", _WS.sub(" ", s)).strip()
    if limit is not None and len(s) > limit:
        s = s[:limit].rstrip()
    return s


# ---------------------------------------------------------------- dates

_ARABIC_DIGITS = str.maketrans("٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹", "01234567890123456789")
ARABIC_MONTHS: dict[str, int] = {
    "يناير": 1, "كانون الثاني": 1, "جانفي": 1,
    "فبراير": 2, "شباط": 2, "فيفري": 2,
    "مارس": 3, "آذار": 3, "اذار": 3,
    "أبريل": 4, "ابريل": 4, "إبريل": 4, "نيسان": 4, "أفريل": 4, "افريل": 4,
    "مايو": 5, "أيار": 5, "ايار": 5, "ماي": 5,
    "يونيو": 6, "يونيه": 6, "حزيران": 6, "جوان": 6,
    "يوليو": 7, "يوليه": 7, "تموز": 7, "جويلية": 7,
    "أغسطس": 8, "اغسطس": 8, "آب": 8, "أوت": 8,
    "سبتمبر": 9, "أيلول": 9, "ايلول": 9,
    "أكتوبر": 10, "اكتوبر": 10, "تشرين الأول": 10, "تشرين الاول": 10,
    "نوفمبر": 11, "تشرين الثاني": 11,
    "ديسمبر": 12, "كانون الأول": 12, "كانون الاول": 12,
}
_MONTH_ALT = "|".join(sorted((re.escape(m) for m in ARABIC_MONTHS), key=len, reverse=True))
_AR_DATE = re.compile(
    rf"(?P<day>\d{{1,2}})\s*(?:/\s*)?(?P<month>{_MONTH_ALT})\s*[,،]?\s*(?P<year>\d{{4}})"
    r"(?:\s*[-,،]?\s*(?:الساعة\s*)?(?P<h>\d{1,2})[:.](?P<m>\d{2})(?::(?P<s>\d{2}))?\s*(?P<ampm>ص|م|صباحا|مساء|مساءً|صباحًا|AM|PM|am|pm)?)?"
)
_TZ_SUFFIX = re.compile(r"(?:GMT|UTC)\s*(?P<sign>[+-])\s*(?P<hh>\d{1,2})(?::?(?P<mm>\d{2}))?", re.IGNORECASE)


def parse_arabic_date(value: str, tz: Any = UTC) -> datetime | None:
    """Parse an Arabic-word date such as ``الخميس، 24 سبتمبر 2026 01:00 م`` (Egyptian, Levantine or
    Maghrebi month names, Arabic-Indic digits, ص/م for am/pm, optional ``GMT+3``); None if not one.
    A date without an explicit offset is read in ``tz``."""
    s = value.translate(_ARABIC_DIGITS).replace("\u0640", "")
    m = _AR_DATE.search(s)
    if not m:
        return None
    hour = int(m.group("h") or 0)
    minute = int(m.group("m") or 0)
    second = int(m.group("s") or 0)
    ampm = (m.group("ampm") or "").lower()
    if ampm.startswith(("م", "pm")) and hour < 12:
        hour += 12
    elif ampm.startswith(("ص", "am")) and hour == 12:
        hour = 0
    try:
        naive = datetime(int(m.group("year")), ARABIC_MONTHS[m.group("month")], int(m.group("day")),
                         hour, minute, second)
    except ValueError:
        return None
    off = _TZ_SUFFIX.search(s[m.end():])
    if off:
        delta = timedelta(hours=int(off.group("hh")), minutes=int(off.group("mm") or 0))
        return (naive - delta if off.group("sign") == "+" else naive + delta).replace(tzinfo=UTC)
    return naive.replace(tzinfo=tz).astimezone(UTC)


def _parse_iso_naive(value: str, tz: Any) -> datetime | None:
    s = value.strip().translate(_ARABIC_DIGITS)
    try:
        dt = datetime.fromisoformat(s.replace("Z", "+00:00").replace(" ", "T", 1))
    except ValueError:
        return None
    return (dt if dt.tzinfo else dt.replace(tzinfo=tz)).astimezone(UTC)


_OFFSET_IN_TEXT = re.compile(r"(?:[+-]\d{2}:?\d{2}|\b(?:GMT|UTC|Z|[ECMP][SD]T)\b)\s*$|Z$")


def entry_date(entry: Mapping[str, Any], feed: FeedConfig) -> datetime | None:
    """The entry's publication time as aware UTC (published, else updated, else created), or None.

    feedparser's parsed value is used when it has one; otherwise the raw string is read as an
    Arabic-word date or a naive ISO date in the feed's ``timezone``. Then the feed's
    ``tz_correction_hours`` is added.
    """
    dt: datetime | None = None
    tz = feed.tzinfo
    for key in ("published", "updated", "created"):
        parsed = entry.get(f"{key}_parsed")
        raw = entry.get(key)
        if parsed:
            try:
                dt = datetime.fromtimestamp(calendar.timegm(parsed), UTC)
            except (OverflowError, ValueError, TypeError):
                dt = None
            # feedparser reads a zone-less date as UTC: re-read it in the feed's zone
            if dt is not None and isinstance(raw, str) and feed.timezone != "UTC" and not _OFFSET_IN_TEXT.search(
                    raw.strip()):
                dt = dt.replace(tzinfo=tz).astimezone(UTC)
        elif isinstance(raw, str) and raw.strip():
            dt = parse_arabic_date(raw, tz) or _parse_iso_naive(raw, tz)
        if dt is not None:
            break
    if dt is not None and feed.tz_correction_hours:
        dt = dt + timedelta(hours=feed.tz_correction_hours)
    return dt


# ---------------------------------------------------------------- entry -> Article


def _first_content(entry: Mapping[str, Any]) -> str:
    content = entry.get("content") or []
    best = ""
    for c in content:
        value = c.get("value") if isinstance(c, Mapping) else None
        if isinstance(value, str) and len(value) > len(best):
            best = value
    return best


def entry_lang(entry: Mapping[str, Any], feed_meta: Mapping[str, Any] | None, default: str | None) -> str | None:
    """Language of an entry: title/summary xml:lang, else the feed's <language>, else ``default``."""
    for key in ("title_detail", "summary_detail"):
        detail = entry.get(key)
        lang = detail.get("language") if isinstance(detail, Mapping) else None
        if lang:
            return str(lang).split("-")[0].lower()
    lang = (feed_meta or {}).get("language")
    if lang:
        return str(lang).split("-")[0].lower()
    return default


def _url_and_guid(entry: Mapping[str, Any], base: str) -> tuple[str | None, str | None]:
    link = entry.get("link")
    url = canonical_url(link if isinstance(link, str) else None, base)
    guid = entry.get("id") or entry.get("guid")
    guid = str(guid) if guid else None
    if url is None and guid and guid.startswith(("http://", "https://")):
        url = canonical_url(guid, base)
    return url, guid


def entry_key(entry: Mapping[str, Any], feed: FeedConfig, base_url: str | None = None) -> str | None:
    """The Article id ``entry_to_article`` would give, computed cheaply when the entry has a link or a
    GUID (None otherwise: the id then hashes the text, so build the Article)."""
    url, guid = _url_and_guid(entry, base_url or feed.url)
    if url is None and guid is None:
        return None
    return article_id(url=url, source=feed.source, guid=guid)


def entry_to_article(
    entry: Mapping[str, Any],
    feed: FeedConfig,
    *,
    fetched_at: datetime,
    base_url: str | None = None,
    feed_meta: Mapping[str, Any] | None = None,
) -> Article | None:
    """One feedparser entry -> Article, or None when the entry has neither a link, a title nor text.

    The id hashes the canonical URL (tracking parameters and fragment stripped); only entries
    without a usable link fall back to source + GUID, then to the text. Dates later than
    ``fetched_at`` (plus a few minutes of skew) are clamped to ``fetched_at``.
    """
    url, guid = _url_and_guid(entry, base_url or feed.url)
    title = clean_text(entry.get("title"), limit=MAX_TITLE)
    content = _first_content(entry)
    summary = clean_text(entry.get("summary") or entry.get("description"), limit=MAX_SUMMARY)
    body = clean_text(content, limit=MAX_BODY) if content else ""
    if body and body == summary:
        body = ""
    if not (url or title or summary or body):
        return None
    published = entry_date(entry, feed)
    if published is not None and published > fetched_at + FUTURE_SKEW:
        published = fetched_at
    aid = article_id(url=url, source=feed.source, guid=guid, text=title + "\n" + (summary or body))
    return Article(id=aid, url=url, source=feed.source, feed=feed.name, title=title, summary=summary, body=body,
                   lang=entry_lang(entry, feed_meta, feed.lang), published_at=published, fetched_at=fetched_at)
