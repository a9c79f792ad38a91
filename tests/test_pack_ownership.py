"""A target may hold the project, sit inside it or around it; a pack replaces only its own files.

"Its own": files an earlier pack into the same target wrote and nobody
changed since (the directory target's manifest), or a ZIP file whose comment
says bat made it.  Anything else of the same name refuses the pack, naming
it, before anything is written — unless it holds exactly the bytes to be
written, in which case it is left as it is.  And a pack never packs its own
target, or an earlier pack's files, into itself.
"""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from pathlib import Path

import pytest

from bat_core.pack import Packer, PackError, pack

from .conftest import BLENDFILES
from .packfaults import STATE_DIR, hashes

DEMO = Path(__file__).resolve().parent.parent / "examples" / "demo"


def _tree(root: Path) -> dict[str, tuple[str, int]]:
    """Every file below ``root`` with its hash and modification time: anything written shows."""
    return {rel: (h, (root / rel).stat().st_mtime_ns) for rel, h in hashes(root).items()}


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    shutil.copytree(DEMO, tmp_path / "demo")
    return tmp_path / "demo"


def test_readme_zip_inside_the_project(demo: Path, run_bat, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """``bat pack shot.blend out.zip`` from the README: the ZIP file lands in the project."""
    monkeypatch.chdir(demo)
    res = run_bat("pack", "shot.blend", "out.zip")
    assert res.exit_code == 0, res.stderr
    with zipfile.ZipFile(demo / "out.zip") as zf:
        names = set(zf.namelist())
    assert "shot.blend" in names and "lib/textures/wood.png" in names
    # Packing again replaces the archive bat made, and never packs it into itself.
    res = run_bat("pack", "shot.blend", "out.zip")
    assert res.exit_code == 0, res.stderr
    with zipfile.ZipFile(demo / "out.zip") as zf:
        assert set(zf.namelist()) == names


def test_zip_bat_did_not_make_is_never_replaced(demo: Path, run_bat) -> None:  # type: ignore[no-untyped-def]
    theirs = demo / "theirs.zip"
    with zipfile.ZipFile(theirs, "w") as zf:
        zf.writestr("holiday.jpg", "someone else's archive")
    before = theirs.read_bytes()
    res = run_bat("pack", str(demo / "shot.blend"), str(theirs))
    assert res.exit_code == 1
    assert res.stderr.strip() == (f"bat: error: target {theirs} is a ZIP file bat did not make; refusing to "
                                  "replace it (move it away, or choose another name)")
    assert theirs.read_bytes() == before


@pytest.mark.parametrize("kind", ["directory", "zip"])
def test_target_inside_a_directory_the_blend_file_uses(copy_scenario, kind: str) -> None:  # type: ignore[no-untyped-def]
    """A custom Geometry Nodes bake directory is packed with everything below it; a target inside it
    must not have its own files (an earlier pack) packed into itself."""
    root = copy_scenario("v50", "geonodes")
    bake = root / "gn_bake_custom" / "blobs"  # a directory the bake's reader walks
    target = bake / ("pack.zip" if kind == "zip" else "packed")
    first = pack(root / "geonodes.blend", str(target))
    assert first.complete
    packed = {f.relpath for f in first.files if f.relpath}
    assert "gn_bake_custom/blobs/00001_00000.blob" in packed
    again = pack(root / "geonodes.blend", str(target))
    own = [f for f in again.files if str(f.source).startswith(str(target))]
    assert own and all(f.action == "excluded" and "earlier pack" in f.reason for f in own)
    assert {f.relpath for f in again.files if f.relpath} == packed
    if kind == "zip":
        with zipfile.ZipFile(target) as zf:
            assert set(zf.namelist()) == packed
    else:
        assert all(f.action == "skipped" for f in again.files if f.action != "excluded")
        assert not (target / "gn_bake_custom" / "blobs" / "packed").exists()


def test_pack_into_the_parent_of_the_project(demo: Path, tmp_path: Path) -> None:
    """The finding: packing into the project's parent overwrote a file that was not part of the pack."""
    parent = tmp_path / "work"
    parent.mkdir()
    project = parent / "proj"
    shutil.move(str(demo), project)
    (parent / "textures").mkdir()
    unrelated = parent / "textures" / "brick.png"
    unrelated.write_text("my own brick texture, not the project's")
    identical = parent / "textures" / "floor_color.png"
    shutil.copy2(project / "textures" / "floor_color.png", identical)
    before = _tree(parent)
    with pytest.raises(PackError) as info:
        pack(project / "shot.blend", str(parent))
    assert str(info.value) == (f"refusing to pack into {parent}: {unrelated} exists and was not written by a "
                               "pack into this target (or was changed since) (move them away, or choose "
                               "another target)")
    assert _tree(parent) == before  # not a byte written: no file, no directory, no manifest

    unrelated.unlink()
    result = pack(project / "shot.blend", str(parent))
    actions = {f.relpath: f.action for f in result.files}
    assert actions["textures/floor_color.png"] == "skipped"  # the same bytes: left as it is
    assert identical.stat().st_mtime_ns == before["textures/floor_color.png"][1]
    manifest = json.loads((parent / STATE_DIR / "manifest.json").read_text())
    assert "textures/brick.png" in manifest["files"]
    assert "textures/floor_color.png" not in manifest["files"]  # not bat's: never replaced later
    sources = {rel.removeprefix("proj/"): h for rel, (h, _) in before.items() if rel.startswith("proj/")}
    assert hashes(project) == sources


def test_repack_replaces_only_its_own_unchanged_files(demo: Path, tmp_path: Path) -> None:
    target = tmp_path / "out"
    pack(demo / "shot.blend", str(target))
    # The source changes: the packed copy (bat's, unchanged) is replaced.
    brick = demo / "textures" / "brick.png"
    brick.write_bytes(brick.read_bytes() + b"new")
    again = pack(demo / "shot.blend", str(target))
    assert {f.relpath: f.action for f in again.files}["textures/brick.png"] == "copied"
    assert (target / "textures" / "brick.png").read_bytes() == brick.read_bytes()
    # Someone edits a packed file: it is theirs now, and a pack leaves it alone.
    edited = target / "textures" / "floor_rough.png"
    edited.write_bytes(b"edited in the pack")
    before = _tree(target)
    (demo / "textures" / "floor_rough.png").write_bytes(b"newer source")
    with pytest.raises(PackError, match=f"{edited} exists and was not written by a pack"):
        pack(demo / "shot.blend", str(target))
    assert _tree(target) == before


def test_noop_repack_is_not_refused_by_its_own_files(demo: Path, tmp_path: Path) -> None:
    target = tmp_path / "out"
    pack(demo / "shot.blend", str(target))
    before = _tree(target)
    again = pack(demo / "shot.blend", str(target))
    assert {f.action for f in again.files} == {"skipped"}
    assert _tree(target) == before


def test_repack_settles_up_to_date_files_in_the_preflight(demo: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A file the preflight found up to date (the target's copy, with its source's size and
    time) is not looked at again; one whose source has a new time is, and is compared."""
    from bat_plugins.directory.transfer import DirectoryTransfer

    target = tmp_path / "out"
    pack(demo / "shot.blend", str(target))
    asked: list[str] = []
    is_present = DirectoryTransfer.is_present

    def counting(self, item, io):  # type: ignore[no-untyped-def]
        asked.append(str(item.dest))
        return is_present(self, item, io)

    monkeypatch.setattr(DirectoryTransfer, "is_present", counting)
    again = pack(demo / "shot.blend", str(target))
    assert {f.action for f in again.files} == {"skipped"}
    assert asked == ["pack-info.txt"]  # the packer's own temporary file: compared each time
    brick = demo / "textures" / "brick.png"
    os.utime(brick, ns=(brick.stat().st_atime_ns, brick.stat().st_mtime_ns + 10**9))
    asked.clear()
    again = pack(demo / "shot.blend", str(target))
    assert sorted(asked) == ["pack-info.txt", "textures/brick.png"]
    assert {f.relpath: f.action for f in again.files}["textures/brick.png"] == "skipped"  # same bytes


def test_one_target_object_for_several_packs_forgets_each_preflight(demo: Path, tmp_path: Path) -> None:
    """What a preflight found (up to date, free, identical) holds for its own pack only: a
    program packing twice into one resolved target sees a source changed in between copied."""
    from bat_plugins.directory.transfer import resolve_directory

    target = resolve_directory(str(tmp_path / "out"))
    pack(demo / "shot.blend", target)
    pack(demo / "shot.blend", target)  # a re-pack: its preflight finds brick.png up to date
    brick = demo / "textures" / "brick.png"
    brick.write_bytes(brick.read_bytes()[::-1])
    again = pack(demo / "shot.blend", target)
    assert {f.relpath: f.action for f in again.files}["textures/brick.png"] == "copied"
    assert (tmp_path / "out" / "textures" / "brick.png").read_bytes() == brick.read_bytes()


def test_file_made_after_the_preflight_found_its_place_free_is_refused(demo: Path, tmp_path: Path) -> None:
    """The preflight notes the places it found free, so ``is_present`` does not look again;
    a file someone else puts there meanwhile, even with the very bytes to be packed, is
    refused by the send and left as it is."""
    target = tmp_path / "out"
    packer = Packer(demo / "shot.blend", str(target))
    packer.plan()
    assert packer.target is not None
    transfer = packer.target.transfer
    preflight = transfer.preflight
    brick = demo / "textures" / "brick.png"

    def then_someone_writes(items):  # type: ignore[no-untyped-def]
        preflight(items)
        (target / "textures").mkdir(parents=True)
        shutil.copy2(brick, target / "textures" / "brick.png")

    transfer.preflight = then_someone_writes  # type: ignore[method-assign]
    with packer, pytest.raises(PackError, match=r"refusing to replace .*brick\.png: it is a file bat did not write"):
        packer.execute()
    assert (target / "textures" / "brick.png").read_bytes() == brick.read_bytes()
    assert not list(target.rglob("*.partial"))


def test_target_is_the_project_itself(copy_scenario) -> None:  # type: ignore[no-untyped-def]
    """Project files are already in place (left alone); a blend file whose paths change is refused."""
    root = copy_scenario("v50", "images")
    before = _tree(root)
    result = pack(root / "images.blend", str(root))
    assert {f.action for f in result.files if f.action != "excluded"} == {"skipped"}
    assert {rel: v for rel, v in _tree(root).items()} == before
    with pytest.raises(PackError, match="onto itself"):
        pack(root / "images.blend", str(root), compress=True)  # compressing rewrites it
    assert _tree(root) == before
    shot = copy_scenario("v50", "libraries") / "shots" / "shot.blend"  # libraries move: paths change
    before = _tree(shot.parent)
    with pytest.raises(PackError, match="onto itself"):
        pack(shot, str(shot.parent))
    assert _tree(shot.parent) == before


def test_target_holding_the_project_in_a_subdirectory(copy_scenario, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A target around the project: sources stay, the pack goes beside them."""
    root = copy_scenario("v50", "libraries")
    before = hashes(root)
    with Packer(root / "shots" / "shot.blend", str(root), project=root / "shots") as packer:
        plan = packer.plan()
        result = packer.execute()
    assert result.complete and plan.files
    assert (root / "shot.blend").is_file()  # the packed main file, beside the sources
    assert all(hashes(root)[rel] == digest for rel, digest in before.items())


def test_hard_link_to_a_source_is_a_source(copy_scenario, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = copy_scenario("v50", "images")
    target = tmp_path / "out"
    (target / "textures").mkdir(parents=True)
    os.link(root / "textures" / "single.png", target / "textures" / "clip.mp4")
    before = hashes(root)
    with pytest.raises(PackError, match=r"would overwrite .*single\.png, which is being packed"):
        pack(root / "images.blend", str(target))
    assert hashes(root) == before


def test_hard_linked_sources_packed_onto_themselves(copy_scenario) -> None:  # type: ignore[no-untyped-def]
    """Two sources that are one file (hard links), each packed onto itself: not a clash."""
    root = copy_scenario("v50", "images")
    other = root / "textures" / "tëxture ü 1.png"
    other.unlink()
    os.link(root / "textures" / "single.png", other)
    before = _tree(root)
    result = pack(root / "images.blend", str(root))
    actions = {f.relpath: f.action for f in result.files}
    assert actions["textures/single.png"] == actions["textures/tëxture ü 1.png"] == "skipped"
    assert _tree(root) == before


def test_another_pack_writing_into_the_same_target(demo: Path, tmp_path: Path) -> None:
    from bat_core.pack.leftovers import lock

    target = tmp_path / "out"
    target.mkdir()
    fd = os.open(target, os.O_RDONLY)
    try:
        if lock(fd) is None:
            pytest.skip("no file locks here")
        with pytest.raises(PackError, match="another bat pack is writing into"):
            pack(demo / "shot.blend", str(target))
        assert not list(target.iterdir())
    finally:
        os.close(fd)
    assert pack(demo / "shot.blend", str(target)).complete


def test_layout_of_v42_library_pack(tmp_path: Path) -> None:
    """A project of libraries (Blender 4.2) packs into a directory around it and opens its own files."""
    shot = BLENDFILES / "v42" / "libraries" / "shots" / "shot.blend"
    result = pack(shot, str(tmp_path / "out"), project=shot.parent.parent)
    assert result.complete
    manifest = json.loads((tmp_path / "out" / STATE_DIR / "manifest.json").read_text())
    assert set(manifest["files"]) == {f.relpath for f in result.files if f.relpath}
