"""Loading, validating and overriding the YAML knowledge."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from processors.knowledge import FILES, get_knowledge, load_knowledge
from trucewatch.errors import ConfigError
from trucewatch.settings import PACKAGE_CONFIG_DIR


def test_shipped_knowledge_loads() -> None:
    kn = load_knowledge()
    assert {"ceasefire", "mediation", "aid"} <= set(kn.thresholds)
    assert "us-blinken" in kn.officials
    assert kn.officials["eg-rashad"].country == "EG"
    assert kn.capitals["EG"] == "Cairo"


def test_knowledge_is_cached() -> None:
    assert get_knowledge() is get_knowledge()


def _copy(tmp_path: Path) -> Path:
    base = tmp_path / "base"
    base.mkdir()
    for f in FILES:
        shutil.copy(PACKAGE_CONFIG_DIR / f, base / f)
    return base


def test_user_file_extends_and_overrides(tmp_path: Path) -> None:
    user = tmp_path / "user"
    user.mkdir()
    (user / "officials.yaml").write_text(
        "officials:\n"
        "  xx-new:\n"
        "    names: [\"سمير الجديد\"]\n"
        "    role: foreign-minister\n"
        "    country: NO\n"
        "  us-blinken:\n"
        "    status: current\n", encoding="utf-8")
    kn = load_knowledge(user)
    assert kn.officials["xx-new"].country == "NO"  # quoted-free NO must not become False
    assert kn.officials["us-blinken"].status == "current"
    assert kn.officials["us-blinken"].role == "foreign-minister"  # the rest of the entry is kept


@pytest.mark.parametrize(
    ("file", "text", "needle"),
    [
        ("officials.yaml", "officials:\n  x:\n    names: [\"اسم\"]\n    role: astronaut\n", "officials.x"),
        ("officials.yaml", "officials:\n  x:\n    names: []\n    role: minister\n", "officials.x"),
        ("places.yaml", "cities:\n  Atlantis:\n    ar: [\"أتلانتس\"]\n", "cities.Atlantis"),
        ("lexicon.yaml", "labels:\n  aid:\n    terms:\n      مساعدات: lots\n", "labels.aid.terms"),
        ("roles.yaml", "titles: [unclosed\n", "roles.yaml"),
        ("officials.yaml",
         "officials:\n  x: {names: [\"اسم\"], role: minister}\n  x: {names: [\"آخر\"], role: minister}\n",
         "duplicate key 'x' (first on line 2)"),
        ("lexicon.yaml", "labels:\n  aid:\n    terms:\n      دعم {KIND} للسكان: 1\n", "unknown slot {KIND}"),
    ],
)
def test_invalid_knowledge_names_file_line_entry(tmp_path: Path, file: str, text: str, needle: str) -> None:
    user = tmp_path / "user"
    user.mkdir()
    (user / file).write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as ei:
        load_knowledge(user)
    msg = str(ei.value)
    assert needle in msg
    assert file in msg
    assert ei.value.line is not None  # type: ignore[attr-defined]


def test_missing_shipped_file(tmp_path: Path) -> None:
    base = _copy(tmp_path)
    (base / "roles.yaml").unlink()
    with pytest.raises(ConfigError, match="roles.yaml"):
        load_knowledge(None, base_dir=base)


def test_a_slot_stands_for_each_word_and_each_two_joined_by_wa(tmp_path: Path) -> None:
    user = tmp_path / "user"
    user.mkdir()
    (user / "lexicon.yaml").write_text(
        "slots:\n  KIND: [\"غذائي\", \"طبي\"]\n"
        "labels:\n  aid:\n    terms:\n      دعم {KIND} عاجل: 1.5\n", encoding="utf-8")
    from processors.analysis import analyse_text

    kn = load_knowledge(user)
    for text, n in (("وصل دعم غذائي عاجل.", 1), ("وصل دعم غذائي وطبي عاجل.", 1), ("وصل دعم طبي وغذائي عاجل.", 1),
                    ("وصل دعم عسكري عاجل.", 0)):
        doc = analyse_text("", text, kn)
        assert sum(1 for h in doc.hits[0] if h[2] == "lex:aid" and h[3][0] == "aid" and "دعم" in h[3][2]) == n, text


def test_foreign_names_match_with_either_letter_for_the_hard_g() -> None:
    from processors.analysis import analyse_text

    kn = load_knowledge()
    for text in ("قال أنطونيو جوتيريش إن", "قال أنطونيو غوتيريش إن", "وأضاف جوتيريش"):
        hits = analyse_text("", text, kn).hits[0]
        assert any(h[2] == "off" and h[3][0] == "un-guterres" for h in hits), text
    # an Arab official's name is written one way only: no variant is invented for it
    full = [h for h in analyse_text("", "قال نجيب ميقاتي إن", kn).hits[0] if h[2] == "off" and h[3][1] == "full"]
    assert full and full[0][1] - full[0][0] == 2
    assert not [h for h in analyse_text("", "قال نغيب ميقاتي إن", kn).hits[0] if h[2] == "off" and h[3][1] == "full"]


def test_hamza_on_ya_spellings_of_shuun_and_masul_match() -> None:
    from processors.analysis import analyse_text

    kn = load_knowledge()
    for text in ("وصل وكيل الأمين العام للشؤون الإنسانية", "وصل وكيل الأمين العام للشئون الإنسانية"):
        titles = [h[3] for h in analyse_text("", text, kn).hits[0] if h[2] == "title"]
        assert "un-relief-chief" in titles, text
