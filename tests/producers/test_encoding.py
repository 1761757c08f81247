"""decode_feed: windows-1256 with and without a (correct) declaration, BOMs, overrides."""

from __future__ import annotations

from producers.encoding import declared_charset, decode_feed, header_charset, to_utf8_document

TITLE = "وقف إطلاق النار في غزة"


def doc(decl: str = "") -> str:
    return f'<?xml version="1.0"{decl}?><rss version="2.0"><channel><title>{TITLE}</title></channel></rss>'


def test_declared_windows_1256() -> None:
    body = doc(' encoding="windows-1256"').encode("cp1256")
    text, enc = decode_feed(body, {"Content-Type": "application/rss+xml"})
    assert TITLE in text and enc == "cp1256"


def test_charset_header_wins_without_declaration() -> None:
    body = doc().encode("cp1256")
    text, enc = decode_feed(body, {"content-type": 'text/xml; charset="Windows-1256"'})
    assert TITLE in text and enc == "cp1256"


def test_no_declaration_at_all_falls_back_to_1256_for_arabic() -> None:
    text, enc = decode_feed(doc().encode("cp1256"), {}, lang="ar")
    assert TITLE in text and enc == "cp1256"


def test_wrong_latin_declaration_is_detected_for_arabic_feeds() -> None:
    body = doc(' encoding="iso-8859-1"').encode("cp1256")
    text, enc = decode_feed(body, {"Content-Type": "text/xml; charset=iso-8859-1"}, lang="ar")
    assert TITLE in text and enc == "cp1256"
    latin, enc2 = decode_feed(body, {}, lang="en")  # not an Arabic feed: the declaration is believed
    assert TITLE not in latin and enc2 == "iso8859-1"


def test_wrong_utf8_header_falls_through_to_the_declaration() -> None:
    body = doc(' encoding="windows-1256"').encode("cp1256")
    text, _ = decode_feed(body, {"Content-Type": "application/xml; charset=utf-8"})
    assert TITLE in text


def test_override_and_utf8_and_bom() -> None:
    body = doc(' encoding="utf-8"').encode("cp1256")
    assert TITLE in decode_feed(body, {}, override="windows-1256")[0]
    assert decode_feed(doc().encode("utf-8"), {})[1] == "utf-8"
    text, _ = decode_feed(b"\xef\xbb\xbf" + doc().encode("utf-8"), {})
    assert text.startswith("<?xml")


def test_helpers() -> None:
    assert header_charset({"Content-Type": "text/html"}) is None
    assert header_charset({"Content-Type": "text/xml; charset=bogus-charset"}) is None
    assert declared_charset(b"<?xml version='1.0' encoding='WINDOWS-1256'?><a/>") == "cp1256"
    assert to_utf8_document(doc(' encoding="windows-1256"')).startswith(b'<?xml version="1.0" encoding="utf-8"?>')
