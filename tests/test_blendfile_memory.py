"""What keeps ``bat``'s memory down: compressed files decompressed into an unlinked
temporary file and mapped, and mapped pages given back as the scan and the trace
move on (``MADV_DONTNEED``), but never once the private copy was written to.

The fixtures are small, so the tests lower the thresholds: every compressed file
goes to a temporary file, pages are given back every 4 KiB of scan and at every
look-up.
"""

from __future__ import annotations

import errno
import mmap
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

import pytest

from bat_core.blendfile import Compression, compression, open_blend
from bat_core.blendfile import file as blendfile_module
from bat_core.errors import BlendFileError
from bat_core.trace import trace

from .conftest import BLENDFILES, all_fixtures

ZSTD = BLENDFILES / "v50" / "basic" / "basic-zstd.blend"
TEXTS = BLENDFILES / "v50" / "fonts_texts" / "texts.blend"


@pytest.fixture
def tmpdir_for_bat(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """bat's temporary directory, and every compressed file decompressed into it."""
    where = tmp_path / "bat-tmp"
    where.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(where))
    monkeypatch.setattr(compression, "IN_MEMORY_MAX", 0)
    return where


@pytest.fixture
def eager_release(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(blendfile_module, "_RELEASE_EVERY", mmap.PAGESIZE)
    monkeypatch.setattr(blendfile_module, "_TRIM_EVERY", 1)


def _fds_into(directory: Path) -> list[int]:
    out = []
    for name in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue
        if target.startswith(str(directory)):
            out.append(int(name))
    return out


def _gzip_copy(src: Path, dst: Path) -> Path:
    with open_blend(src) as bf:
        bf.save(dst, compress=Compression.GZIP)
    return dst


def _blocks(path: Path) -> list[tuple[bytes, int, int, bytes]]:
    with open_blend(path) as bf:
        return [(b.code, b.addr_old, b.sdna_index, b.raw_data()) for b in bf.blocks]


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_temp_file_is_unlinked_private_and_freed_on_close(tmpdir_for_bat: Path, tmp_path: Path) -> None:
    expected = _blocks(ZSTD)  # in memory: nothing in bat's temp dir yet
    gz = _gzip_copy(ZSTD, tmp_path / "basic-gz.blend")
    for path in (ZSTD, gz):
        bf = open_blend(path)
        try:
            assert isinstance(bf.buf, mmap.mmap)
            assert list(tmpdir_for_bat.iterdir()) == []  # unlinked from the start
            fds = _fds_into(tmpdir_for_bat)
            assert len(fds) == 1  # the map's own descriptor; the file object is closed
            assert stat.S_IMODE(os.fstat(fds[0]).st_mode) == 0o600
            assert [(b.code, b.addr_old, b.sdna_index, b.raw_data()) for b in bf.blocks] == expected
        finally:
            bf.close()
        assert _fds_into(tmpdir_for_bat) == []


def test_small_seekable_zstd_stays_in_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "never-made"))
    with open_blend(ZSTD) as bf:
        assert isinstance(bf.buf, bytearray)


@pytest.mark.parametrize("how", ["no directory", "full disk"])
def test_a_temp_dir_that_cannot_take_it_means_memory(how: str, tmpdir_for_bat: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    expected = _blocks(ZSTD)
    gz = _gzip_copy(ZSTD, tmp_path / "basic-gz.blend")
    if how == "no directory":
        monkeypatch.setattr(tempfile, "tempdir", str(tmpdir_for_bat / "gone"))
    else:
        real = tempfile.TemporaryFile

        class Full:
            def __init__(self, tmp: Any) -> None:
                self.tmp, self.written = tmp, 0

            def __enter__(self) -> Full:
                return self

            def __exit__(self, *exc: object) -> None:
                self.tmp.close()

            def write(self, data: bytes) -> int:
                self.written += len(data)
                if self.written > 100_000:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                return int(self.tmp.write(data))

        monkeypatch.setattr(tempfile, "TemporaryFile", lambda *a, **k: Full(real(*a, **k)))
    for path in (ZSTD, gz):
        with open_blend(path) as bf:
            assert isinstance(bf.buf, bytearray)
            assert [(b.code, b.addr_old, b.sdna_index, b.raw_data()) for b in bf.blocks] == expected
    assert list(tmpdir_for_bat.iterdir()) == []


def test_decompression_limit_holds_in_the_temp_file(tmpdir_for_bat: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    gz = _gzip_copy(ZSTD, tmp_path / "basic-gz.blend")
    monkeypatch.setattr(compression, "MIN_LIMIT", 1 << 16)
    monkeypatch.setattr(compression, "MAX_RATIO", 1)
    for path in (ZSTD, gz):
        with pytest.raises(BlendFileError, match=r"decompresses to more than|claims") as err:
            open_blend(path)
        assert "\n" not in str(err.value)
    assert _fds_into(tmpdir_for_bat) == [] and list(tmpdir_for_bat.iterdir()) == []


def test_truncated_compressed_file_is_one_line_error(tmpdir_for_bat: Path, tmp_path: Path) -> None:
    gz = _gzip_copy(ZSTD, tmp_path / "basic-gz.blend")
    for path in (ZSTD, gz):
        cut = tmp_path / f"cut-{path.name}"
        cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
        with pytest.raises(BlendFileError) as err:
            open_blend(cut)
        assert "\n" not in str(err.value)


@pytest.mark.parametrize("src", [TEXTS, ZSTD], ids=["plain", "zstd"])
def test_written_pages_are_never_given_back(src: Path, tmpdir_for_bat: Path, eager_release: None,
                                            tmp_path: Path) -> None:
    """A page given back after it was written would come back as the file has it: the
    change would be lost.  With a trim at every look-up, changes must all stay."""
    with open_blend(src) as bf:
        assert isinstance(bf.buf, mmap.mmap)
        scenes = bf.blocks_by_code(b"SC")
        scene = scenes[0]
        old = scene.get((b"r", b"pic"))
        scene.set((b"r", b"pic"), b"//changed/")
        for _ in range(3):  # look-ups that would each trim
            for blk in bf.blocks_by_code(b"OB"):
                assert bf.block_at_addr(blk.addr_old) is blk
                bf.peek_addr(blk.addr_old)
        assert scene.get((b"r", b"pic")) == b"//changed/" != old
        bf.save(tmp_path / "out.blend")
    with open_blend(tmp_path / "out.blend") as copy:
        assert copy.blocks_by_code(b"SC")[0].get((b"r", b"pic")) == b"//changed/"
    with open_blend(src) as again:
        assert again.blocks_by_code(b"SC")[0].get((b"r", b"pic")) == old


FIXTURES = [f for f in all_fixtures() if f.blend.parent.name in ("libraries", "shots", "images", "nodes")]


@pytest.mark.parametrize("fx", FIXTURES, ids=[f.id for f in FIXTURES])
def test_trace_is_the_same_with_pages_given_back_all_the_time(fx: Any, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    def traced() -> list[tuple[str, str, list[str]]]:
        return sorted((u.block_name.decode(errors="replace"), str(u.field), sorted(map(str, u.files)))
                      for u in trace(fx.blend))

    expected = traced()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(compression, "IN_MEMORY_MAX", 0)
    monkeypatch.setattr(blendfile_module, "_RELEASE_EVERY", mmap.PAGESIZE)
    monkeypatch.setattr(blendfile_module, "_TRIM_EVERY", 1)
    assert traced() == expected and expected
