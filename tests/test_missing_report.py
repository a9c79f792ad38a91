"""The missing-file report is Blender's: one count, the same in text, JSON and pack.

Fixture ``truthful`` (``tests/data/gen_paths.py``): a never-baked dynamic paint
cache (not missing), two texts whose files are gone (missing, one of them
flagged in-memory), an external point cache (found), a library that is not a
blend file (broken), one movie used three times and gone (missing once).
Blender's own answer is in the JSON: ``blender_missing`` (its missing-file
report) and ``libraries_missing`` (libraries it could not load).
"""

from __future__ import annotations

import json
from pathlib import Path

from bat_core.pack import pack
from bat_core.trace import problems, trace

TRUTHFUL = Path(__file__).resolve().parent / "data" / "paths" / "v50" / "truthful"
MAIN = TRUTHFUL / "main.blend"


def _expected() -> dict:  # type: ignore[type-arg]
    return json.loads((TRUTHFUL / "main.blend.json").read_text())  # type: ignore[no-any-return]


def _blender_count() -> int:
    exp = _expected()
    return len(exp["blender_missing"]) + len(exp["libraries_missing"])


def _rel(p: Path) -> str:
    return p.relative_to(TRUTHFUL).as_posix()


def test_trace_problems_are_what_blender_misses() -> None:
    exp = _expected()
    found = problems(trace(MAIN))
    assert sorted(_rel(p.path) for p in found if not p.reason.startswith("not a blend")) == exp["blender_missing"]
    broken = [p for p in found if p.reason.startswith("not a blend file")]
    assert ["//" + _rel(p.path) for p in broken] == exp["libraries_missing"]
    assert len(found) == _blender_count() == 4


def test_never_baked_cache_is_not_missing() -> None:
    canvas = [u for u in trace(MAIN) if u.block_name == b"OBCanvas"]
    assert canvas and all(u.kind == "point-cache" and not u.files and not u.problem for u in canvas)


def test_text_flagged_in_memory_with_a_file_is_reported() -> None:
    texts = {u.asset_path: u for u in trace(MAIN) if u.kind == "text"}
    assert set(texts) == {b"//scripts/loaded.py", b"//scripts/written.py"}
    assert all(u.problem == "missing" for u in texts.values())


def test_external_point_cache_is_found() -> None:
    ext = [u for u in trace(MAIN) if u.block_name == b"OBExtEmitter" and u.files]
    assert {_rel(f) for u in ext for f in u.files} == {"ext_cache/Sim_000000_01.bphys", "ext_cache/Sim_000001_01.bphys"}
    assert "ext_cache" in _expected()["blend_paths"]  # Blender reports the directory


def test_movie_used_three_times_is_one_missing_file() -> None:
    usages = [u for u in trace(MAIN) if u.asset_path == b"//footage/gone.mp4"]
    assert {u.kind for u in usages} == {"movieclip", "sequence-movie", "image"}
    assert [p.shown for p in problems(usages)] == [str(TRUTHFUL / "footage" / "gone.mp4")]


def test_one_count_in_text_json_and_pack(run_bat, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    n = _blender_count()
    text = run_bat("list", str(MAIN))
    assert text.exit_code == 3
    assert f"bat: {n} missing file(s)" in text.stderr
    assert sum(1 for line in text.stderr.splitlines() if line.startswith("missing: ") and "gone.mp4" in line) == 1
    assert "gone.mp4" not in text.stdout  # stdout lists what exists, as BAT 1.x
    assert "blendcache_main" not in text.stdout
    missing_json = run_bat("list", "--missing", "--format", "json", str(MAIN))
    assert missing_json.exit_code == 3
    assert len(json.loads(missing_json.stdout)) == n
    listed = run_bat("list", "--json", str(MAIN))
    assert listed.exit_code == 3
    deps = json.loads(listed.stdout)[str(MAIN)]
    assert not any("gone.mp4" in d for d in deps)  # BAT 1.x's JSON: the dependencies that exist
    full = json.loads(run_bat("list", "--format", "json-full", str(MAIN)).stdout)
    assert len(full["missing"]) == n and sum(1 for m in full["missing"] if "gone.mp4" in m) == 1
    packed = run_bat("pack", "--json", str(MAIN), str(tmp_path / "out"))
    assert packed.exit_code == 3
    report = json.loads(packed.stdout)
    assert report["summary"]["missing"] == n == len(report["missing"])
    assert {m["reason"] for m in report["missing"]} == {"missing", "not a blend file (no BLENDER header)"}
    noop = run_bat("pack", "-n", "--json", str(MAIN), str(tmp_path / "out2"))
    assert json.loads(noop.stdout)["summary"]["missing"] == n


def test_pack_carries_the_external_cache_and_not_the_broken_library(tmp_path: Path) -> None:
    result = pack(MAIN, str(tmp_path / "out"))
    packed = {f.relpath for f in result.files}
    assert {"ext_cache/Sim_000000_01.bphys", "ext_cache/Sim_000001_01.bphys", "main.blend"} <= packed
    assert "libs/broken.blend" not in packed
