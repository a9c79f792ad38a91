"""For every fixture, bat finds exactly the files Blender itself reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bat_core.trace import problems, trace

from .conftest import Fixture, all_fixtures

FIXTURES = all_fixtures()


def _rel(paths: set[Path], root: Path) -> set[str]:
    out = set()
    for p in paths:
        try:
            out.add(p.relative_to(root).as_posix())
        except ValueError:
            out.add(str(p))
    return out


def _blender_form(shown: str) -> str:
    """How Blender on Linux reports a Windows drive path (``C:\\x`` -> ``/c/x``; BLI_path_abs)."""
    if len(shown) > 2 and shown[1] == ":" and shown[2] in "\\/":
        return "/" + shown[0].lower() + shown[2:].replace("\\", "/")
    return shown


def _traced(fx: Fixture) -> tuple[set[str], set[str]]:
    existing: set[Path] = set()
    missing: set[str] = set()
    usages = list(trace(fx.blend))
    for usage in usages:
        existing.update(usage.files)
    for problem in problems(usages):
        path = problem.path if problem.path.is_absolute() else Path(_blender_form(problem.shown))
        missing |= _rel({path}, fx.root.resolve())
    return _rel(existing, fx.root.resolve()), missing


@pytest.mark.parametrize("fx", FIXTURES, ids=[f.id for f in FIXTURES])
def test_existing_files_match_blender(fx: Fixture) -> None:
    existing, _ = _traced(fx)
    expected = set(fx.expected["existing_files"]) | set(fx.expected["baked_files"])
    assert existing == expected


@pytest.mark.parametrize("fx", FIXTURES, ids=[f.id for f in FIXTURES])
def test_missing_files_reported(fx: Fixture) -> None:
    """Exactly what Blender misses, each path once (foreign paths compared in Blender's Linux form)."""
    _, missing = _traced(fx)
    assert missing == set(fx.expected["missing_files"])


@pytest.mark.parametrize("fx", [f for f in FIXTURES if f.expected["missing_files"]][:4],
                         ids=lambda f: f.id)
def test_cli_missing_exit_status(fx: Fixture, run_bat) -> None:  # type: ignore[no-untyped-def]
    res = run_bat("list", "--missing", "--format", "json", str(fx.blend))
    assert res.exit_code == 3
    listed = json.loads(res.stdout)
    assert len(listed) == len(fx.expected["missing_files"])
    assert all(entry["referenced_by"] for entry in listed)


def test_cli_json_matches_trace(run_bat) -> None:  # type: ignore[no-untyped-def]
    fx = next(f for f in FIXTURES if f.blend.name == "shot.blend" and "v50/libraries" in f.id)
    res = run_bat("list", "--json", str(fx.blend))
    assert res.exit_code == 0, res.stderr
    report = json.loads(res.stdout)
    files = {Path(p) for deps in report.values() for p in deps}
    assert _rel(files, fx.root.resolve()) == set(fx.expected["existing_files"])
    # BAT 1.x's shape: blend file -> dependencies; the libraries are keys too.
    assert str(fx.blend.resolve()) in report
    assert any(k.endswith("char.blend") for k in report)
