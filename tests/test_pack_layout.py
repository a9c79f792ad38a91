"""The plan proves the target can hold its layout before a byte is written.

Errors for every target: a file where another file needs a directory.  For a
directory: names its file system cannot hold (too long, or differing only in
case on a case-insensitive one) and the target's own ``.bat-pack``.  For a
ZIP file: names that would extract elsewhere or merge (backslashes, drive
letters, not UTF-8, differing only in case).  Warnings: what only another OS
could not hold (Windows device names, trailing dots, case differences on a
case-sensitive disk).
"""

from __future__ import annotations

import logging
import os
import sys
import zipfile
from pathlib import Path, PurePosixPath

import pytest

from bat_core.pack import Packer, PackError, pack
from bat_core.pack.layout import CASE, FILE_DIRECTORY, LayoutRules, Severity, check_layout
from bat_plugins.directory.transfer import case_insensitive
from bat_plugins.zip.transfer import zip_layout_rules

from .test_pack_plan import set_paths

KINDS = ["directory", "zip"]


def _target(tmp_path: Path, kind: str) -> Path:
    return tmp_path / "t" / ("out.zip" if kind == "zip" else "out")


@pytest.mark.parametrize("kind", KINDS)
def test_file_and_directory_of_one_name(copy_scenario, tmp_path: Path, kind: str, run_bat) -> None:  # type: ignore[no-untyped-def]
    """The finding: project file ``_outside_project/tmp`` and an outside file ``/tmp/.../z.png``."""
    root = copy_scenario("v50", "images")
    outside = tmp_path / "elsewhere" / "z.png"
    outside.parent.mkdir()
    outside.write_bytes(b"\x89PNG outside")
    top = outside.parts[1]  # "tmp" with the usual temporary directory
    clash = root / "_outside_project" / top
    clash.parent.mkdir()
    clash.write_bytes(b"\x89PNG inside, named like a directory")
    stored = {"single.png": b"//_outside_project/" + top.encode(), "clip.mp4": os.fsencode(outside)}
    set_paths(root / "images.blend", lambda p, s: stored.get(p.name))
    target = _target(tmp_path, kind)
    res = run_bat("pack", str(root / "images.blend"), str(target))
    assert res.exit_code == 1
    line = res.stderr.strip().splitlines()[-1]
    assert line.startswith("bat: error: ") and "cannot hold the pack" in line
    assert f"{clash} would be packed as _outside_project/{top}, but {outside} needs a directory" in line
    assert not target.parent.exists()  # nothing written, not even the target
    # -n shows it too: the plan itself is refused.
    res = run_bat("pack", "-n", str(root / "images.blend"), str(target))
    assert res.exit_code == 1 and f"but {outside} needs a directory" in res.stderr


def _name_texture(root: Path, name: str) -> Path:
    """Point the single-image texture at ``textures/<name>`` (a copy of it)."""
    path = root / "textures" / name
    path.write_bytes((root / "textures" / "single.png").read_bytes())
    set_paths(root / "images.blend",
              lambda p, s: b"//textures/" + os.fsencode(name) if p.name == "single.png" else None)
    return path


def test_backslash_in_a_name(copy_scenario, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    """A ZIP entry with a backslash extracts into a directory on Windows: refused before copying.

    (A stored path takes a backslash as a separator, as Blender does; a file in
    a bake directory keeps whatever name it has.)
    """
    root = copy_scenario("v50", "geonodes")
    odd = root / "gn_bake_custom" / "blobs" / "odd\\name.blob"
    odd.write_bytes(b"a file named on Linux")
    zip_target = _target(tmp_path, "zip")
    with pytest.raises(PackError, match=r"backslash") as info:
        pack(root / "geonodes.blend", str(zip_target))
    assert str(odd) in str(info.value)
    assert not zip_target.parent.exists()
    # A directory on this system holds it: a warning, and the pack goes on.
    target = _target(tmp_path, "directory")
    with caplog.at_level(logging.WARNING):
        result = pack(root / "geonodes.blend", str(target))
    assert result.complete and (target / "gn_bake_custom" / "blobs" / odd.name).is_file()
    assert any("backslash" in r.getMessage() and str(odd) in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", ["CON.png", "aux", "trailing.", "what?.png"])
def test_names_windows_cannot_hold_are_warnings(copy_scenario, tmp_path: Path, kind: str, name: str,
                                                caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    root = copy_scenario("v50", "images")
    _name_texture(root, name)
    target = _target(tmp_path, kind)
    with caplog.at_level(logging.WARNING):
        result = pack(root / "images.blend", str(target))
    assert result.complete
    assert any("Windows" in r.getMessage() and name in r.getMessage() for r in caplog.records)
    if kind == "zip":
        with zipfile.ZipFile(target) as zf:
            assert f"textures/{name}" in zf.namelist()


def test_names_differing_only_in_case(copy_scenario, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    """A ZIP file would lose one of them on macOS or Windows: refused.  This disk holds both: a warning."""
    root = copy_scenario("v50", "images")
    if case_insensitive(root):
        pytest.skip("this file system cannot hold the two files")
    upper = _name_texture(root, "Single.png")
    set_paths(root / "images.blend", lambda p, s: b"//textures/single.png" if p.name == "clip.mp4" else None)
    zip_target = _target(tmp_path, "zip")
    with pytest.raises(PackError, match="differ only in case") as info:
        pack(root / "images.blend", str(zip_target))
    assert str(upper) in str(info.value) and str(root / "textures" / "single.png") in str(info.value)
    assert not zip_target.parent.exists()
    with caplog.at_level(logging.WARNING):
        result = pack(root / "images.blend", str(_target(tmp_path, "directory")))
    assert result.complete
    warned = [r.getMessage() for r in caplog.records if "differ only in case" in r.getMessage()]
    assert warned and "textures/Single.png" in warned[0] and "textures/single.png" in warned[0]


@pytest.fixture
def case_insensitive_dir(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A directory on a case-insensitive file system (tmpfs with casefold, or FAT), or skip."""
    import shutil
    import subprocess

    if os.geteuid() != 0:
        pytest.skip("mounting a case-insensitive file system needs root")
    mnt = tmp_path / "ci"
    mnt.mkdir()
    attempts = [["mount", "-t", "tmpfs", "-o", "casefold", "bat-casefold", str(mnt)]]
    mkfs = shutil.which("mkfs.vfat") or shutil.which("mkfs.fat")
    if mkfs is not None:
        image = tmp_path / "fat.img"
        with open(image, "wb") as fh:
            fh.truncate(8 << 20)
        subprocess.run([mkfs, str(image)], check=True, capture_output=True)
        attempts.append(["mount", "-o", "loop", str(image), str(mnt)])
    errors = []
    for cmd in attempts:
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode == 0:
            break
        errors.append(" ".join(res.stderr.split()))
    else:
        pytest.skip("no case-insensitive file system can be mounted here (tmpfs casefold, or mkfs.vfat): "
                    + "; ".join(errors))
    try:
        target = mnt / "d"
        target.mkdir()
        subprocess.run(["chattr", "+F", str(target)], capture_output=True)  # casefold tmpfs: per directory
        yield target
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)


def test_case_clash_on_a_case_insensitive_file_system(copy_scenario, case_insensitive_dir: Path) -> None:  # type: ignore[no-untyped-def]
    """The same plan into a directory where ``Single.png`` and ``single.png`` are one file: refused."""
    root = copy_scenario("v50", "images")
    _name_texture(root, "Single.png")
    set_paths(root / "images.blend", lambda p, s: b"//textures/single.png" if p.name == "clip.mp4" else None)
    (case_insensitive_dir / "Probe").touch()
    assert case_insensitive(case_insensitive_dir)
    target = case_insensitive_dir / "out"
    with pytest.raises(PackError, match="differ only in case"):
        pack(root / "images.blend", str(target))
    assert not target.exists()


def test_reserved_state_directory(copy_scenario, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = copy_scenario("v50", "images")
    (root / ".bat-pack").mkdir()
    (root / ".bat-pack" / "x.png").write_bytes(b"\x89PNG")
    set_paths(root / "images.blend", lambda p, s: b"//.bat-pack/x.png" if p.name == "single.png" else None)
    with pytest.raises(PackError, match=r"keeps '\.bat-pack' for its own files"):
        pack(root / "images.blend", str(tmp_path / "out"))
    assert pack(root / "images.blend", str(tmp_path / "out.zip")).complete  # a ZIP file has no such directory


def test_plan_warnings_are_kept_in_the_plan(copy_scenario, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = copy_scenario("v50", "images")
    _name_texture(root, "NUL.png")
    with Packer(root / "images.blend", str(tmp_path / "out.zip"), noop=True) as packer:
        plan = packer.plan()
    assert [(p.kind, p.severity) for p in plan.problems] == [("windows", Severity.WARNING)]


# --- the rules themselves --------------------------------------------------------------


def _check(dests: list[str], rules: LayoutRules) -> list[tuple[str, str]]:
    files = [(PurePosixPath(d), Path("/src") / d) for d in dests]
    return [(p.kind, p.severity.value) for p in check_layout(files, rules)]


def test_layout_rules() -> None:
    zip_rules = zip_layout_rules()
    assert _check(["a/b.png", "c.png"], zip_rules) == []
    assert _check(["a", "a/b.png"], zip_rules) == [(FILE_DIRECTORY, "error")]
    assert _check(["A", "a/b.png"], zip_rules) == [(CASE, "error")]
    assert _check(["tex/A.png", "tex/a.png"], zip_rules) == [(CASE, "error")]
    assert _check(["tex/\u00e9.png", "tex/e\u0301.png"], zip_rules) == [(CASE, "error")]  # NFC vs NFD
    assert _check(["tex/A.png", "tex/a.png"], LayoutRules()) == [(CASE, "warning")]
    assert _check(["c:/x.png"], zip_rules) == [("drive", "error")]
    assert _check([os.fsdecode(b"caf\xe9.png")], zip_rules) == [("encoding", "error")]
    assert _check(["x" * 256], zip_rules) == [("length", "warning")]
    assert _check(["dir/com1.txt/x"], zip_rules) == [("windows", "warning")]
    strict = LayoutRules(severities={CASE: Severity.ERROR}, max_name_bytes=10)
    assert _check(["Tex/a", "tex/a"], strict) == [(CASE, "error")]
    assert _check(["0123456789a"], strict) == [("length", "warning")]


@pytest.mark.skipif(sys.platform != "linux", reason="Linux file systems are case-sensitive by default")
def test_case_sensitivity_probe_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "Name").touch()
    before = sorted(tmp_path.iterdir())
    assert not case_insensitive(tmp_path)
    assert not case_insensitive(tmp_path / "not" / "there")  # the nearest existing directory decides
    assert sorted(tmp_path.iterdir()) == before
