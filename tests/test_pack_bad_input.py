"""Packing past broken libraries and odd paths: what can be packed is, the rest is reported."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bat_core.pack import PackError, pack
from bat_core.trace import trace

from .test_pack_plan import set_paths


def test_library_that_is_not_a_blend_file_is_broken(copy_scenario, tmp_path: Path, run_bat) -> None:  # type: ignore[no-untyped-def]
    """Not a warning and a copy (exit 0): a broken library, counted and reported like a missing one."""
    root = copy_scenario("v50", "libraries")
    (root / "set.blend").write_text("not a blend file")
    result = pack(root / "shots" / "shot.blend", str(tmp_path / "out"), project=root, compress=True)
    assert [m.path.name for m in result.missing] == ["set.blend"]
    assert "not a blend file" in result.missing[0].reason
    assert not any(f.source.name == "set.blend" for f in result.files)
    assert (tmp_path / "out" / "libs" / "char.blend").is_file()
    res = run_bat("pack", "-p", str(root), str(root / "shots" / "shot.blend"), str(tmp_path / "out2"))
    assert res.exit_code == 3
    assert "set.blend" in res.stderr and "not a blend file" in res.stderr
    res = run_bat("list", str(root / "shots" / "shot.blend"))
    assert res.exit_code == 3
    assert "not a blend file" in res.stderr  # stdout lists what exists, as BAT 1.x


def test_dangling_library_is_missing(copy_scenario, tmp_path: Path, run_bat) -> None:  # type: ignore[no-untyped-def]
    root = copy_scenario("v42", "libraries")
    os.remove(root / "set.blend")
    res = run_bat("pack", "-p", str(root), str(root / "shots" / "shot.blend"), str(tmp_path / "out"))
    assert res.exit_code == 3
    assert "missing: " in res.stderr and "set.blend" in res.stderr
    assert (tmp_path / "out" / "shots" / "shot.blend").is_file()


def test_non_utf8_file_name(copy_scenario, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = copy_scenario("v50", "images")
    raw = b"caf\xe9.png"
    (root / "textures" / os.fsdecode(raw)).write_bytes(b"\x89PNG latin-1")
    blend = root / "images.blend"
    set_paths(blend, lambda p, s: b"//textures/" + raw if p.name == "single.png" else None)
    # A directory keeps the name byte for byte, and the packed file finds it.
    pack(blend, str(tmp_path / "out"))
    assert (tmp_path / "out" / "textures" / os.fsdecode(raw)).read_bytes() == b"\x89PNG latin-1"
    found = {os.fsencode(f.name) for u in trace(tmp_path / "out" / "images.blend") for f in u.files}
    assert raw in found
    # A ZIP file cannot hold such a name: one clear error when planning, nothing written.
    with pytest.raises(PackError, match="not valid UTF-8"):
        pack(blend, str(tmp_path / "zips" / "out.zip"))
    assert not (tmp_path / "zips").exists()
