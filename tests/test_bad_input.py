"""Damaged blend files (made from real ones) give one clear line and exit status 1."""

from __future__ import annotations

import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import BLENDFILES

V50 = BLENDFILES / "v50" / "basic" / "basic.blend"
V42 = BLENDFILES / "v42" / "basic" / "basic.blend"
ZSTD = BLENDFILES / "v50" / "basic" / "basic-zstd.blend"


def _dna_offset(data: bytes) -> int:
    return data.index(b"SDNANAME")


def not_blend(tmp: Path) -> Path:
    p = tmp / "notes.blend"
    p.write_text("these are not the bytes you are looking for\n")
    return p


def empty(tmp: Path) -> Path:
    p = tmp / "empty.blend"
    p.write_bytes(b"")
    return p


def truncated_mid_block(tmp: Path) -> Path:
    data = V50.read_bytes()
    p = tmp / "truncated.blend"
    p.write_bytes(data[: len(data) // 2])
    return p


def truncated_header(tmp: Path) -> Path:
    p = tmp / "header-only.blend"
    p.write_bytes(V42.read_bytes()[:12])
    return p


def corrupt_dna(tmp: Path) -> Path:
    data = bytearray(V42.read_bytes())
    pos = data.index(b"STRC", _dna_offset(data))
    data[pos : pos + 4] = b"XXXX"
    p = tmp / "corrupt-dna.blend"
    p.write_bytes(bytes(data))
    return p


def lying_dna(tmp: Path) -> Path:
    """Grow the size the DNA claims for the Scene struct: its fields no longer add up."""
    data = bytearray(V50.read_bytes())
    start = _dna_offset(data)
    types_at = data.index(b"TYPE", start) + 8
    ntypes = struct.unpack_from("<i", data, types_at - 4)[0]
    names = bytes(data[types_at:]).split(b"\0", ntypes)[:ntypes]
    tlen = data.index(b"TLEN", start) + 4
    idx = names.index(b"Scene")
    size = struct.unpack_from("<h", data, tlen + 2 * idx)[0]
    struct.pack_into("<h", data, tlen + 2 * idx, size + 8)
    p = tmp / "lying-dna.blend"
    p.write_bytes(bytes(data))
    return p


def block_past_end(tmp: Path) -> Path:
    """The first block (after the 12-byte 4.2 header) claims a length past the end."""
    data = bytearray(V42.read_bytes())
    struct.pack_into("<i", data, 12 + 4, len(data) * 2)
    p = tmp / "long-block.blend"
    p.write_bytes(bytes(data))
    return p


def bad_zstd(tmp: Path) -> Path:
    data = bytearray(ZSTD.read_bytes())
    mid = len(data) // 3
    data[mid : mid + 64] = bytes(64)
    p = tmp / "bad-zstd.blend"
    p.write_bytes(bytes(data))
    return p


def truncated_zstd(tmp: Path) -> Path:
    data = ZSTD.read_bytes()
    p = tmp / "short-zstd.blend"
    p.write_bytes(data[: len(data) // 2])
    return p


def bad_gzip(tmp: Path) -> Path:
    import gzip

    data = bytearray(gzip.compress(V42.read_bytes()))
    data[len(data) // 2 : len(data) // 2 + 32] = bytes(32)
    p = tmp / "bad-gzip.blend"
    p.write_bytes(bytes(data))
    return p


DAMAGE: dict[str, tuple[Callable[[Path], Path], str]] = {
    "not-a-blend-file": (not_blend, "not a blend file"),
    "empty": (empty, "empty file"),
    "truncated-mid-block": (truncated_mid_block, "truncated"),
    "truncated-after-header": (truncated_header, "truncated"),
    "corrupt-dna": (corrupt_dna, "corrupt DNA"),
    "lying-dna": (lying_dna, "struct Scene fields add up"),
    "block-past-end": (block_past_end, "past the end"),
    "zstd-corrupt": (bad_zstd, ""),
    "zstd-truncated": (truncated_zstd, ""),
    "gzip-corrupt": (bad_gzip, ""),
}


@pytest.mark.parametrize("case", sorted(DAMAGE))
@pytest.mark.parametrize("command", ["blocks", "list"])
def test_damaged_file_one_line_error(case: str, command: str, tmp_path: Path, run_bat) -> None:  # type: ignore[no-untyped-def]
    make, expect = DAMAGE[case]
    path = make(tmp_path)
    res = run_bat(command, str(path))
    assert res.exit_code == 1, res
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith(f"bat: error: {path}: ")
    assert expect in lines[0]
    assert "Traceback" not in res.stderr


def test_missing_file_is_an_error(run_bat, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    res = run_bat("blocks", str(tmp_path / "nope.blend"))
    assert res.exit_code == 1
    assert res.stderr.startswith(f"bat: error: {tmp_path / 'nope.blend'}: ")


def test_console_script_no_traceback_and_debug_shows_one(tmp_path: Path) -> None:
    path = truncated_mid_block(tmp_path)
    exe = [sys.executable, "-m", "bat_core"]
    res = subprocess.run([*exe, "blocks", str(path)], capture_output=True, text=True)
    assert res.returncode == 1
    assert res.stderr.count("\n") == 1 and "Traceback" not in res.stderr
    res = subprocess.run([*exe, "-d", "blocks", str(path)], capture_output=True, text=True)
    assert res.returncode == 1
    assert "Traceback" in res.stderr
