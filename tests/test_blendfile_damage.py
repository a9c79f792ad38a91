"""Damaged real blend files: every one ends in a BlendFileError (one line on the CLI),
quickly and without allocating far beyond the file's size.

Each case damages a file Blender wrote (``tests/fuzz/seeds/``) in one precise
way, with the fuzzer's own parser (``tests/fuzz/mutators.py``), and runs it
through what the fuzzer runs: open, ``bat blocks`` statistics, trace, pack.
"""

from __future__ import annotations

import gzip
import os
import struct
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import bat_core
from bat_core import plugins
from bat_core.blendfile import Block, compression, open_blend
from bat_core.blendfile.dna import MissingFieldError
from bat_core.errors import BatError, BlendFileError
from bat_core.trace import BlockUsage, TraceContext

from .fuzz import harness
from .fuzz import mutators as m

SEEDS = harness.SEEDS


def plain(name: str) -> bytes:
    return m.decompress((SEEDS / name).read_bytes())[0]


def _first(buf: bytes, code: bytes) -> tuple[m.Layout, m.BHead]:
    lay = m.layout(buf)
    assert lay is not None
    return lay, next(h for h in m.blocks(buf, lay) if h.code == code)


def set_header(buf: bytes, code: bytes, **changes: int | bytes) -> bytes:
    lay, blk = _first(buf, code)
    return m._set_header(buf, lay, blk, **changes)


def change_dna(buf: bytes, change: Callable[[m.DNATables], None]) -> bytes:
    lay, blk = _first(buf, b"DNA1")
    tables = m.parse_dna(buf[blk.data : blk.data + blk.length], lay.endian)
    assert tables is not None
    change(tables)
    return m.replace_block(buf, lay, blk, m.build_dna(tables, lay.endian))


def _struct_index(t: m.DNATables, name: bytes) -> int:
    return next(i for i, (ti, _) in enumerate(t.structs) if t.types[ti] == name)


def _non_ascii_name(t: m.DNATables) -> None:
    t.names[5] = "nämé".encode()


def _sizes_lie(t: m.DNATables) -> None:
    type_idx = t.structs[_struct_index(t, b"Object")][0]
    t.sizes[type_idx] += 8


def _huge_dims(t: m.DNATables) -> None:
    i = next(i for i, n in enumerate(t.names) if n.startswith(b"loc["))
    t.names[i] = b"loc[999999999]"


def _dims_beyond_int(t: m.DNATables) -> None:
    i = next(i for i, n in enumerate(t.names) if n.startswith(b"loc["))
    t.names[i] = b"loc[" + b"9" * 5000 + b"]"


def _contains_itself(t: m.DNATables) -> None:
    """A struct whose only member is itself, sized 0 so that the sizes still add up."""
    si = _struct_index(t, b"Link")
    type_idx, _ = t.structs[si]
    t.sizes[type_idx] = 0
    t.structs[si] = (type_idx, [(type_idx, next(i for i, n in enumerate(t.names) if n == b"flag"))])


def _two_structs_contain_each_other(t: m.DNATables) -> None:
    a, b = _struct_index(t, b"Link"), _struct_index(t, b"LinkData")
    ta, tb = t.structs[a][0], t.structs[b][0]
    flag = next(i for i, n in enumerate(t.names) if n == b"flag")
    t.sizes[ta] = t.sizes[tb] = 0
    t.structs[a] = (ta, [(tb, flag)])
    t.structs[b] = (tb, [(ta, flag)])


def _missing_field(t: m.DNATables) -> None:
    """bNode's ``storage`` renamed: the sizes add up, the field a reader needs is gone."""
    i = t.names.index(b"*storage")
    t.names[i] = b"*storagX"


def _id_name_not_chars(t: m.DNATables) -> None:
    """ID.name made a short array of the same size (a fuzz finding: names became tuples)."""
    si = _struct_index(t, b"ID")
    members = t.structs[si][1]
    for k, (_, name_idx) in enumerate(members):
        if t.names[name_idx].startswith(b"name["):
            size = int(t.names[name_idx][5:-1])
            t.names.append(b"name[%d]" % (size // 2))
            members[k] = (t.types.index(b"short"), len(t.names) - 1)


def _member_index_past_end(t: m.DNATables) -> None:
    si = _struct_index(t, b"Object")
    _, members = t.structs[si]
    members[0] = (len(t.types) + 5, members[0][1])


def _zstd_seek_table_claims(data: bytes) -> bytes:
    z = m.zstd_seekable(data)
    out = bytearray(z)
    n = struct.unpack_from("<I", out, len(out) - 9)[0]
    struct.pack_into("<I", out, len(out) - 9 - 8 * n + 4, 0xFFFFFFFF)  # 4 GB in one frame
    return bytes(out)


def _zstd_frame_claims(data: bytes) -> bytes:
    """A single zstd frame whose header says it holds a terabyte."""
    import zstandard

    frame = bytearray(zstandard.ZstdCompressor(level=1, write_content_size=True).compress(data))
    descriptor = frame[4]
    assert descriptor >> 6 == 2  # a 4-byte content size field: make it the 8-byte kind
    single = descriptor & 0x20
    window = b"" if single else bytes(frame[5:6])
    at = 5 + len(window)
    rest = frame[at + 4 :]
    return bytes(frame[:4]) + bytes([(descriptor & 0x3F) | 0xC0]) + window + struct.pack("<Q", 1 << 40) + rest


def _id_holds(seed: str, code: bytes, other: bytes) -> bytes:
    """The first ``code`` block made to claim it holds the struct of the first ``other`` block."""
    buf = plain(seed)
    lay = m.layout(buf)
    assert lay is not None
    heads = m.blocks(buf, lay)
    victim = next(h for h in heads if h.code == code)
    donor = next(h for h in heads if h.code == other and h.sdna and h.length <= victim.length)
    return m._set_header(buf, lay, victim, sdna=donor.sdna)


CASES: dict[str, Callable[[], bytes]] = {
    # Block headers.
    "huge-length-v50": lambda: set_header(plain("shot-v50.blend"), b"REND", length=(1 << 64) - 1),
    "huge-length-v42": lambda: set_header(plain("shot-v42.blend"), b"REND", length=0xFFFFFFFF),
    "length-with-top-bit-v42": lambda: set_header(plain("shot-v42.blend"), b"GLOB", length=0x80000000),
    "length-short-by-8": lambda: set_header(plain("shot-v50.blend"), b"OB\0\0", length=_first(
        plain("shot-v50.blend"), b"OB\0\0")[1].length - 8),
    "1kb-file-claims-4gb": lambda: set_header(plain("shot-v42.blend")[:1024], b"REND", length=1 << 32),
    "count-lies": lambda: set_header(plain("shot-v50.blend"), b"OB\0\0", count=1000),
    "count-huge": lambda: set_header(plain("shot-v42.blend"), b"OB\0\0", count=0x7FFFFFFF),
    "sdna-negative": lambda: set_header(plain("shot-v50.blend"), b"OB\0\0", sdna=-1),
    "sdna-huge": lambda: set_header(plain("shot-v42.blend"), b"OB\0\0", sdna=0x7FFFFFFF),
    "no-endb": lambda: plain("shot-v50.blend")[:-20],
    # Type confusion: an image block holding a struct that is no ID (found by the
    # fuzzer: its ``char *name`` read as a path made a terabyte of zeros), or another ID
    # whose ``char *name`` is a pointer where an image has its path.
    "id-block-holds-data": lambda: _id_holds("shot-v42.blend", b"IM\0\0", b"DATA"),
    "id-block-holds-a-text": lambda: _id_holds("shot-v42.blend", b"IM\0\0", b"TX\0\0"),
    # Millions of empty headers (a long run of zeros): refused at the first, not indexed.
    "zeros-after-the-header": lambda: plain("shot-v50.blend")[:17] + bytes(8 << 20),
    "zstd-of-zeros-after-the-header": lambda: m.zstd_seekable(plain("shot-v42.blend")[:12] + bytes(32 << 20)),
    # The DNA.
    "dna-non-ascii-name": lambda: change_dna(plain("shot-v50.blend"), _non_ascii_name),
    "dna-sizes-lie": lambda: change_dna(plain("shot-v42.blend"), _sizes_lie),
    "dna-huge-array": lambda: change_dna(plain("shot-v50.blend"), _huge_dims),
    "dna-dimension-beyond-int": lambda: change_dna(plain("shot-v42.blend"), _dims_beyond_int),
    "dna-struct-contains-itself": lambda: change_dna(plain("shot-v50.blend"), _contains_itself),
    "dna-structs-contain-each-other": lambda: change_dna(plain("shot-v42.blend"),
                                                         _two_structs_contain_each_other),
    "dna-field-missing": lambda: change_dna(plain("shot-v50.blend"), _missing_field),
    "dna-member-type-past-end": lambda: change_dna(plain("shot-v50.blend"), _member_index_past_end),
    "dna-id-name-not-chars": lambda: change_dna(plain("shot-v42.blend"), _id_name_not_chars),
    # Compressed streams.
    "zstd-truncated": lambda: (SEEDS / "shot-v50.blend").read_bytes()[:30000],
    "zstd-seek-table-claims-4gb": lambda: _zstd_seek_table_claims(plain("shot-v42.blend")),
    "zstd-frame-claims-1tb": lambda: _zstd_frame_claims(plain("shot-v50.blend")),
    "gzip-truncated": lambda: (SEEDS / "legacy279-doubly_linked.blend").read_bytes()[:20000],
    "gzip-garbage-after": lambda: (SEEDS / "legacy279-doubly_linked.blend").read_bytes() + b"\x1f\x8bjunk",
    "gzip-of-garbage": lambda: gzip.compress(os.urandom(4096)),
}


MAY_PASS = {"id-block-holds-a-text"}


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return harness.make_workdir(tmp_path_factory.mktemp("damage"))


@pytest.mark.parametrize("case", sorted(CASES))
def test_damaged_file_ends_in_bat_error(case: str, work: Path) -> None:
    data = CASES[case]()
    tracemalloc.start()
    started = time.monotonic()
    try:
        outcome = harness.run_input(data, work, timeout=30)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # A confused ID may still read as a harmless one; every other case is refused.
    assert outcome.status == "error" or (case in MAY_PASS and outcome.status == "ok"), outcome.message
    assert time.monotonic() - started < 20
    # Nothing near the sizes the damaged headers claim (GBs): a few copies of the file at most.
    assert peak < 64 * len(data) + (96 << 20), peak


@pytest.mark.parametrize("case", ["huge-length-v50", "1kb-file-claims-4gb", "dna-huge-array"])
@pytest.mark.parametrize("command", ["blocks", "list"])
def test_cli_reports_damage_in_one_line(case: str, command: str, tmp_path: Path, run_bat) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "damaged.blend"
    path.write_bytes(CASES[case]())
    res = run_bat(command, str(path))
    assert res.exit_code == 1
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"bat: error: {path}: "), res.stderr
    assert "Traceback" not in res.stderr and "OverflowError" not in res.stderr


def test_pointer_loops_end(work: Path) -> None:
    """Every pointer in the file aimed at its own block: lists, parents, trees all loop."""
    buf = plain("shot-v50.blend")
    lay = m.layout(buf)
    assert lay is not None
    heads = [h for h in m.blocks(buf, lay) if h.code != b"ENDB"]
    out = bytearray(buf)
    fmt = lay.endian + "Q"
    for site in m._pointer_sites(buf, lay, heads):
        holder = next(h for h in heads if h.data <= site < h.data + h.length)
        struct.pack_into(fmt, out, site, holder.old)
    outcome = harness.run_input(bytes(out), work, timeout=30)
    assert outcome.status in ("ok", "error"), outcome.message
    assert outcome.seconds < 20


def test_decompression_bomb_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A small stream of a long run of zeros stops at the limit instead of filling memory."""
    monkeypatch.setattr(compression, "MIN_LIMIT", 1 << 20)
    import zstandard

    cobj = zstandard.ZstdCompressor(level=1).compressobj()
    data = cobj.compress(plain("shot-v50.blend")[:64]) + b"".join(cobj.compress(bytes(1 << 20)) for _ in range(8))
    data += cobj.flush()
    (tmp_path / "bomb.blend").write_bytes(data)
    assert len(data) * compression.MAX_RATIO < 8 << 20
    with pytest.raises(BlendFileError, match="decompresses to more than"):
        open_blend(tmp_path / "bomb.blend")
    gz = gzip.compress(plain("shot-v50.blend")[:64] + bytes(8 << 20), 9)
    (tmp_path / "bomb-gz.blend").write_bytes(gz)
    with pytest.raises(BlendFileError, match="decompresses to more than"):
        open_blend(tmp_path / "bomb-gz.blend")


def test_zstd_without_seek_table_is_read_from_the_start(tmp_path: Path) -> None:
    """A plain zstd stream (no seek table, as ``zstd`` writes it) opens as well."""
    import zstandard

    data = plain("shot-v50.blend")
    (tmp_path / "z.blend").write_bytes(zstandard.ZstdCompressor().compress(data))
    with open_blend(tmp_path / "z.blend") as bf:
        assert bf.blocks_by_code(b"SC")


def test_fifo_and_directory_are_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.blend"
    os.mkfifo(fifo)
    errors: list[BaseException] = []

    def try_open() -> None:
        try:
            open_blend(fifo)
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=try_open, daemon=True)
    t.start()
    t.join(10)
    if t.is_alive():  # unblock the reader before failing
        with open(fifo, "wb"):
            pass
        pytest.fail("opening a FIFO blocked")
    assert isinstance(errors[0], BlendFileError) and "not a regular file" in str(errors[0])
    with pytest.raises(BlendFileError, match="directory"):
        open_blend(tmp_path)


def test_a_number_is_never_a_path() -> None:
    """``bytes(n)`` is n zero bytes: a pointer taken for a path must not become one."""
    from bat_core.bpathlib import BlendPath, NotAPathError

    with pytest.raises(NotAPathError):
        BlendPath(94486194637128)  # type: ignore[arg-type]
    assert isinstance(NotAPathError("x"), BatError) and BlendPath(b"//a") == b"//a"


def test_missing_field_error_is_both_kinds() -> None:
    with open_blend(SEEDS / "shot-v50.blend") as bf:
        ob = bf.blocks_by_code(b"OB")[0]
        with pytest.raises(MissingFieldError) as info:
            ob.get(b"no_such_field")
        assert isinstance(info.value, KeyError) and isinstance(info.value, BatError)
        assert str(info.value).startswith(str(bf.path)) and not str(info.value).startswith("'")
        assert ob.get(b"no_such_field", 7) == 7
        with pytest.raises(KeyError):
            bf.dna.struct("NoSuchStruct")


class _ChokingReader:
    """A reader that meets a value of the wrong kind, as readers do on a damaged DNA."""

    def read_scene(self, block: Block, ctx: TraceContext) -> Iterator[BlockUsage]:
        directory: Any = block.get((b"r", b"cfra"))  # an int where a reader expects bytes
        directory.endswith(b"/")
        yield from ()

    @bat_core.hookimpl
    def register_block_readers(self, register: Any) -> None:
        register(b"SC", self.read_scene)


def test_a_reader_failing_on_a_block_is_reported_as_damage(tmp_path: Path, run_bat) -> None:  # type: ignore[no-untyped-def]
    """A fuzz finding: a DNA giving ``StripData.dir`` a struct type made the sequencer
    reader fail on a list; any built-in reader failing that way names the block and itself.
    (A third-party plugin's reader failing is that plugin's failure: reported and skipped.)"""
    from bat_core.blendfile import open_blend
    from bat_core.trace.guard import guarded

    blend = SEEDS / "shot-v50.blend"
    with open_blend(blend) as bf:
        scene = bf.blocks_by_code(b"SC")[0]

        class Ctx:
            blendfile = bf

        with pytest.raises(BlendFileError, match=r"block b'SCScene' does not read as Blender writes it "
                                                 r"\(_ChokingReader.read_scene: AttributeError") as info:
            list(guarded(_ChokingReader().read_scene, scene, Ctx()))
    assert isinstance(info.value.__cause__, AttributeError)  # kept for -d
    plugins.register(_ChokingReader(), name="choking-reader")
    try:
        res = run_bat("list", str(blend))
    finally:
        plugins.unregister(name="choking-reader")
    assert res.exit_code in (0, 3) and "choking-reader" in res.stderr and "skipped" in res.stderr
