"""Symlinks in an existing target never lead a pack's writes elsewhere — not even an empty directory."""

from __future__ import annotations

import os
import shutil
from pathlib import Path, PurePosixPath

import pytest

from bat_core.pack import Packer, PackError, pack
from bat_core.progress import PackCallback
from bat_plugins.directory import tree

from .packfaults import hashes

DEMO = Path(__file__).resolve().parent.parent / "examples" / "demo"


@pytest.fixture(params=["descriptors", "paths"])
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways the directory target walks directories: ``*at`` calls, or ``lstat`` of each path."""
    if request.param == "paths":
        monkeypatch.setattr(tree, "_AT", False)
    elif not tree._AT:
        pytest.skip("this platform has no descriptor-relative calls")
    return str(request.param)


def _listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_symlinked_directory_in_the_target(tmp_path: Path, mode: str) -> None:
    """The finding: ``out/lib -> elsewhere`` gave ``elsewhere/textures`` before the pack was refused."""
    target, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    elsewhere.mkdir()
    target.mkdir()
    (target / "lib").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(PackError) as info:
        pack(DEMO / "shot.blend", str(target))
    assert str(info.value).startswith(f"refusing to pack into {target}: {target / 'lib'} is a symbolic link "
                                      f"(to {elsewhere})")
    assert not list(elsewhere.iterdir())
    assert _listing(target) == ["lib"]  # refused before anything was written


def test_symlink_at_a_file_name(tmp_path: Path, mode: str) -> None:
    target = tmp_path / "out"
    (target / "textures").mkdir(parents=True)
    victim = tmp_path / "victim.png"
    victim.write_bytes(b"keep me")
    (target / "textures" / "brick.png").symlink_to(victim)
    with pytest.raises(PackError, match=r"brick\.png is a symbolic link"):
        pack(DEMO / "shot.blend", str(target))
    assert victim.read_bytes() == b"keep me"
    assert _listing(target) == ["textures", "textures/brick.png"]


class _SwapInSymlink(PackCallback):
    """Once the target was checked, replace one of its directories by a symlink (a racing attacker)."""

    def __init__(self, target: Path, elsewhere: Path) -> None:
        self.target, self.elsewhere = target, elsewhere

    def pack_start(self, file_count: int, byte_count: int) -> None:
        shutil.rmtree(self.target / "lib")
        (self.target / "lib").symlink_to(self.elsewhere, target_is_directory=True)


def test_symlink_swapped_in_after_the_check(tmp_path: Path) -> None:
    if not tree._AT:
        pytest.skip("only descriptor-relative calls close the window between check and write")
    target, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    elsewhere.mkdir()
    pack(DEMO / "shot.blend", str(target))
    brick = DEMO / "textures" / "brick.png"
    demo = tmp_path / "demo"
    shutil.copytree(DEMO, demo)
    (demo / "lib" / "textures" / "wood.png").write_bytes(b"changed: must be copied again")
    (demo / "lib" / "props.blend").touch()
    with Packer(demo / "shot.blend", str(target), callback=_SwapInSymlink(target, elsewhere)) as packer:
        packer.plan()
        with pytest.raises(PackError, match=r"refusing to write through .*/lib: it is a symbolic link"):
            packer.execute()
    assert not list(elsewhere.iterdir())
    assert brick.read_bytes() == (target / "textures" / "brick.png").read_bytes()


def test_open_dir_creates_nothing_through_a_symlink(tmp_path: Path, mode: str) -> None:
    root, elsewhere = tmp_path / "root", tmp_path / "elsewhere"
    (root / "a").mkdir(parents=True)
    elsewhere.mkdir()
    (root / "a" / "link").symlink_to(elsewhere)
    (root / "file").write_text("x")
    with tree.open_root(root) as top:
        made: list[PurePosixPath] = []
        with pytest.raises(PackError, match="is a symbolic link"):
            tree.open_dir(top, ["a", "link", "b", "c"], create=True, made=made)
        with pytest.raises(PackError, match="a file is in the way"):
            tree.open_dir(top, ["file", "b"], create=True)
        assert tree.open_dir(top, ["a", "missing"], create=False) is None
        new = tree.open_dir(top, ["a", "new", "deeper"], create=True, made=made)
        assert new is not None
        new.close()
    assert [str(m) for m in made] == ["a/new", "a/new/deeper"]
    assert not list(elsewhere.iterdir())


def test_sources_untouched_by_a_refused_pack(copy_scenario, tmp_path: Path, mode: str) -> None:  # type: ignore[no-untyped-def]
    root = copy_scenario("v50", "images")
    before = hashes(root)
    target = tmp_path / "out"
    target.mkdir()
    (target / "textures").symlink_to(root / "textures", target_is_directory=True)  # into the sources
    with pytest.raises(PackError, match="is a symbolic link"):
        pack(root / "images.blend", str(target))
    assert hashes(root) == before
    assert not [p for p in root.rglob("*") if p.name.endswith(".partial")]
    os.unlink(target / "textures")
    assert pack(root / "images.blend", str(target)).missing
