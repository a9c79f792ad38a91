"""Aborts, full disks, unwritable targets and paths that try to leave the target.

In every case: a clear one-line error or an aborted result, no half-written
file under a final name, nothing written outside the target, sources intact.
"""

from __future__ import annotations

import errno
import hashlib
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path, PurePosixPath
from unittest import mock

import pytest

from bat_core.pack import Packer, PackError, TransferItem, pack
from bat_core.pack.result import NOT_TRANSFERRED
from bat_core.progress import PackCallback

from .test_pack_plan import set_paths

BIG = 64 << 20


def _hashes(root: Path) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def _partials(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith(".partial")]


@pytest.fixture
def big_scenario(copy_scenario):  # type: ignore[no-untyped-def]
    """The images scenario with one texture made big (sparse: cheap to make, slow enough to copy)."""
    root = copy_scenario("v50", "images")
    big = root / "textures" / "single.png"
    with open(big, "r+b") as fh:
        fh.truncate(BIG)
    return root


class AbortOnFirstBytes(PackCallback):
    def __init__(self) -> None:
        self.packer: Packer | None = None
        self.events: list[str] = []

    def transfer_progress(self, total_bytes: int, transferred_bytes: int) -> None:
        if self.packer is not None and not self.packer.aborted:
            self.packer.abort("stopped by the test")

    def pack_aborted(self, reason: str) -> None:
        self.events.append(reason)


def test_abort_from_a_callback(big_scenario: Path, tmp_path: Path) -> None:
    before = _hashes(big_scenario)
    cb = AbortOnFirstBytes()
    target = tmp_path / "out"
    with Packer(big_scenario / "images.blend", str(target), callback=cb) as packer:
        cb.packer = packer
        packer.plan()
        start = time.monotonic()
        result = packer.execute()
        assert time.monotonic() - start < 1.0
    assert result.aborted and result.abort_reason == "stopped by the test"
    assert cb.events == ["stopped by the test"]
    assert not _partials(target)
    big = next(f for f in result.files if f.source.name == "single.png")
    assert big.action == NOT_TRANSFERRED and not (target / "textures" / "single.png").exists()
    # What is there is complete.
    for f in result.files:
        if f.action == "copied" and not f.own:
            assert Path(f.destination or "").read_bytes() == f.source.read_bytes()
    assert _hashes(big_scenario) == before


def test_keyboard_interrupt_in_library_use(big_scenario: Path, tmp_path: Path) -> None:
    class Interrupt(PackCallback):
        def transfer_progress(self, total_bytes: int, transferred_bytes: int) -> None:
            raise KeyboardInterrupt

    target = tmp_path / "t" / "out.zip"
    with pytest.raises(KeyboardInterrupt):
        pack(big_scenario / "images.blend", str(target), callback=Interrupt())
    assert not list(target.parent.iterdir())  # neither the ZIP nor its temporary file


def test_ctrl_c_stops_the_cli_within_a_second(big_scenario: Path, tmp_path: Path) -> None:
    huge = big_scenario / "textures" / "clip.mp4"
    with open(huge, "r+b") as fh:
        fh.truncate(1 << 30)  # sparse: reading is free, writing it would take seconds
    target = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "bat_core", "pack", "--progress", "log", str(big_scenario / "images.blend"),
         str(target)], stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if "clip.mp4 ->" in line:
            break
    time.sleep(0.2)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    rest = proc.stderr.read()
    code = proc.wait(timeout=10)
    assert time.monotonic() - sent < 1.0
    assert code == 130, "".join(lines) + rest
    assert "pack stopped after" in rest and "interrupted (Ctrl-C)" in rest
    assert not _partials(target)
    assert not (target / "textures" / "clip.mp4").exists()


@pytest.mark.parametrize("err", [errno.EXDEV, errno.ENOSYS, errno.EINVAL])
def test_copies_without_kernel_copy(big_scenario: Path, tmp_path: Path, err: int) -> None:
    """Where copy_file_range is refused (another file system, an old kernel), plain reads and writes."""
    target = tmp_path / "out"
    with mock.patch("os.copy_file_range", side_effect=OSError(err, os.strerror(err))) as kernel:
        result = pack(big_scenario / "images.blend", str(target), project=big_scenario)
    assert kernel.called
    copied = [f for f in result.files if f.action == "copied" and not f.own]
    assert copied
    for f in copied:
        assert (target / f.relpath).read_bytes() == f.source.read_bytes()


def test_repack_compares_contents_when_times_differ(big_scenario: Path, tmp_path: Path) -> None:
    """Same size and time: skipped unread.  Same size, other time: skipped only with the same bytes."""
    target = tmp_path / "out"
    first = pack(big_scenario / "images.blend", str(target), project=big_scenario)
    plain = next(f for f in first.files if f.action == "copied" and f.size > 1)
    packed = target / plain.relpath
    data = packed.read_bytes()
    packed.write_bytes(bytes([data[0] ^ 0xFF]) + data[1:])  # same size, new time, other bytes
    with pytest.raises(PackError, match=f"{packed} exists and was not written by a pack"):
        pack(big_scenario / "images.blend", str(target), project=big_scenario)  # not bat's file any more
    packed.write_bytes(data)
    os.utime(packed, ns=(0, 0))  # same bytes, other time: compared, then skipped
    third = pack(big_scenario / "images.blend", str(target), project=big_scenario)
    assert {f.relpath: f.action for f in third.files}[plain.relpath] == "skipped"
    assert all(f.action == "skipped" for f in third.files if f.action != "excluded")


@pytest.mark.parametrize("grow", [1, -1])
def test_repack_recopies_a_source_changed_within_the_same_time(copy_scenario, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                                grow: int) -> None:
    """A source rewritten with other bytes of another size, its time put back: copied again.

    The quick re-pack check trusts size and time together; time alone is not
    enough (a coarse file-system clock, a tool that keeps times, ``cp -p``).
    """
    root = copy_scenario("v50", "images")
    target = tmp_path / "out"
    first = pack(root / "images.blend", str(target), project=root)
    src = root / "textures" / "single.png"
    entry = next(f for f in first.files if f.source == src)
    before = os.stat(src)
    assert os.stat(target / entry.relpath).st_mtime_ns == before.st_mtime_ns
    data = src.read_bytes()
    changed = data + b"more" if grow > 0 else data[:-4]
    src.write_bytes(changed)
    os.utime(src, ns=(before.st_atime_ns, before.st_mtime_ns))
    again = pack(root / "images.blend", str(target), project=root)
    assert {f.relpath: f.action for f in again.files}[entry.relpath] == "copied"
    assert (target / entry.relpath).read_bytes() == changed
    assert sum(f.action == "copied" for f in again.files) == 1


def test_unwritable_target(tmp_path: Path) -> None:
    blend = Path(__file__).parent / "blendfiles" / "v50" / "basic" / "basic.blend"
    # A file in the way of the target directory: no one can create it, not even root.
    (tmp_path / "file").write_text("x")
    with pytest.raises(PackError, match="cannot create target directory"):
        pack(blend, str(tmp_path / "file" / "out"))
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(PackError, match=r"not writable|cannot create"):
            pack(blend, str(locked / "out"))


def test_unwritable_system_directory() -> None:
    target = Path("/sys/bat-pack-test")
    blend = Path(__file__).parent / "blendfiles" / "v50" / "basic" / "basic.blend"
    if not Path("/sys").is_dir():
        pytest.skip("no /sys here")
    with pytest.raises(PackError, match=r"cannot create target directory /sys/bat-pack-test: .+"):
        pack(blend, str(target))


def test_dotdot_paths_stay_inside_the_target(copy_scenario, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = copy_scenario("v50", "images")
    secret = tmp_path / "secret" / "s.png"
    secret.parent.mkdir()
    secret.write_bytes(b"\x89PNG secret")
    up = b"//" + b"../" * 40  # far past the file-system root
    set_paths(root / "images.blend", lambda p, s: up + os.fsencode(secret).lstrip(b"/")
              if p.name == "single.png" else None)
    target = tmp_path / "out"
    outside_before = {p for p in tmp_path.rglob("*") if not p.is_relative_to(target)}
    result = pack(root / "images.blend", str(target))
    assert {p for p in tmp_path.rglob("*") if not p.is_relative_to(target)} == outside_before
    packed = next(f for f in result.files if f.source == secret)
    assert packed.relpath == "_outside_project/" + str(secret).lstrip("/")
    from bat_core.trace import trace
    paths = {u.abspath for u in trace(target / "images.blend") if u.files}
    assert target / packed.relpath in paths
    assert all(p.is_relative_to(target) for p in paths)


def test_symlink_in_target_leading_out_is_refused(tmp_path: Path) -> None:
    blend = Path(__file__).parent.parent / "examples" / "demo" / "shot.blend"
    target = tmp_path / "out"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    target.mkdir()
    (target / "textures").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(PackError, match="is a symbolic link"):
        pack(blend, str(target))
    assert not list(elsewhere.iterdir())


def test_refuses_to_overwrite_a_source_file(copy_scenario, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = copy_scenario("v50", "images")
    project = root / "proj"
    project.mkdir()
    os.replace(root / "images.blend", project / "images.blend")
    os.replace(root / "textures", project / "textures")
    (root / "single.png").write_bytes(b"outer")
    (project / "single.png").write_bytes(b"inner")
    blend = project / "images.blend"
    # One image uses proj/single.png, another ../single.png: packing into root would put
    # proj/single.png exactly where ../single.png is.
    set_paths(blend, lambda p, s: {"single.png": b"//single.png", "clip.mp4": b"//../single.png"}.get(p.name))
    before = _hashes(root)
    with pytest.raises(PackError, match="would overwrite"):
        pack(blend, str(root))
    assert _hashes(root) == before


def test_zip_entry_names_are_checked() -> None:
    from bat_plugins.zip.transfer import entry_name

    ok = TransferItem(Path("/x"), PurePosixPath("a/b.png"), 1, Path("/x"))
    assert entry_name(ok) == "a/b.png"
    for bad in ("../a.png", "a/../../b", "/abs.png", "C:/x.png", "a\\..\\..\\b"):
        with pytest.raises(PackError, match="refusing the ZIP entry name"):
            entry_name(TransferItem(Path("/x"), PurePosixPath(bad), 1, Path("/x")))


def test_zip_refuses_non_utf8_names(tmp_path: Path) -> None:
    from bat_plugins.zip.transfer import entry_name

    name = os.fsdecode(b"caf\xe9.png")
    with pytest.raises(PackError, match="not valid UTF-8"):
        entry_name(TransferItem(Path("/x"), PurePosixPath(name), 1, Path("/x")))


def test_existing_zip_is_replaced_atomically(tmp_path: Path) -> None:
    blend = Path(__file__).parent.parent / "examples" / "demo" / "shot.blend"
    target = tmp_path / "out.zip"
    pack(blend, str(target))
    with zipfile.ZipFile(target, "a") as zf:  # still bat's: the comment is kept
        zf.writestr("old.txt", "old")
    pack(blend, str(target))
    with zipfile.ZipFile(target) as zf:
        names = zf.namelist()
    assert "old.txt" not in names and "shot.blend" in names
    assert [p.name for p in tmp_path.iterdir()] == ["out.zip"]
