"""Whole-file compression of blend files: detection by magic bytes, loading, saving.

Blender 3.0+ compresses with zstd in the seekable format (frames plus a seek
table); older versions used gzip.  A compressed file is decompressed once,
streaming, into an unlinked temporary file that is then mapped like a plain
blend file (small ones, and any the temporary directory cannot take, into
memory); saving writes the same kind of compression back so a receiver sees
the file as the artist saved it.
"""

from __future__ import annotations

import enum
import gzip
import logging
import mmap
import os
import struct
import tempfile
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import zstandard

log = logging.getLogger(__name__)

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
GZIP_MAGIC = b"\x1f\x8b"

_SKIPPABLE_SEEK_TABLE_MAGIC = 0x184D2A5E
_SEEKABLE_MAGIC = 0x8F92EAB1
# Blender writes frames of this many uncompressed bytes, so readers can seek.
_FRAME_SIZE = 1 << 20
_CHUNK = 1 << 20
#: Pieces written to the temporary file.  Linux gives a file written in big pieces
#: big page-cache folios and maps a whole folio into the process on a fault; in
#: 64 KiB pieces a fault maps no more than its usual fault-around (64 KiB).
_TEMP_CHUNK = 64 << 10


class Compression(enum.Enum):
    NONE = "none"
    GZIP = "gzip"
    ZSTD = "zstd"


def detect(magic: bytes) -> Compression:
    if magic.startswith(ZSTD_MAGIC):
        return Compression.ZSTD
    if magic.startswith(GZIP_MAGIC):
        return Compression.GZIP
    return Compression.NONE


def _zstd_content_size(fh: BinaryIO, file_size: int) -> int | None:
    """Total decompressed size from a seekable-format seek table, if the file has one.

    Leaves ``fh`` at the start of the file whatever it finds.
    """
    try:
        if file_size < 9:
            return None
        fh.seek(file_size - 9)
        footer = fh.read(9)
        nframes, descriptor, magic = struct.unpack("<IBI", footer)
        if magic != _SEEKABLE_MAGIC:
            return None
        entry = 12 if descriptor & 0x80 else 8
        table_size = nframes * entry
        if table_size + 9 + 8 > file_size:
            return None
        fh.seek(file_size - 9 - table_size)
        table = fh.read(table_size)
        total: int = sum(struct.unpack_from("<I", table, i * entry + 4)[0] for i in range(nframes))
        return total
    finally:
        fh.seek(0)


class TooLarge(ValueError):
    """A compressed file decompresses (or claims to) to more than a blend file can be."""


#: How much a compressed blend file may expand: real ones shrink 2-10 times with
#: zstd or gzip, so 256 times is far beyond any, yet it stops a small
#: crafted stream (a "decompression bomb") from filling the memory.  Small
#: files get a floor, so that a legitimately tiny file is never refused.
MAX_RATIO = 256
MIN_LIMIT = 64 << 20
#: zstd's own default bound on the window a frame may ask the decoder for.
_MAX_WINDOW = 1 << 27


def decompressed_limit(compressed_size: int) -> int:
    """The most bytes a compressed file of this size is allowed to decompress to."""
    return max(MIN_LIMIT, compressed_size * MAX_RATIO)


#: Decompressed data of up to this many bytes (by the zstd seek table) is kept in
#: memory; bigger or unknown sizes go to a temporary file.
IN_MEMORY_MAX = 8 << 20


class _NoTempFile(Exception):
    """The temporary directory could not take the decompressed data."""


def _reader(fh: BinaryIO, kind: Compression) -> Any:
    """A decompressing reader over ``fh`` that leaves ``fh`` open when closed."""
    if kind is Compression.ZSTD:
        dctx = zstandard.ZstdDecompressor(max_window_size=_MAX_WINDOW)
        return dctx.stream_reader(fh, read_across_frames=True, closefd=False)
    return gzip.GzipFile(fileobj=fh, mode="rb")


def _too_large(limit: int, file_size: int) -> TooLarge:
    return TooLarge(f"it decompresses to more than {limit} bytes, far beyond what a "
                    f"{file_size}-byte compressed blend file holds")


def load(fh: BinaryIO, kind: Compression, file_size: int) -> bytearray | mmap.mmap:
    """Return the file's uncompressed bytes as a writable buffer.

    Uncompressed files are mapped copy-on-write: reads cost nothing up front and
    writes land in private memory, never in the source file.  Compressed files are
    decompressed streaming into an unlinked temporary file (``tempfile``: mode
    0600, in ``$TMPDIR`` or the system's temporary directory), which is then mapped
    the same way: the decompressed data lives in the page cache, which the kernel
    can write to disk and reclaim, and the process holds only the pages it reads
    (the block index drops the pages behind its scan).  A file whose seek table
    says it is small, or one the temporary directory cannot take (full,
    read-only), is decompressed into memory instead.  Either way the compressed
    and uncompressed data are never both held, and decompression stops at
    :func:`decompressed_limit`; a seek table claiming more is refused up front.
    """
    if kind is Compression.NONE:
        return mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_COPY)
    limit = decompressed_limit(file_size)
    expected: int | None = None
    if kind is Compression.ZSTD:
        expected = _zstd_content_size(fh, file_size)
        if expected is not None and expected > limit:
            raise TooLarge(f"its zstd seek table claims {expected} bytes uncompressed, more than a "
                           f"{file_size}-byte compressed blend file can hold")
    if expected is None or expected > IN_MEMORY_MAX:
        try:
            with _reader(fh, kind) as reader:
                return _to_temp_file(reader, limit, file_size)
        except _NoTempFile as exc:
            log.debug("decompressing into memory: no temporary file (%s)", exc.__cause__)
            fh.seek(0)
    with _reader(fh, kind) as reader:
        return _to_memory(reader, expected, limit, file_size)


def _to_temp_file(reader: Any, limit: int, file_size: int) -> bytearray | mmap.mmap:
    """Decompress into an unlinked temporary file and map it copy-on-write.

    The map keeps the file alive; closing it (``BlendFile.close``) frees the disk
    space.  Raises :class:`_NoTempFile` when the file cannot be made, written or
    mapped, so that the caller can start again in memory.
    """
    try:
        tmp = tempfile.TemporaryFile(prefix="bat-", suffix=".blend")  # noqa: SIM115 (entered below, its errors told apart)
    except OSError as exc:
        raise _NoTempFile(exc) from exc
    with tmp:
        got = 0
        while chunk := reader.read(_TEMP_CHUNK):
            got += len(chunk)
            if got > limit:
                raise _too_large(limit, file_size)
            try:
                tmp.write(chunk)
            except OSError as exc:
                raise _NoTempFile(exc) from exc
        if not got:
            return bytearray()
        try:
            tmp.flush()
            return mmap.mmap(tmp.fileno(), 0, access=mmap.ACCESS_COPY)
        except OSError as exc:
            raise _NoTempFile(exc) from exc


def _to_memory(reader: Any, expected: int | None, limit: int, file_size: int) -> bytearray:
    """Decompress into one buffer, pre-sized from the seek table when there is one."""
    buf = bytearray(expected or 0)
    got = 0
    if expected:
        with memoryview(buf) as view:
            while got < expected:
                n = reader.readinto(view[got:])
                if not n:
                    break
                got += n
        if got != expected:
            del buf[got:]
    while chunk := reader.read(_CHUNK):
        buf += chunk
        if len(buf) > limit:
            raise _too_large(limit, file_size)
    return buf


def write(path: Path, chunks: Iterable[memoryview | bytes], kind: Compression, level: int = 3) -> None:
    """Write the concatenation of ``chunks`` to ``path``, compressed as ``kind``.

    The pieces are written as they come (zstd in Blender's seekable format, one
    frame per megabyte), so a saved copy is never assembled in memory.
    """
    with open(path, "wb") as out:
        if kind is Compression.NONE:
            for chunk in chunks:
                out.write(chunk)
        elif kind is Compression.GZIP:
            with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=6, mtime=0) as gz:
                for chunk in chunks:
                    gz.write(chunk)
        else:
            _write_zstd_seekable(out, chunks, level)
        out.flush()
        os.fsync(out.fileno())


def _frames(chunks: Iterable[memoryview | bytes], size: int) -> Iterator[memoryview | bytes]:
    """Re-cut a stream of pieces into consecutive pieces of ``size`` bytes (the last
    may be shorter).  A frame within one piece is a view of it; only frames that
    straddle pieces are joined."""
    pending: list[memoryview | bytes] = []
    pending_len = 0
    for chunk in chunks:
        view = memoryview(chunk)
        pos = 0
        while pos < len(view):
            take = min(size - pending_len, len(view) - pos)
            piece = view[pos : pos + take]
            pos += take
            if not pending and take == size:
                yield piece
                continue
            pending.append(piece)
            pending_len += take
            if pending_len == size:
                yield b"".join(pending)
                pending, pending_len = [], 0
    if pending:
        yield b"".join(pending)


def _write_zstd_seekable(out: BinaryIO, chunks: Iterable[memoryview | bytes], level: int) -> None:
    cctx = zstandard.ZstdCompressor(level=level, write_content_size=True)
    entries: list[tuple[int, int]] = []
    for chunk in _frames(chunks, _FRAME_SIZE):
        frame = cctx.compress(chunk)
        out.write(frame)
        entries.append((len(frame), len(chunk)))
    table = b"".join(struct.pack("<II", c, d) for c, d in entries)
    footer = struct.pack("<IBI", len(entries), 0, _SEEKABLE_MAGIC)
    body = table + footer
    out.write(struct.pack("<II", _SKIPPABLE_SEEK_TABLE_MAGIC, len(body)))
    out.write(body)


def decompression_errors() -> tuple[type[BaseException], ...]:
    """Exceptions a corrupt compressed stream raises while it is read."""
    return (zstandard.ZstdError, OSError, EOFError, zlib.error)
