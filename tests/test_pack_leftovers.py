"""What a pack leaves when it stops, and what a later pack may remove.

Stopped cleanly (abort, Ctrl-C, SIGTERM): no partial file, no directory it
made and left empty, no temporary directory.  Killed: its leftovers are named
with its process id and locked; a later pack removes only bat's own, and only
once their owner is gone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bat_core.pack import Packer, pack
from bat_core.pack.leftovers import lock, partial_name, remove_abandoned_partials, sweep_work_dirs
from bat_core.progress import PackCallback

from .packfaults import STATE_DIR, empty_dirs, hashes, partials


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", ""])
    proc.wait()
    return proc.pid


class _AbortDuring(PackCallback):
    """Abort as soon as ``path`` is being copied (the abort comes while its copy runs)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.started = False
        self.packer: Packer | None = None

    def transfer_file(self, src: Path, dst: str) -> None:
        self.started = self.started or src == self.path

    def transfer_progress(self, total_bytes: int, transferred_bytes: int) -> None:
        if self.started and self.packer is not None and not self.packer.aborted:
            self.packer.abort("stopped by the test")


def test_abort_leaves_no_empty_directories(copy_scenario, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The finding: Ctrl-C left the directories made for files not transferred yet."""
    root = copy_scenario("v50", "libraries")
    big = root / "libs" / "sub" / "textures" / "prop.png"  # alone in its directory
    with open(big, "r+b") as fh:
        fh.truncate(1 << 30)  # sparse: its copy takes long enough to be interrupted
    target = tmp_path / "out"
    cb = _AbortDuring(big)
    with Packer(root / "shots" / "shot.blend", str(target), project=root, callback=cb) as packer:
        cb.packer = packer
        packer.plan()
        result = packer.execute()
    assert result.aborted
    assert {f.relpath: f.action for f in result.files}["libs/sub/textures/prop.png"] == "not-transferred"
    assert not (target / "libs" / "sub" / "textures").exists()  # made for it, left empty: removed
    assert not empty_dirs(target)
    assert not partials(target)
    done = {f.relpath for f in result.files if f.action in ("copied", "rewritten")}
    assert set(hashes(target, hidden=False)) == done
    if done:  # what landed is the target's own, for the next pack
        manifest = json.loads((target / STATE_DIR / "manifest.json").read_text())
        assert set(manifest["files"]) == done


def test_abort_before_anything_lands_leaves_nothing(copy_scenario, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = copy_scenario("v50", "images")

    class AbortAtStart(PackCallback):
        packer: Packer | None = None

        def pack_start(self, file_count: int, byte_count: int) -> None:
            assert self.packer is not None
            self.packer.abort("stopped by the test")

    target = tmp_path / "new" / "out"
    cb = AbortAtStart()
    with Packer(root / "images.blend", str(target), callback=cb) as packer:
        cb.packer = packer
        packer.plan()
        assert packer.execute().aborted
    assert not (tmp_path / "new").exists()  # the target and its parent were made by the pack: gone


def test_sweep_removes_only_abandoned_work_dirs(tmp_path: Path) -> None:
    dead, alive = _dead_pid(), os.getppid()
    abandoned = tmp_path / f"bat-pack-{dead}-abc123"
    live = tmp_path / f"bat-pack-{alive}-def456"
    old_style = tmp_path / "bat-pack-q1w2e3"  # no owner in the name: not recognisably abandoned
    unrelated = tmp_path / f"other-{dead}-abc"
    locked = tmp_path / f"bat-pack-{_dead_pid()}-locked1"  # owner in another pid namespace, say
    for d in (abandoned, live, old_style, unrelated, locked):
        d.mkdir()
        (d / "0.blend").write_bytes(b"x")
    fd = os.open(locked, os.O_RDONLY)
    try:
        if lock(fd) is None:
            pytest.skip("no file locks here")
        removed = sweep_work_dirs(str(tmp_path))
    finally:
        os.close(fd)
    assert removed == [abandoned]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        p.name for p in (live, old_style, unrelated, locked))


def test_sweep_leaves_other_users_files(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to make a file another user's")
    theirs = tmp_path / f"bat-pack-{_dead_pid()}-theirs"
    theirs.mkdir()
    os.chown(theirs, 65534, 65534)
    partial = tmp_path / partial_name("x.png", "abcd").replace(str(os.getpid()), str(_dead_pid()))
    partial.write_bytes(b"half")
    os.chown(partial, 65534, 65534)
    assert sweep_work_dirs(str(tmp_path)) == []
    assert remove_abandoned_partials(tmp_path) == []
    assert theirs.exists() and partial.exists()


def test_partials_of_a_live_pack_are_kept(copy_scenario, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A journal whose owner still runs (here: this test's parent) is not the next pack's to clean."""
    root = copy_scenario("v50", "images")
    target = tmp_path / "out"
    pack(root / "images.blend", str(target))
    alive = os.getppid()
    name = f".single.png.bat-{alive}-0011aabb.partial"
    (target / "textures" / name).write_bytes(b"half written")
    journal = target / STATE_DIR / f"journal-{alive}-0011aabb.jsonl"
    journal.write_text(json.dumps({"op": "partial", "path": f"textures/{name}"}) + "\n")
    pack(root / "images.blend", str(target))
    assert (target / "textures" / name).exists() and journal.exists()
    # Once its owner is gone, the next pack removes it.
    dead = _dead_pid()
    journal.rename(journal.with_name(f"journal-{dead}-0011aabb.jsonl"))
    moved = (target / "textures" / name).rename(target / "textures" / name.replace(str(alive), str(dead)))
    journal.with_name(f"journal-{dead}-0011aabb.jsonl").write_text(
        json.dumps({"op": "partial", "path": f"textures/{moved.name}"}) + "\n{\"op\": \"do")  # cut short
    pack(root / "images.blend", str(target))
    assert not moved.exists()
    assert sorted(p.name for p in (target / STATE_DIR).iterdir()) == ["manifest.json"]


def test_killed_run_files_are_kept_as_the_targets_own(copy_scenario, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Files a killed pack completed (in its journal, not yet in the manifest) are the target's."""
    root = copy_scenario("v50", "images")
    target = tmp_path / "out"
    pack(root / "images.blend", str(target))
    manifest = target / STATE_DIR / "manifest.json"
    records = json.loads(manifest.read_text())["files"]
    single = records.pop("textures/single.png")
    manifest.write_text(json.dumps({"format": "bat-pack-manifest", "version": 1, "files": records}))
    dead = _dead_pid()
    (target / STATE_DIR / f"journal-{dead}-00ff.jsonl").write_text(json.dumps(
        {"op": "done", "path": "textures/single.png", "size": single[0], "mtime_ns": single[1]}) + "\n")
    # The source changes: the killed pack's copy is replaced, not refused as someone else's file.
    (root / "textures" / "single.png").write_bytes(b"\x89PNG changed")
    result = pack(root / "images.blend", str(target))
    assert {f.relpath: f.action for f in result.files}["textures/single.png"] == "copied"
    assert (target / "textures" / "single.png").read_bytes() == b"\x89PNG changed"


def test_temporary_directory_is_removed(copy_scenario, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    import tempfile

    root = copy_scenario("v50", "libraries")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    stale = tmp / f"bat-pack-{_dead_pid()}-zz99"
    stale.mkdir()
    (stale / "0.blend").write_bytes(b"left by a killed pack")
    started = time.time()
    result = pack(root / "shots" / "shot.blend", str(tmp_path / "out"))
    assert result.complete and any(f.action == "rewritten" for f in result.files)
    assert not list(tmp.iterdir())
    assert time.time() - started < 10
