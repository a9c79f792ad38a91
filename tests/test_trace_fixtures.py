"""For every fixture, bat finds exactly the files Blender itself reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bat_core.trace import trace

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


def _traced(fx: Fixture) -> tuple[set[str], set[str]]:
    existing: set[Path] = set()
    missing: set[Path] = set()
    for usage in trace(fx.blend):
        if usage.files:
            existing.update(usage.files)
        else:
            missing.add(usage.abspath)
    return _rel(existing, fx.root.resolve()), _rel(missing, fx.root.resolve())


@pytest.mark.parametrize("fx", FIXTURES, ids=[f.id for f in FIXTURES])
def test_existing_files_match_blender(fx: Fixture) -> None:
    existing, _ = _traced(fx)
    expected = set(fx.expected["existing_files"]) | set(fx.expected["baked_files"])
    assert existing == expected


@pytest.mark.parametrize("fx", FIXTURES, ids=[f.id for f in FIXTURES])
def test_missing_files_reported(fx: Fixture) -> None:
    _, missing = _traced(fx)
    # Blender reports Windows paths as they are; bat maps them to a POSIX path
    # (drive letter as a directory) that can only be missing. Compare names.
    expected = {Path(m.replace("\\", "/")).name for m in fx.expected["missing_files"]}
    assert {Path(m).name for m in missing} == expected


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
