"""Stored paths resolved as Blender resolves them, and foreign paths never looked up.

The pure rules are tested on both path flavours whatever the host; the
``odd`` fixture (``tests/data/gen_paths.py``) records which file Blender
itself read for each stored path: every candidate PNG has its own width.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
from pathlib import Path, PurePath, PurePosixPath, PureWindowsPath

import pytest

from bat_core.bpathlib import BlendPath
from bat_core.pack import pack
from bat_core.pack.errors import PackError
from bat_core.pack.placement import place, place_pure, stored_relative
from bat_core.trace import problems, trace

from .blender_probe import blender_report, needs_bpy

ODD = Path(__file__).resolve().parent / "data" / "paths" / "v50" / "odd"

POSIX_BLEND = PurePosixPath("/proj/shots/a.blend")
WIN_BLEND = PureWindowsPath("D:\\proj\\shots\\a.blend")

# stored -> (on POSIX, on Windows); None: foreign there.
RULES: list[tuple[bytes, str | None, str | None]] = [
    (b"//tex/a.png", "/proj/shots/tex/a.png", "D:\\proj\\shots\\tex\\a.png"),
    (b"///abs/t.png", "/proj/shots/abs/t.png", "D:\\proj\\shots\\abs\\t.png"),
    (b"////abs/t.png", "/proj/shots/abs/t.png", "D:\\proj\\shots\\abs\\t.png"),
    (b"//\\tmp\\t.png", "/proj/shots/tmp/t.png", "D:\\proj\\shots\\tmp\\t.png"),
    (b"//sub\\t.png", "/proj/shots/sub/t.png", "D:\\proj\\shots\\sub\\t.png"),
    (b"//../tex/../x.png", "/proj/x.png", "D:\\proj\\x.png"),
    (b"//../../../../../../etc/passwd", "/etc/passwd", "D:\\etc\\passwd"),
    (b"//", "/proj/shots", "D:\\proj\\shots"),
    (b"/abs/x.png", "/abs/x.png", None),
    (b"/abs\\x.png", "/abs/x.png", None),
    (b"rel/x.png", "/proj/shots/rel/x.png", "D:\\proj\\shots\\rel\\x.png"),
    (b"C:\\textures\\wood.png", None, "C:\\textures\\wood.png"),
    (b"C:/textures/wood.png", None, "C:\\textures\\wood.png"),
    (b"\\\\server\\share\\tex.png", None, "\\\\server\\share\\tex.png"),
    (b"\\\\?\\C:\\long\\x.png", None, "\\\\?\\C:\\long\\x.png"),
    (b"\\textures\\rooted.png", None, "D:\\textures\\rooted.png"),
    (b"D:relative.png", None, None),
]


@pytest.mark.parametrize(("stored", "posix", "windows"), RULES, ids=[r[0].decode() for r in RULES])
def test_resolution_rules_on_both_flavours(stored: bytes, posix: str | None, windows: str | None) -> None:
    path = BlendPath(stored)
    got_posix = path.resolve_pure(POSIX_BLEND, PurePosixPath)
    got_win = path.resolve_pure(WIN_BLEND, PureWindowsPath)
    assert (str(got_posix) if got_posix is not None else None) == posix
    assert (str(got_win) if got_win is not None else None) == windows
    assert path.is_foreign(PurePosixPath) is (posix is None)
    assert path.is_foreign(PureWindowsPath) is (windows is None)


PLACES: list[tuple[PurePath, PurePath, str]] = [
    (PurePosixPath("/proj/tex/a.png"), PurePosixPath("/proj"), "tex/a.png"),
    (PurePosixPath("/srv/lib/a.png"), PurePosixPath("/proj"), "_outside_project/srv/lib/a.png"),
    (PureWindowsPath("D:\\proj\\tex\\a.png"), PureWindowsPath("D:\\proj"), "tex/a.png"),
    (PureWindowsPath("d:\\PROJ\\tex\\a.png"), PureWindowsPath("D:\\proj"), "tex/a.png"),
    (PureWindowsPath("C:\\textures\\wood.png"), PureWindowsPath("D:\\proj"), "_outside_project/C/textures/wood.png"),
    (PureWindowsPath("c:\\textures\\wood.png"), PureWindowsPath("D:\\proj"), "_outside_project/C/textures/wood.png"),
    (PureWindowsPath("\\\\?\\C:\\textures\\wood.png"), PureWindowsPath("D:\\proj"),
     "_outside_project/C/textures/wood.png"),
    (PureWindowsPath("\\\\server\\share\\tex.png"), PureWindowsPath("D:\\proj"),
     "_outside_project/UNC/server/share/tex.png"),
    (PureWindowsPath("\\\\?\\UNC\\server\\share\\tex.png"), PureWindowsPath("D:\\proj"),
     "_outside_project/UNC/server/share/tex.png"),
    # A server called C is not drive C:.
    (PureWindowsPath("\\\\C\\share\\tex.png"), PureWindowsPath("D:\\proj"), "_outside_project/UNC/C/share/tex.png"),
]


@pytest.mark.parametrize(("path", "project", "expected"), PLACES, ids=[str(p[0]) for p in PLACES])
def test_placement_on_both_flavours(path: PurePath, project: PurePath, expected: str) -> None:
    assert str(place_pure(path, project)) == expected


@pytest.mark.skipif(os.sep != "/", reason="the string fast path serves POSIX hosts")
def test_native_placement_agrees_with_the_pathlib_rules() -> None:
    """``place`` works on strings on POSIX; it must answer exactly as ``place_pure`` does."""
    paths = ["/proj/tex/a.png", "/proj/./tex//a.png", "/proj/../proj/a.png", "/proj", "/proj/", "/projx/a.png",
             "/srv/lib/a.png", "//srv/x.png", "///srv/x.png", "/proj/a/../b.png", "/", "//", "/a b/ü.png"]
    projects = ["/proj", "/proj/", "/", "//proj"]  # as the packer gives it: absolute, normalised
    for project in projects:
        for path in [*paths, *(f"//proj/{p}" for p in ("a.png", "x/y.png"))]:
            try:
                expected: object = str(place_pure(PurePosixPath(path), PurePosixPath(project)))
            except PackError as exc:
                expected = type(exc)
            try:
                got: object = str(place(Path(path), Path(project)))
            except PackError as exc:
                got = type(exc)
            assert got == expected, (path, project)


def test_placement_is_collision_free_across_roots() -> None:
    project = PureWindowsPath("D:\\proj")
    paths = ["C:\\x\\a.png", "\\\\C\\x\\a.png", "\\\\server\\C\\x\\a.png", "E:\\C\\x\\a.png", "D:\\proj\\C\\x\\a.png"]
    placed = {str(place_pure(PureWindowsPath(p), project)).lower() for p in paths}
    assert len(placed) == len(paths)  # distinct even on a case-insensitive target


def test_windows_device_paths_are_refused() -> None:
    with pytest.raises(PackError, match="device"):
        place_pure(PureWindowsPath("\\\\.\\PhysicalDrive0\\x"), PureWindowsPath("D:\\proj"))


def test_rewritten_paths_use_forward_slashes() -> None:
    """Blender reads ``/`` on every system (it turns them into its own separator)."""
    rel = stored_relative(PurePosixPath("_outside_project/C/textures/wood.png"), PurePosixPath("shots/a.blend"))
    assert rel == b"//../_outside_project/C/textures/wood.png"
    assert b"\\" not in rel


def _png_width(path: Path) -> int:
    data = path.read_bytes()
    return int(struct.unpack(">I", data[16:20])[0])


def test_odd_paths_resolve_to_the_file_blender_reads() -> None:
    expected = json.loads((ODD / "paths.blend.json").read_text())
    usages = {u.block_name[2:].decode(): u for u in trace(ODD / "paths.blend")}
    checked = 0
    for name, seen in expected["loaded"].items():
        u = usages[name]
        if seen["size"][0]:  # Blender read a file: the same one, told by its width
            assert len(u.files) == 1, (name, u)
            assert _png_width(u.files[0]) == seen["size"][0], name
            checked += 1
        else:
            assert not u.files and u.problem, name
    assert checked == 4


def test_odd_paths_missing_count_is_blenders() -> None:
    expected = json.loads((ODD / "paths.blend.json").read_text())
    found = problems(trace(ODD / "paths.blend"))
    assert len(found) == len(expected["blender_missing"])
    shown = {p.shown for p in found}
    # Foreign paths are shown exactly as stored.
    assert {"C:\\textures\\wood.png", "\\\\server\\share\\tex.png", "\\\\?\\C:\\long\\x.png",
            "D:relative.png", "\\textures\\rooted.png", "C:/textures/fwd.png"} == shown


def test_foreign_paths_are_never_looked_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run_bat) -> None:  # type: ignore[no-untyped-def]
    """Files named like the foreign paths, in the blend file's directory and the working
    directory (where Blender on Linux would look for ``D:relative.png``), are not found."""
    root = tmp_path / "odd"
    shutil.copytree(ODD, root)
    monkeypatch.chdir(root)
    for decoy in ("C:\\textures\\wood.png", "D:relative.png", "\\\\server\\share\\tex.png"):
        (root / decoy).write_bytes(b"decoy")
    os.makedirs(root / "C:" / "textures", exist_ok=True)
    (root / "C:" / "textures" / "fwd.png").write_bytes(b"decoy")
    usages = list(trace(root / "paths.blend"))
    assert not any(f.read_bytes() == b"decoy" for u in usages for f in u.files)
    foreign = [u for u in usages if u.problem.startswith("foreign path")]
    assert len(foreign) == 6
    res = run_bat("list", "--missing", "--format", "json", str(root / "paths.blend"))
    assert res.exit_code == 3
    listed = json.loads(res.stdout)
    assert {m["path"] for m in listed} >= {"C:\\textures\\wood.png", "D:relative.png"}
    assert all(m["reason"].startswith("foreign path") for m in listed)


@needs_bpy
def test_odd_paths_pack_and_blender_reads_the_same_files(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = pack(ODD / "paths.blend", str(out))
    assert len(result.missing) == 6
    report = blender_report([out / "paths.blend"], tmp_path)[str(out / "paths.blend")]
    source = json.loads((ODD / "paths.blend.json").read_text())["loaded"]
    for name, seen in report["images"].items():
        assert seen["size"] == source[name]["size"], name
