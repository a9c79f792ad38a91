"""CI fails rather than skipping what needs Blender.

The Blender-checked tests (packs opened by Blender, fixtures' answers) skip on a
Python where ``bpy`` is not importable.  That must not pass silently: this test
fails there unless ``BAT_TESTS_WITHOUT_BLENDER=1`` says it is meant, and
``.ci/run`` refuses to run on another Python than 3.11 or without ``bpy``.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
OPT_OUT = "BAT_TESTS_WITHOUT_BLENDER"


def test_blender_is_importable() -> None:
    if os.environ.get(OPT_OUT) == "1":
        pytest.skip(f"{OPT_OUT}=1: the Blender-checked tests skip in this run")
    assert importlib.util.find_spec("bpy") is not None, (
        "bpy (Blender as a Python module) is not importable, so every Blender-checked test skips: "
        f"pip install bpy==5.0.1 on Python 3.11, or set {OPT_OUT}=1 to mean it")


def test_ci_refuses_a_python_it_cannot_use(tmp_path: Path) -> None:
    venv = REPO / ".ci-venv"
    before = venv.stat().st_mtime_ns if venv.exists() else None
    done = subprocess.run(["bash", str(REPO / ".ci" / "run")], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHON": str(tmp_path / "no-such-python3.11")})
    assert done.returncode == 1
    assert "needs Python 3.11" in done.stderr
    assert (venv.stat().st_mtime_ns if venv.exists() else None) == before  # nothing removed or made


def test_ci_checks_that_blender_imports() -> None:
    script = (REPO / ".ci" / "run").read_text()
    check = script.index("import bpy")
    assert script.index("python -m pip install --quiet -e '.[test,all]'") < check < script.index("\npytest")
