"""Decode a feed body to text whatever the server and the document claim (windows-1256 included)."""

from __future__ import annotations

import codecs
import re
from collections.abc import Mapping

_XML_DECL = re.compile(rb"^\s*<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._:-]+)[\"']", re.IGNORECASE)
_XML_DECL_TEXT = re.compile(r"^(\s*<\?xml[^>]*?encoding\s*=\s*[\"'])([A-Za-z0-9._:-]+)([\"'])", re.IGNORECASE)
_CHARSET = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9._:-]+)", re.IGNORECASE)
_ARABIC = re.compile(r"[\u0600-\u06ff]")
_LATIN_SINGLE_BYTE = {"iso8859-1", "cp1252", "ascii", "latin-1", "iso8859-15"}
_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def _norm(name: str | None) -> str | None:
    if not name:
        return None
    try:
        return codecs.lookup(name.strip()).name
    except LookupError:
        return None


def header_charset(headers: Mapping[str, str] | None) -> str | None:
    """The charset parameter of a Content-Type header, normalised, or None."""
    if not headers:
        return None
    ctype = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    m = _CHARSET.search(ctype or "")
    return _norm(m.group(1)) if m else None


def declared_charset(body: bytes) -> str | None:
    """The encoding of the XML declaration, normalised, or None."""
    m = _XML_DECL.match(body[:512])
    return _norm(m.group(1).decode("ascii")) if m else None


def _try(body: bytes, enc: str | None) -> str | None:
    if not enc:
        return None
    try:
        return body.decode(enc)
    except (UnicodeDecodeError, LookupError):
        return None


def decode_feed(body: bytes, headers: Mapping[str, str] | None = None, *, override: str | None = None,
                lang: str | None = None) -> tuple[str, str]:
    """Return ``(text, encoding used)`` for a feed body.

    Order: the configured override, a BOM, the Content-Type charset, the XML declaration, UTF-8;
    the first that decodes strictly wins. For an Arabic feed, a Latin single-byte result with no
    Arabic letters while windows-1256 yields Arabic is taken as a wrong declaration and replaced.
    When nothing decodes strictly: windows-1256 for Arabic feeds, else windows-1252 with replacement.
    """
    candidates: list[str | None] = [_norm(override)]
    for bom, bom_enc in _BOMS:
        if body.startswith(bom):
            candidates.append(bom_enc)
            break
    candidates += [header_charset(headers), declared_charset(body), "utf-8"]
    text: str | None = None
    used = ""
    for enc in candidates:
        text = _try(body, enc)
        if text is not None:
            used = enc or ""
            break
    arabic = (lang or "ar").lower().startswith(("ar", "fa", "ur"))
    if text is not None and arabic and used in _LATIN_SINGLE_BYTE and not _norm(override):
        if not _ARABIC.search(text) and any(b >= 0xC0 for b in body):
            alt = _try(body, "cp1256")
            if alt is not None and _ARABIC.search(alt):
                text, used = alt, "cp1256"
    if text is None:
        used = "cp1256" if arabic else "cp1252"
        text = body.decode(used, errors="replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    return text, used


def to_utf8_document(text: str) -> bytes:
    """The decoded document as UTF-8 bytes, its XML declaration (if any) saying so."""
    return _XML_DECL_TEXT.sub(r"\g<1>utf-8\g<3>", text, count=1).encode("utf-8")
