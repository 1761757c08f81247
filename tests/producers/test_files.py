"""Unit tests for the file readers: text files, directories, JSONL, bad records."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from producers.files import iter_paths
from trucewatch.errors import InputError
from trucewatch.schema import Article


def test_text_file_first_line_is_title_and_stem_is_id(tmp_path: Path) -> None:
    f = tmp_path / "a-1.txt"
    f.write_text("\n  العنوان هنا  \nالسطر الأول\nالسطر الثاني\n", encoding="utf-8")
    (art,) = list(iter_paths([f]))
    assert isinstance(art, Article)
    assert (art.id, art.title, art.body) == ("a-1", "العنوان هنا", "السطر الأول\nالسطر الثاني")


def test_directory_is_read_recursively_in_order(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "b.txt").write_text("ب\nنص", encoding="utf-8")
    (tmp_path / "sub" / "a.txt").write_text("أ\nنص", encoding="utf-8")
    ids = [a.id for a in iter_paths([tmp_path])]
    assert ids == ["b", "a"]


def test_jsonl_records_and_per_line_errors(tmp_path: Path) -> None:
    f = tmp_path / "x.jsonl"
    lines = [
        json.dumps({"id": "r1", "title": "t", "text": "b\x00ody", "date": "2024-06-10", "source": "s", "url": None}),
        "{broken",
        json.dumps({"id": "r2", "title": "t", "text": "x", "date": "not a date"}),
        json.dumps(["not", "an", "object"]),
        "",
        json.dumps({"title": "no id", "text": "x"}),
    ]
    f.write_bytes(("\n".join(lines) + "\n").encode() + b"\xff\xfe broken utf8\n")
    items = list(iter_paths([f]))
    arts = [i for i in items if isinstance(i, Article)]
    errs = [i for i in items if isinstance(i, InputError)]
    assert [a.id for a in arts][0] == "r1"
    assert arts[0].body == "body"
    assert arts[0].published_at is not None and arts[0].published_at.isoformat().startswith("2024-06-10")
    assert len(arts) == 2  # r1 and the record without id (id derived from content)
    assert sorted(e.line for e in errs) == [2, 3, 4, 7]
    assert all(e.path == str(f) for e in errs)
    assert any("'not a date' is not ISO 8601" in str(e) for e in errs), [str(e) for e in errs]


def test_gzip_jsonl_and_missing_path(tmp_path: Path) -> None:
    f = tmp_path / "x.jsonl.gz"
    with gzip.open(f, "wt", encoding="utf-8") as g:
        g.write(json.dumps({"id": "g1", "title": "t", "text": "x"}) + "\n")
    items = list(iter_paths([f, tmp_path / "missing.txt"]))
    assert isinstance(items[0], Article) and items[0].id == "g1"
    assert isinstance(items[1], InputError) and "no such file" in str(items[1])


def test_non_utf8_text_file_is_an_error_not_a_crash(tmp_path: Path) -> None:
    f = tmp_path / "cp1256.txt"
    f.write_bytes("وقف إطلاق النار".encode("cp1256"))
    (item,) = list(iter_paths([f]))
    assert isinstance(item, InputError) and "UTF-8" in str(item)


def test_out_of_range_epoch_dates_are_per_record_errors(tmp_path: Path) -> None:
    """Epoch numbers beyond the platform's time_t (found by the fuzz test: 9.2e18) are an error for that record."""
    f = tmp_path / "x.jsonl"
    recs = [{"id": "ok", "title": "t", "text": "x", "date": 1718000000},
            {"id": "big", "title": "t", "text": "x", "date": 9.223372036854776e18},
            {"id": "neg", "title": "t", "text": "x", "date": -1e20},
            {"id": "bool", "title": "t", "text": "x", "date": True}]
    f.write_text("\n".join(json.dumps(r) for r in recs) + "\n", encoding="utf-8")
    items = list(iter_paths([f]))
    assert [i.id for i in items if isinstance(i, Article)] == ["ok"]
    errs = [i for i in items if isinstance(i, InputError)]
    assert sorted(e.line for e in errs) == [2, 3, 4]
    assert all("date" in str(e) for e in errs), [str(e) for e in errs]


def test_archive_lines_read_from_bytes_equal_the_general_path(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from producers.files import article_from_record, read_jsonl

    full = Article(id="a1", url="https://x/1", source="s", title="عنوان", body="نص\nآخر", summary="ملخص",
                   published_at=datetime(2025, 3, 4, 5, 6, 7, 890, tzinfo=UTC), notify=False).to_bytes()
    lines = [
        full,  # an archive line: the fast path
        b'{"version":1,"id":"a2","title":"t","body":"b"}',  # no fetched_at: not an archived Article
        b'{"version":1,"id":"a3","title":"t","fetched_at":"2025-01-01T00:00:00Z"}',  # no body
        b'{"version":2,"id":"a4","body":"b","fetched_at":"2025-01-01T00:00:00Z"}',  # unknown version: an error
        b'{"version":1,"id":"a5","body":"\xff","fetched_at":"2025-01-01T00:00:00Z"}',  # not UTF-8: an error
        b'{"version":1,"id":"","body":"b","fetched_at":"2025-01-01T00:00:00Z"}',  # empty id: an error
        b'{"version":1,"id":"a6","body":"b","fetched_at":"2025-01-01T00:00:00+03:00","extra":[1]}',
    ]
    for replay in (False, True):
        got = list(read_jsonl(lines, "f", replay=replay))
        for raw, item in zip(lines, got, strict=True):
            try:
                expected: object = article_from_record(json.loads(raw.decode("utf-8")), replay=replay)
            except Exception as e:  # noqa: BLE001 - the general path's error is what the fast path must give too
                expected = type(e)
            if isinstance(item, Article):
                assert isinstance(expected, Article)
                if not {"version", "body", "fetched_at"} <= json.loads(raw).keys():  # stamped with utcnow() each
                    expected = expected.model_copy(update={"fetched_at": item.fetched_at})
                assert item == expected and item.to_bytes() == expected.to_bytes()
            else:
                assert isinstance(item, InputError) and expected in (ValueError, UnicodeDecodeError) or \
                    isinstance(expected, type), (raw, item, expected)
