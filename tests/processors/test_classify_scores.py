"""The scorer's thresholds on the labelled dev set and seeds (third-party data read in place)."""

from __future__ import annotations

import importlib.util
import io
import json
from pathlib import Path

import pytest

from processors.report import run_classify

THRESHOLDS = {"macro_f1": 0.93, "visit_f1": 0.85, "key_f1": 0.90}


def _scorer(shared_dir: Path):  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("score", shared_dir / "tools" / "score.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("name", ["devset.jsonl", "seeds.jsonl"])
def test_scores_meet_thresholds(shared_dir: Path, name: str, tmp_path: Path) -> None:
    gold_path = shared_dir / "data" / name
    out = io.StringIO()
    assert run_classify([str(gold_path)], jsonl=True, out=out) == 0
    pred_path = tmp_path / "pred.jsonl"
    pred_path.write_text(out.getvalue(), encoding="utf-8")
    score = _scorer(shared_dir)
    res = score.score(score.load(str(gold_path)), score.load(str(pred_path)))
    got = {"macro_f1": res["macro_f1"], "visit_f1": res["visits"]["f1"], "key_f1": res["visit_keys"]["pairwise_f1"]}
    print(name, json.dumps(got))
    assert not res["missing_predictions"]
    for k, t in THRESHOLDS.items():
        assert got[k] >= t, (name, got)
