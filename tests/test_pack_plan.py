"""The pack plan: placement, rewritten paths, exclusion, deduplication, fields too small."""

from __future__ import annotations

import os
import posixpath
from collections.abc import Callable
from pathlib import Path, PurePosixPath, PureWindowsPath

import pytest

from bat_core.pack import OUTSIDE_PROJECT, Packer, PackError, pack
from bat_core.pack.placement import check_relpath, place, stored_relative, strip_root
from bat_core.trace import BlendFileCache, trace

from .conftest import BLENDFILES


def set_paths(blend: Path, change: Callable[[Path, bytes], bytes | None]) -> int:
    """Rewrite stored paths of ``blend`` in place (a test copy): ``change(abspath, stored)``."""
    n = 0
    with BlendFileCache() as cache:
        touched = set()
        for usage in trace(blend, cache=cache):
            if usage.field is None or usage.blendfile != blend:
                continue
            new = change(usage.abspath, usage.block.get_string(usage.field))
            if new is not None:
                usage.block.set(usage.field, new)
                touched.add(usage.block.file)
                n += 1
        for bf in touched:
            tmp = bf.path.with_name(bf.path.name + ".tmp")
            bf.save(tmp)
            os.replace(tmp, bf.path)
    return n


# --- placement ---------------------------------------------------------------------


def test_strip_root_posix_windows_unc() -> None:
    assert strip_root(PurePosixPath("/srv/x/y.png")) == PurePosixPath("srv/x/y.png")
    assert strip_root(PureWindowsPath("C:/tex/y.png")) == PurePosixPath("C/tex/y.png")
    # A share gets its own UNC/ folder: a server called C must not land on drive C:.
    assert strip_root(PureWindowsPath(r"\\server\share\tex\y.png")) == PurePosixPath("UNC/server/share/tex/y.png")


def test_place_inside_and_outside_project() -> None:
    project = Path("/p/proj")
    assert place(Path("/p/proj/tex/a.png"), project) == PurePosixPath("tex/a.png")
    assert place(Path("/p/other/a.png"), project) == PurePosixPath(OUTSIDE_PROJECT, "p/other/a.png")
    # Normalised first: '..' never survives into a destination.
    assert place(Path("/p/proj/../../../etc/x"), project) == PurePosixPath(OUTSIDE_PROJECT, "etc/x")
    assert place(Path("/c/../../x"), project) == PurePosixPath(OUTSIDE_PROJECT, "x")


@pytest.mark.parametrize("bad", ["../x", "a/../../x", "a/\0b", "."])
def test_check_relpath_refuses_escapes(bad: str) -> None:
    with pytest.raises(PackError):
        check_relpath(PurePosixPath(bad))


def test_stored_relative() -> None:
    blend = PurePosixPath("shots/shot.blend")
    assert stored_relative(PurePosixPath("shots/tex/a.png"), blend) == b"//tex/a.png"
    assert stored_relative(PurePosixPath("libs/char.blend"), blend) == b"//../libs/char.blend"
    assert stored_relative(PurePosixPath("shots"), blend) == b"//"
    assert stored_relative(PurePosixPath("shots/tëx.png"), blend) == "//tëx.png".encode()


def test_stored_relative_agrees_with_relpath() -> None:
    """Worked out on the parts; ``posixpath.relpath`` of the same two places is the reference."""
    places = ["a.png", "shots/shot.blend", "shots/x", "shots/tex/a.png", "shots/tex/deep/b.exr", "sh/x.png",
              "shotsx/y.png", "libs/char.blend", "_outside_project/C/textures/wood.png", "shots/shots/z",
              "a/b/c/d/e.blend", "a/b/x", "a/b"]
    for dest in places:
        for holder in places:
            expected = posixpath.relpath("/" + dest, "/" + posixpath.dirname("/" + holder))
            want = b"//" if expected == "." else b"//" + expected.encode()
            assert stored_relative(PurePosixPath(dest), PurePosixPath(holder)) == want, (dest, holder)


# --- plans of real files -------------------------------------------------------------


def test_plan_keeps_project_layout_and_rewrites_only_what_moves(tmp_path: Path) -> None:
    shot = BLENDFILES / "v50" / "libraries" / "shots" / "shot.blend"
    with Packer(shot, str(tmp_path / "out")) as packer:
        plan = packer.plan()
    dests = {f.dest.as_posix() for f in plan.files if f.dest is not None}
    assert "shot.blend" in dests and "textures/shot.png" in dests
    outside = sorted(d for d in dests if d.startswith(OUTSIDE_PROJECT))
    assert any(d.endswith("libs/char.blend") for d in outside)
    main = plan.files[-1]
    assert main.source == shot and main.rewrites
    # Libraries moved together: their relative paths to each other still hold.
    assert all(not f.rewrites for f in plan.files if f.is_blendfile and f is not main)
    for rw in main.rewrites:
        assert rw.new.startswith(b"//_outside_project/")
    assert not (tmp_path / "out").exists()


def test_exclude_globs(tmp_path: Path) -> None:
    blend = BLENDFILES / "v50" / "images" / "images.blend"
    result = pack(blend, str(tmp_path / "out"), exclude=["*.mp4", "frame_0003.png"])
    excluded = {f.source.name: f for f in result.files if f.action == "excluded"}
    assert set(excluded) == {"clip.mp4", "frame_0003.png"}
    assert "'*.mp4'" in excluded["clip.mp4"].reason
    assert not (tmp_path / "out" / "textures" / "clip.mp4").exists()
    assert not (tmp_path / "out" / "textures" / "seq" / "frame_0003.png").exists()
    assert (tmp_path / "out" / "textures" / "seq" / "frame_0002.png").exists()


def test_same_file_through_two_paths_is_transferred_once(copy_scenario, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = copy_scenario("v50", "images")
    (root / "link").symlink_to(root / "textures", target_is_directory=True)
    blend = root / "images.blend"
    # The movie now goes through the symlink: same file, another path.
    n = set_paths(blend, lambda p, s: b"//link/single.png" if p.name == "clip.mp4" else None)
    assert n == 1
    result = pack(blend, str(tmp_path / "out"))
    singles = [f for f in result.files if f.source.name == "single.png" and f.action != "excluded"]
    assert len(singles) == 1
    copies = list((tmp_path / "out").rglob("single.png"))
    assert len(copies) == 1
    # Both images point at the one packed copy (placed where it was first found).
    paths = [u.abspath for u in trace(tmp_path / "out" / "images.blend") if u.abspath.name == "single.png"]
    assert len(paths) == 2 and set(paths) == set(copies)


def test_path_too_long_for_its_field_is_an_error(copy_scenario, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = copy_scenario("v50", "images")
    blend = root / "images.blend"
    # An absolute path outside the project that just fits in Image.filepath (1024 bytes);
    # packed, it becomes //_outside_project/<that path>, which does not.
    deep = tmp_path / "deep"
    while len(os.fsencode(deep)) < 900:
        deep = deep / ("d" * 60)
    deep = deep / ("e" * (1000 - len(os.fsencode(deep)) - 1))
    deep.mkdir(parents=True)
    texture = deep / "far.png"
    texture.write_bytes((root / "textures" / "single.png").read_bytes())
    set_paths(blend, lambda p, s: os.fsencode(texture) if p.name == "single.png" else None)
    target = tmp_path / "out"
    with pytest.raises(PackError, match="too long for its field"):
        pack(blend, str(target))
    assert not target.exists()


def test_blend_file_outside_project_is_refused(tmp_path: Path) -> None:
    blend = BLENDFILES / "v50" / "basic" / "basic.blend"
    with pytest.raises(PackError, match="not inside the project"):
        pack(blend, str(tmp_path / "out"), project=BLENDFILES / "v50" / "images")


def test_missing_blend_file(tmp_path: Path) -> None:
    with pytest.raises(PackError, match="no such blend file"):
        pack(tmp_path / "nope.blend", str(tmp_path / "out"))


def test_implied_paths_follow_their_blend_file(tmp_path: Path) -> None:
    """Point caches (no stored path) stay beside the packed blend file that implies them.

    The caches_extra main file moves one level down (``shots/``) so that, with
    the default project, its library goes under ``_outside_project/`` and the
    library's ``blendcache_lib/`` must go there with it.
    """
    import shutil

    extra = Path(__file__).parent / "data" / "caches_extra"
    root = tmp_path / "scene"
    shutil.copytree(extra, root)
    shots = root / "shots"
    shots.mkdir()
    for name in ("main.blend", "blendcache_main", "cache"):
        os.replace(root / name, shots / name)
    main = shots / "main.blend"
    assert set_paths(main, lambda p, s: b"//../libs/lib.blend" if s.endswith(b"lib.blend") else None) == 1
    target = tmp_path / "out"
    result = pack(main, str(target))
    assert not result.missing
    lib_dir = target / OUTSIDE_PROJECT / (root / "libs").relative_to("/")
    assert (lib_dir / "lib.blend").is_file()
    assert sorted(p.name for p in (lib_dir / "blendcache_lib").iterdir()) == sorted(
        p.name for p in (root / "libs" / "blendcache_lib").iterdir())
    assert sorted(p.name for p in (target / "blendcache_main").iterdir()) == sorted(
        p.name for p in (shots / "blendcache_main").iterdir())
    # And the packed files find them: trace the pack itself.
    traced = [u for u in trace(target / "main.blend")]
    assert traced and all(u.files for u in traced)
    assert all(f.is_relative_to(target) for u in traced for f in u.files)


@pytest.mark.parametrize("target", ["out\0x", "out\0x.zip"])
def test_nul_in_target_is_refused(tmp_path: Path, target: str) -> None:
    blend = BLENDFILES / "v50" / "basic" / "basic.blend"
    with pytest.raises(PackError, match="invalid"):
        pack(blend, str(tmp_path / target))
