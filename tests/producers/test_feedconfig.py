"""Loading and validating config/feeds.yaml; errors name file, line and entry."""

from __future__ import annotations

from pathlib import Path

import pytest

from producers.feedconfig import load_feeds, parse_feeds, source_from_url
from trucewatch.errors import ConfigError
from trucewatch.settings import PACKAGE_CONFIG_DIR

GOOD = """
defaults:
  interval: 600
feeds:
  - name: One
    url: https://one.example/rss
    source: one
  - name: Two
    url: http://www.two.example/feed
    enabled: false
    tz_correction_hours: -3
    timezone: Africa/Cairo
    encoding: windows-1256
    fulltext: true
    seen_in: [somewhere]
"""


def test_parse_good() -> None:
    one, two = parse_feeds(GOOD, "feeds.yaml")
    assert (one.name, one.source, one.interval, one.enabled, one.line) == ("One", "one", 600.0, True, 5)
    assert (two.source, two.enabled, two.tz_correction_hours, two.fulltext, two.line) == ("two.example", False, -3.0,
                                                                                          True, 8)
    assert two.host == "www.two.example"


def test_shipped_feeds_yaml_is_valid() -> None:
    feeds = load_feeds(PACKAGE_CONFIG_DIR / "feeds.yaml")
    enabled = [f for f in feeds if f.enabled]
    assert len(feeds) >= 50 and len(enabled) >= 15
    assert all(f.confidence == "high" for f in enabled)
    assert all(f.lang == "ar" for f in feeds)
    assert len({f.source for f in feeds}) <= 64  # a bounded metric label
    assert any(f.tz_correction_hours for f in enabled)


@pytest.mark.parametrize(("text", "line", "needle"), [
    ("feeds:\n  - name: A\n    url: ftp://a.example/x\n", 2, "feeds[0] (A): url must be http(s)"),
    ("feeds:\n  - name: A\n    url: https://a.example/\n  - name: B\n", 4, "feeds[1] (B): missing 'url'"),
    ("feeds:\n  - url: https://a.example/\n    colour: red\n", 2, "unknown key(s): colour"),
    ("feeds:\n  - url: https://a.example/\n    source: 'Has Spaces'\n", 2, "must match"),
    ("feeds:\n  - url: https://a.example/\n    interval: 1\n", 2, "interval must be between"),
    ("feeds:\n  - url: https://a.example/\n    timezone: Mars/Base\n", 2, "unknown timezone"),
    ("feeds:\n  - url: https://a.example/\n    encoding: klingon\n", 2, "unknown encoding"),
    ("feeds:\n  - url: https://a.example/\n    enabled: sometimes\n", 2, "enabled must be true or false"),
    ("feeds:\n  - url: https://a.example/\n  - url: https://a.example/\n", 3, "duplicate url"),
    ("feeds:\n  - url: [unclosed\n", 3, "invalid YAML"),
    ("feeds:\n  - just a string\n", 2, "a feed must be a mapping"),
])
def test_errors_name_file_line_and_entry(text: str, line: int, needle: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_feeds(text, "conf/feeds.yaml")
    assert e.value.path == "conf/feeds.yaml" and e.value.line == line
    assert needle in str(e.value) and str(e.value).startswith(f"conf/feeds.yaml:{line}: ")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_feeds(tmp_path / "nope.yaml")


def test_source_from_url() -> None:
    assert source_from_url("https://feeds.bbci.co.uk/arabic/rss.xml") == "bbci.co.uk"
    assert source_from_url("https://www.aljazeera.net/x") == "aljazeera.net"
    assert source_from_url("https://example.com/") == "example.com"
