"""The optional mypyc builds of the visit rules and the classifier (setup.py: processors._visits_mypyc,
processors._classify_mypyc) are used only when compiled from the current source files and TRUCEWATCH_PURE_PYTHON is
not set."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILT = importlib.util.find_spec("processors._visits_mypyc") is not None

pytestmark = pytest.mark.skipif(not BUILT, reason="processors._visits_mypyc is not built (no mypyc or C compiler)")

REPORT = ("import processors.visits as v, processors.classify as c; "
          "print(v.extract_visits.__module__, v.Mention.__module__, c.classify_doc.__module__)")
# what processors/visits.py sees when its bytes differ from those compiled (an edit not rebuilt yet)
EDITED = ("import pathlib; read = pathlib.Path.read_bytes; "
          "pathlib.Path.read_bytes = lambda p: read(p) + (b'#' if p.name in ('visits.py', 'classify.py') else b''); ")


PLAIN = ["processors.visits", "processors.visits", "processors.classify"]  # the Python modules are in use


def _run(code: str, **env: str) -> list[str]:
    out = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, PYTHONPATH=str(REPO), **env),
                         capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_an_edited_visits_py_is_not_shadowed() -> None:
    assert _run(EDITED + REPORT, TRUCEWATCH_PURE_PYTHON="0") == PLAIN


def test_pure_python_switch() -> None:
    assert _run(REPORT, TRUCEWATCH_PURE_PYTHON="1") == PLAIN


def test_a_fresh_build_is_used() -> None:
    used = _run(REPORT, TRUCEWATCH_PURE_PYTHON="0")
    if "processors.visits" in used or "processors.classify" in used:
        pytest.skip("visits.py or classify.py was edited since the build (run `pip install -e .` to rebuild)")
    assert used == ["processors._visits_mypyc", "processors._visits_mypyc", "processors._classify_mypyc"]
