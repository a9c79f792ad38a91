"""For every fixture, bat finds exactly the files Blender itself reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bat_core.trace import problems, trace

from .conftest import Fixture, all_fixtures, fixture_at

DATA = Path(__file__).parent / "data"
#: The shared fixtures and those of tests/data that carry Blender's answer.
FIXTURES = [*all_fixtures(), fixture_at(DATA / "caches_extra" / "main.blend", DATA / "caches_extra"),
            fixture_at(DATA / "media_extra" / "main.blend", DATA / "media_extra")]


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
    fx = next(f for f in FIXTURES if f.id == "v50/libraries/shots/shot.blend")
    res = run_bat("list", "--json", str(fx.blend))
    assert res.exit_code == 0, res.stderr
    report = json.loads(res.stdout)
    files = {Path(p) for deps in report.values() for p in deps}
    assert _rel(files, fx.root.resolve()) == set(fx.expected["existing_files"])
    # BAT 1.x's shape: blend file -> dependencies; the libraries are keys too.
    assert str(fx.blend.resolve()) in report
    assert any(k.endswith("char.blend") for k in report)


@pytest.mark.parametrize("fx", FIXTURES, ids=[f.id for f in FIXTURES])
def test_each_stored_path_is_reported_once(fx: Fixture) -> None:
    """A set would hide a path reported twice (a file traced again through a library linking back).

    One usage per stored path: a block's field, and for a strip's images (which
    share the strip's directory field) each element's file name.
    """
    usages = list(trace(fx.blend))
    keys = [(u.blendfile, u.block.offset, repr(u.field), bytes(u.asset_path)) for u in usages]
    twice = sorted({repr(u) for u, k in zip(usages, keys, strict=True) if keys.count(k) > 1})
    assert not twice
    files = {f.resolve() for u in usages for f in u.files}
    assert fx.blend.resolve() not in files, "the main file is not its own dependency"


def test_cli_json_lists_each_dependency_once(run_bat) -> None:  # type: ignore[no-untyped-def]
    fx = next(f for f in FIXTURES if f.id == "v50/libraries/libs/cycle_a.blend")
    res = run_bat("list", "--json", str(fx.blend))
    assert res.exit_code == 0, res.stderr
    report = json.loads(res.stdout)
    for deps in report.values():
        assert len(deps) == len(set(deps)), deps
    listed = [p for deps in report.values() for p in deps]
    assert len(listed) == len(set(listed))
    assert sorted(_rel({Path(p) for p in listed}, fx.root.resolve())) == sorted(
        set(fx.expected["existing_files"]) | set(fx.expected["baked_files"]))
