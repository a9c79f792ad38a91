"""Faults in the middle of a pack, into a directory and into a ZIP file.

A full disk (a real tmpfs), a file-size limit, a dependency deleted or
changed while it is packed, a file that cannot be read, SIGKILL, SIGTERM.  In
every case: no file under its final name is truncated (each one there equals
its source), the sources are untouched, and packing again completes.
"""

from __future__ import annotations

import hashlib
import os
import resource
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from bat_core.pack import Packer, PackError
from bat_core.progress import PackCallback
from bat_plugins.zip.transfer import MARKER

from .packfaults import bat, empty_dirs, hashes, no_dac_override, partials, run_on_small_disk
from .packinfo import INFO, bat_written

KINDS = ["directory", "zip"]


@pytest.fixture
def project(copy_scenario) -> Path:  # type: ignore[no-untyped-def]
    """The images scenario (Blender-made), its single texture made 3 MB of random bytes."""
    root: Path = copy_scenario("v50", "images")
    (root / "textures" / "single.png").write_bytes(os.urandom(3 << 20))
    return root


def _target(tmp_path: Path, kind: str, name: str = "out") -> Path:
    return tmp_path / (f"{name}.zip" if kind == "zip" else name)


def _planned(blend: Path, target: Path) -> set[str]:
    with Packer(blend, str(target), noop=True) as packer:
        return {str(f.dest) for f in packer.plan().files}


def _assert_complete_files(project: Path, files: dict[str, str], expected: set[str] | None = None) -> None:
    """Every packed file equals its source (so none is truncated); with ``expected``, all are there."""
    packed = {rel: h for rel, h in files.items() if not bat_written(rel)}
    assert not [rel for rel in files if rel.endswith(".partial")]
    for rel, digest in packed.items():
        source = project / rel
        assert source.is_file() and hashlib.sha256(source.read_bytes()).hexdigest() == digest, \
            f"{rel} differs from its source"
    if expected is not None:
        assert set(packed) == expected
        assert INFO in files  # a complete pack has its note of what to open


def _zip_files(path: Path) -> dict[str, str]:
    with zipfile.ZipFile(path) as zf:
        assert zf.testzip() is None and zf.comment == MARKER
        return {n: hashlib.sha256(zf.read(n)).hexdigest() for n in zf.namelist()}


# --- a full disk -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_disk_full_then_repack(project: Path, tmp_path: Path, kind: str) -> None:
    """A real full disk: a 1 MiB tmpfs.  The pack stops with one line; with room, it completes."""
    before = hashes(project)
    blend = project / "images.blend"
    disk = tmp_path / "disk"
    target = _target(disk, kind)
    expected = _planned(blend, target)
    pack = {"run": bat("pack", "--progress", "none", str(blend), str(target))}
    steps = [pack, {"snapshot": str(target)}, {"zip": str(target)} if kind == "zip" else {"snapshot": str(target)},
             {"remount": 16384, "mountpoint": str(disk)}, pack,
             {"zip": str(target)} if kind == "zip" else {"snapshot": str(target)}]
    full, first, _, _, again, second = run_on_small_disk(disk, 1024, steps, tmp_path)

    assert full["code"] == 1, full["stderr"]
    errors = [line for line in full["stderr"].splitlines() if line.startswith("bat: error: ")]
    assert len(errors) == 1 and "No space left on device" in errors[0]
    assert "Traceback" not in full["stderr"]
    assert not [n for n in first["names"] if n.endswith(".partial")]
    if kind == "zip":
        assert not first["exists"]  # no archive at all, rather than half of one
    else:
        _assert_complete_files(project, first["files"])
        assert first["files"].keys() < expected | {".bat-pack/manifest.json", INFO}

    assert again["code"] == 3, again["stderr"]  # complete; the scenario has missing files
    if kind == "zip":
        assert second["bad"] is None and second["comment"] == MARKER.decode()
        _assert_complete_files(project, second["files"], expected)
    else:
        _assert_complete_files(project, second["files"], expected)
    assert hashes(project) == before


def _limit_file_size(limit: int) -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit then fail with EFBIG


@pytest.mark.parametrize("kind", KINDS)
def test_file_size_limit_then_repack(project: Path, tmp_path: Path, kind: str) -> None:
    """The kernel refuses to grow a file past RLIMIT_FSIZE (EFBIG) half-way through the big texture."""
    before = hashes(project)
    blend = project / "images.blend"
    target = _target(tmp_path, kind)
    cmd = bat("pack", "--progress", "none", str(blend), str(target))
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=60,
                         preexec_fn=lambda: _limit_file_size(1 << 20))
    assert res.returncode == 1, res.stderr
    assert res.stderr.count("bat: error: ") == 1 and "File too large" in res.stderr
    if kind == "zip":
        assert sorted(p.name for p in tmp_path.iterdir() if "out" in p.name) == []
    else:
        _assert_complete_files(project, hashes(target))
        assert not partials(target)
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert res.returncode == 3, res.stderr
    expected = _planned(blend, target)
    files = _zip_files(target) if kind == "zip" else hashes(target)
    _assert_complete_files(project, files, expected)
    assert hashes(project) == before


# --- dependencies that change under the pack ------------------------------------------


class _OnStart(PackCallback):
    def __init__(self, action):  # type: ignore[no-untyped-def]
        self.action = action

    def pack_start(self, file_count: int, byte_count: int) -> None:
        self.action()


@pytest.mark.parametrize("kind", KINDS)
def test_dependency_deleted_while_packing(project: Path, tmp_path: Path, kind: str, run_bat) -> None:  # type: ignore[no-untyped-def]
    gone = project / "textures" / "udim" / "color.1002.png"
    target = _target(tmp_path, kind)
    with Packer(project / "images.blend", str(target), callback=_OnStart(gone.unlink)) as packer:
        packer.plan()
        with pytest.raises(PackError, match=r"cannot transfer .*color\.1002\.png.*No such file") as info:
            packer.execute()
    assert info.value.result is not None
    if kind == "zip":
        assert not target.exists() and not partials(tmp_path)
    else:
        _assert_complete_files(project, hashes(target))
    # Packing again completes, with the tiles that are left.
    res = run_bat("pack", str(project / "images.blend"), str(target))
    assert res.exit_code == 3, res.stderr
    files = _zip_files(target) if kind == "zip" else hashes(target)
    _assert_complete_files(project, files, _planned(project / "images.blend", target))


class _GrowWhileCopied(PackCallback):
    """Appends to the big file once some of its bytes are copied (called on the main thread).

    More bytes done than all the other files hold: some of them are the big file's.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.size = path.stat().st_size
        self.done = False

    def transfer_progress(self, total_bytes: int, transferred_bytes: int) -> None:
        if not self.done and transferred_bytes > total_bytes - self.size:
            self.done = True
            with open(self.path, "ab") as fh:
                fh.write(b"more")


@pytest.mark.parametrize("kind", KINDS)
def test_dependency_changed_while_packing(copy_scenario, tmp_path: Path, kind: str) -> None:  # type: ignore[no-untyped-def]
    """A file written to while it is copied is never packed half old, half new."""
    root = copy_scenario("v50", "images")
    big = root / "textures" / "clip.mp4"
    with open(big, "r+b") as fh:
        fh.truncate(1 << 30)  # sparse: reading is cheap, copying all of it takes a while
    target = _target(tmp_path, kind)
    cb = _GrowWhileCopied(big)
    start = time.monotonic()
    with Packer(root / "images.blend", str(target), callback=cb) as packer:
        packer.plan()
        with pytest.raises(PackError, match=r"clip\.mp4 changed while it was being packed"):
            packer.execute()
    assert time.monotonic() - start < 5  # found between chunks, not after a gigabyte
    assert not partials(tmp_path)
    if kind == "directory":
        assert not (target / "textures" / "clip.mp4").exists()
    else:
        assert not target.exists()
    with open(big, "r+b") as fh:
        fh.truncate(1 << 16)
    with Packer(root / "images.blend", str(target)) as packer:
        packer.plan()
        result = packer.execute()
    assert result.complete
    files = _zip_files(target) if kind == "zip" else hashes(target)
    _assert_complete_files(root, files, _planned(root / "images.blend", target))


# --- a file that cannot be read ------------------------------------------------------------


def _run_without_dac(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    prefix = no_dac_override()
    if prefix is None:
        pytest.skip("running as root without setpriv: file permissions cannot be made to apply")
    return subprocess.run([*prefix, *cmd], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("kind", KINDS)
def test_unreadable_file_stops_the_plan(project: Path, tmp_path: Path, kind: str) -> None:
    locked = project / "textures" / "seq" / "frame_0003.png"
    locked.chmod(0)
    target = _target(tmp_path, kind)
    res = _run_without_dac(bat("pack", str(project / "images.blend"), str(target)))
    assert res.returncode == 1, res.stderr
    assert res.stderr.strip().splitlines()[-1] == f"bat: error: cannot read {locked}: Permission denied"
    assert not target.exists()  # refused before anything was written
    locked.chmod(0o644)
    res = subprocess.run(bat("pack", str(project / "images.blend"), str(target)), capture_output=True, text=True)
    assert res.returncode == 3, res.stderr


_LOCK_AT_START = """
import os, sys
from pathlib import Path
from bat_core.pack import Packer, PackError
from bat_core.progress import PackCallback

class Lock(PackCallback):
    def pack_start(self, files, size):
        os.chmod(sys.argv[3], 0)

with Packer(sys.argv[1], sys.argv[2], callback=Lock()) as packer:
    packer.plan()
    try:
        packer.execute()
    except PackError as exc:
        print(exc)
        sys.exit(1)
"""


@pytest.mark.parametrize("kind", KINDS)
def test_file_made_unreadable_while_packing(project: Path, tmp_path: Path, kind: str) -> None:
    locked = project / "textures" / "seq" / "frame_0003.png"
    target = _target(tmp_path, kind)
    res = _run_without_dac([sys.executable, "-c", _LOCK_AT_START, str(project / "images.blend"), str(target),
                            str(locked)])
    assert res.returncode == 1, res.stderr
    assert res.stdout.strip() == (f"cannot transfer {locked} to {target / 'textures/seq/frame_0003.png'}: "
                                  "Permission denied")
    if kind == "zip":
        assert not target.exists() and not partials(tmp_path)
    else:
        _assert_complete_files(project, hashes(target))
        assert not (target / "textures" / "seq" / "frame_0003.png").exists()
    locked.chmod(0o644)
    res = subprocess.run(bat("pack", str(project / "images.blend"), str(target)), capture_output=True, text=True)
    assert res.returncode == 3, res.stderr
    files = _zip_files(target) if kind == "zip" else hashes(target)
    _assert_complete_files(project, files, _planned(project / "images.blend", target))


# --- signals ---------------------------------------------------------------------------------


def _start_big_pack(root: Path, target: Path, tmpdir: Path) -> subprocess.Popen[str]:
    """Start packing with a 1 GiB (sparse) movie; returns once the movie is being copied."""
    big = root / "textures" / "clip.mp4"
    with open(big, "r+b") as fh:
        fh.truncate(1 << 30)
    env = {**os.environ, "TMPDIR": str(tmpdir)}
    proc = subprocess.Popen(bat("pack", "--progress", "log", str(root / "images.blend"), str(target)),
                            stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stderr is not None
    for line in proc.stderr:
        if "clip.mp4 ->" in line:
            break
    time.sleep(0.3)
    return proc


@pytest.mark.parametrize("kind", KINDS)
def test_sigkill_then_repack_cleans_up_and_completes(copy_scenario, tmp_path: Path, kind: str) -> None:  # type: ignore[no-untyped-def]
    root = copy_scenario("v50", "images")
    size = (root / "textures" / "clip.mp4").stat().st_size
    target = _target(tmp_path / "t", kind)
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    proc = _start_big_pack(root, target, tmpdir)
    proc.kill()
    proc.wait(timeout=10)
    # What a killed pack leaves: its partial file and its temporary directory.
    assert partials(target.parent), "the test did not kill the pack while it was copying"
    killed = [p.name for p in tmpdir.iterdir()]
    assert killed == [p.name for p in tmpdir.glob(f"bat-pack-{proc.pid}-*")] and killed

    with open(root / "textures" / "clip.mp4", "r+b") as fh:
        fh.truncate(size)  # the movie as it was: the re-run is quick
    res = subprocess.run(bat("pack", str(root / "images.blend"), str(target)), capture_output=True, text=True,
                         env={**os.environ, "TMPDIR": str(tmpdir)}, timeout=60)
    assert res.returncode == 3, res.stderr
    assert not partials(target.parent)
    assert not list(tmpdir.iterdir())
    files = _zip_files(target) if kind == "zip" else hashes(target)
    _assert_complete_files(root, files, _planned(root / "images.blend", target))
    if kind == "directory":
        manifest = (target / ".bat-pack" / "manifest.json").read_text()
        assert '"textures/clip.mp4"' in manifest
        assert [p.name for p in (target / ".bat-pack").iterdir()] == ["manifest.json"]


@pytest.mark.parametrize("kind", KINDS)
def test_sigterm_stops_like_ctrl_c(copy_scenario, tmp_path: Path, kind: str) -> None:  # type: ignore[no-untyped-def]
    root = copy_scenario("v50", "images")
    big = root / "textures" / "clip.mp4"
    before = {rel: h for rel, h in hashes(root).items() if rel != "textures/clip.mp4"}
    target = _target(tmp_path / "t", kind)
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    proc = _start_big_pack(root, target, tmpdir)
    big_before = big.stat()
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.stderr is not None
    rest = proc.stderr.read()
    code = proc.wait(timeout=10)
    assert time.monotonic() - sent < 1.0
    assert code == 128 + signal.SIGTERM, rest
    assert "pack stopped after" in rest and "bat: terminated (SIGTERM)" in rest
    assert "Traceback" not in rest
    assert not partials(target.parent)
    assert not list(tmpdir.iterdir())
    if kind == "zip":
        assert not target.exists()
    else:
        assert not (target / "textures" / "clip.mp4").exists()
        assert not empty_dirs(target)
        _assert_complete_files(root, hashes(target))
    # The sources are untouched (the big one by size and time: hashing a gigabyte takes long).
    assert (big.stat().st_size, big.stat().st_mtime_ns) == (big_before.st_size, big_before.st_mtime_ns)
    big.unlink()
    assert hashes(root) == before


def test_second_sigterm_stops_at_once_and_still_cleans_up(copy_scenario, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = copy_scenario("v50", "images")
    target = tmp_path / "t" / "out"
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    proc = _start_big_pack(root, target, tmpdir)
    proc.send_signal(signal.SIGTERM)
    proc.send_signal(signal.SIGTERM)
    assert proc.stderr is not None
    rest = proc.stderr.read()
    assert proc.wait(timeout=10) == 128 + signal.SIGTERM, rest
    assert "Traceback" not in rest and "bat: terminated" in rest
    assert not partials(target.parent)
    assert not list(tmpdir.iterdir())
    assert not (target / "textures" / "clip.mp4").exists()
