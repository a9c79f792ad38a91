"""Blender 2.79 files: libraries are found, packed and rewritten in the field Blender reads.

In files of Blender 2.5-2.9x a Library block keeps the stored path in ``name``
and the last saver's absolute path in ``filepath``.  The files are real 2.79
files (``tests/data/legacy279``); what Blender 5.0 reports about them is
recorded beside them by ``tests/data/gen_legacy279.py``.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from bat_core.blendfile import open_blend
from bat_core.pack import fields, pack
from bat_core.trace import BlendFileCache, trace

from .blender_probe import blender_report, needs_bpy

LEGACY = Path(__file__).resolve().parent / "data" / "legacy279"
FILES = ("basic_file.blend", "linked_cube.blend", "doubly_linked.blend")


def _expected(name: str) -> dict:  # type: ignore[type-arg]
    return json.loads((LEGACY / f"{name}.json").read_text())  # type: ignore[no-any-return]


def _rel(paths: set[Path]) -> set[str]:
    return {p.relative_to(LEGACY).as_posix() if p.is_relative_to(LEGACY) else str(p) for p in paths}


def test_legacy_library_blocks_have_both_fields() -> None:
    """The premise: ``name`` is the stored path, ``filepath`` someone else's absolute path."""
    bf = open_blend(LEGACY / "doubly_linked.blend")
    try:
        assert bf.header.version == 279
        libs = list(bf.blocks_by_code(b"LI"))
        assert {li.get(b"name") for li in libs} == {b"//linked_cube.blend", b"//material_textures.blend"}
        assert all(li.get(b"filepath").startswith(b"/home/") for li in libs)
    finally:
        bf.close()


@pytest.mark.parametrize("name", FILES)
def test_trace_matches_blender(name: str) -> None:
    expected = _expected(name)
    existing: set[Path] = set()
    missing: set[Path] = set()
    for u in trace(LEGACY / name):
        (existing.update(u.files) if u.files else missing.add(u.abspath))
    assert _rel(existing) == set(expected["existing_files"])
    assert _rel(missing) == set(expected["missing_files"])


def test_library_usage_names_the_stored_field() -> None:
    with BlendFileCache() as cache:
        libs = [u for u in trace(LEGACY / "doubly_linked.blend", cache=cache) if u.kind == "library"]
        assert libs
        for u in libs:
            assert u.field == b"name"
            assert fields.read_stored(u.block, u.field) == bytes(u.asset_path)
            assert u.asset_path.startswith(b"//")


def test_cli_lists_libraries(run_bat) -> None:  # type: ignore[no-untyped-def]
    res = run_bat("list", "--json", str(LEGACY / "doubly_linked.blend"))
    assert res.exit_code == 3  # material_textures.blend is missing, as Blender says
    report = json.loads(res.stdout)
    deps = {Path(p) for v in report.values() for p in v}
    assert LEGACY / "linked_cube.blend" in deps and LEGACY / "basic_file.blend" in deps
    assert not any(str(p).startswith("/home/") for p in deps)


@needs_bpy
def test_rewritten_library_path_is_the_one_blender_reads(tmp_path: Path) -> None:
    """Write a new path through the usage's field: Blender must load the library from there."""
    work = tmp_path / "proj"
    (work / "libs").mkdir(parents=True)
    for name in FILES:
        shutil.copyfile(LEGACY / name, work / name)
    os.replace(work / "linked_cube.blend", work / "libs" / "linked_cube.blend")
    # linked_cube.blend links //basic_file.blend: keep it beside it.
    shutil.copyfile(work / "basic_file.blend", work / "libs" / "basic_file.blend")
    with BlendFileCache() as cache:
        lib = next(u for u in trace(work / "doubly_linked.blend", cache=cache)
                   if u.asset_path == b"//linked_cube.blend")
        assert lib.field is not None
        fields.write_stored(lib.block, lib.field, b"//libs/linked_cube.blend")
        lib.block.file.save(work / "rewritten.blend")
    report = blender_report([work / "rewritten.blend"], tmp_path)[str(work / "rewritten.blend")]
    found = {v["stored"]: v["found"] for v in report["libraries"].values()}
    assert found["//libs/linked_cube.blend"] is True
    assert "//linked_cube.blend" not in found


@needs_bpy
@pytest.mark.parametrize("layout", ["beside", "outside"])
def test_pack_contains_libraries_blender_finds(tmp_path: Path, layout: str) -> None:
    """BAT 1.23 packs the library of a 2.79 file; so must bat, and Blender must load it from the pack.

    ``outside``: the libraries sit outside the project, so the packer rewrites
    the stored paths (to ``_outside_project/...``) in the 2.79 files' ``name``.
    """
    proj = tmp_path / "proj"
    if layout == "beside":
        proj.mkdir()
        for name in FILES:
            shutil.copyfile(LEGACY / name, proj / name)
        main = proj / "doubly_linked.blend"
    else:
        (proj / "shot").mkdir(parents=True)
        libs = tmp_path / "libs"
        libs.mkdir()
        for name in FILES:
            shutil.copyfile(LEGACY / name, libs / name)
        main = proj / "shot" / "doubly_linked.blend"
        shutil.copyfile(LEGACY / "doubly_linked.blend", main)
        # Point the copy's libraries at the files outside the project, by absolute path.
        with BlendFileCache() as cache:
            for u in trace(main, cache=cache):
                if u.kind == "library" and u.blendfile == main:
                    assert u.field is not None
                    fields.write_stored(u.block, u.field, os.fsencode(libs) + b"/" + u.asset_path[2:])
            bf = cache.open(main)
            bf.save(main.with_suffix(".tmp"))
        os.replace(main.with_suffix(".tmp"), main)
    out = tmp_path / "out"
    result = pack(main, str(out), project=proj)
    assert [m.path.name for m in result.missing] == ["material_textures.blend"]
    packed = {Path(f.relpath).name for f in result.files if f.relpath}
    assert {"linked_cube.blend", "basic_file.blend", "doubly_linked.blend"} <= packed
    if layout == "outside":
        assert any(f.action == "rewritten" for f in result.files)
    packed_main = out / result.output.removeprefix(str(out)).lstrip("/")
    report = blender_report([packed_main], tmp_path)[str(packed_main)]
    libraries = report["libraries"].values()
    found = [v for v in libraries if v["found"]]
    assert len(found) == 2, libraries  # linked_cube.blend and, through it, basic_file.blend
    for path in report["blend_paths"]:
        if not path.endswith("material_textures.blend"):
            assert Path(path).resolve().is_relative_to(out.resolve()), path
