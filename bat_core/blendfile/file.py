"""Open a blend file, index its blocks from their headers, save a modified copy."""

from __future__ import annotations

import gc
import logging
import mmap
import os
from pathlib import Path
from types import TracebackType
from typing import Any

from ..errors import BlendFileError, UnknownPointerError
from . import compression
from .block import Block, StructView
from .compression import Compression
from .dna import DNA, Struct
from .header import BlendHeader, parse_header

log = logging.getLogger(__name__)


#: Parsed DNAs by (DNA block bytes, endianness, pointer size).  Files saved by the same
#: Blender version carry byte-identical DNA, so a shot and its libraries share one
#: parsed DNA: its struct layouts and compiled field readers are worked out once.
_DNA_CACHE: dict[tuple[bytes, str, int], DNA] = {}
_DNA_CACHE_SIZE = 16


def _shared_dna(data: bytes, endian: str, pointer_size: int, source: str) -> DNA:
    """The parsed DNA for these bytes, parsed (and validated) only the first time."""
    key = (data, endian, pointer_size)
    dna = _DNA_CACHE.get(key)
    if dna is None:
        dna = DNA(data, endian, pointer_size, source)
        if len(_DNA_CACHE) >= _DNA_CACHE_SIZE:
            _DNA_CACHE.pop(next(iter(_DNA_CACHE)), None)
        _DNA_CACHE[key] = dna
    return dna


class BlendFile:
    """A blend file opened read-only, with an index of its blocks.

    The block index is built from block headers alone; block data is read only
    when a field is asked for.  Changes made with ``set`` go to a private copy
    in memory and reach disk only through :meth:`save` to another path.
    """

    def __init__(self, path: os.PathLike[str] | str, *, strict_pointers: bool = False) -> None:
        self.path = Path(path)
        self.strict_pointers = strict_pointers
        self.modified = False
        self._warned: set[int] = set()
        self._by_code: dict[bytes, list[Block]] | None = None
        self.buf: Any = None
        try:
            fh = open(self.path, "rb")  # noqa: SIM115 - kept open for the mapping's life
        except OSError as exc:
            raise BlendFileError(path, exc.strerror or str(exc)) from None
        try:
            self._load(fh)
        except BlendFileError:
            self.close()
            raise
        except compression.decompression_errors() as exc:
            self.close()
            raise BlendFileError(path, f"cannot decompress: {exc}") from None
        except ValueError as exc:
            self.close()
            raise BlendFileError(path, str(exc)) from None
        finally:
            fh.close()

    def _load(self, fh: Any) -> None:
        size = os.fstat(fh.fileno()).st_size
        if size == 0:
            raise BlendFileError(self.path, "empty file, not a blend file")
        magic = fh.read(4)
        fh.seek(0)
        self.compression = compression.detect(magic)
        if self.compression is Compression.NONE and not magic.startswith(b"BLEN"):
            raise BlendFileError(self.path, "not a blend file (no BLENDER header)")
        self.buf = compression.load(fh, self.compression, size)
        self.header: BlendHeader = parse_header(bytes(self.buf[:17]))
        self._index_blocks()
        # The last DNA1 block counts; Blender writes it at the end of the file.
        dna_block = next((b for b in reversed(self.blocks) if b.code == b"DNA1"), None)
        if dna_block is None:
            raise BlendFileError(self.path, "no DNA1 block: corrupt or truncated blend file")
        self.dna = _shared_dna(
            bytes(self.buf[dna_block.offset : dna_block.offset + dna_block.size]),
            self.header.endian,
            self.header.pointer_size,
            str(self.path),
        )

    def _index_blocks(self) -> None:
        buf = self.buf
        end = len(buf)
        layout = self.header.block_header_struct
        unpack = layout.unpack_from
        hsize = layout.size
        last = end - hsize  # the last position a block header can start at
        large = self.header.format_version == 1
        pos = self.header.size
        blocks: list[Block] = []
        append = blocks.append
        by_addr: dict[int, Block] = {}
        codes: dict[bytes, bytes] = {}
        # A big file has hundreds of thousands of blocks: with the cyclic garbage
        # collector running, it would scan the growing index again and again.
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            while True:
                if pos > last:
                    raise BlendFileError(self.path, f"truncated: file ends at byte {end} inside a block header")
                if large:
                    raw_code, sdna, old, length, count = unpack(buf, pos)
                else:
                    raw_code, length, old, sdna, count = unpack(buf, pos)
                code = codes.get(raw_code)
                if code is None:
                    code = codes[raw_code] = raw_code.rstrip(b"\0")
                    if code == b"ENDB":
                        break
                data = pos + hsize
                if length < 0 or data + length > end:
                    raise BlendFileError(
                        self.path,
                        f"truncated or corrupt: block {code!r} at byte {pos} claims {length} bytes, "
                        f"past the end of the file ({end} bytes)",
                    )
                pos = data + length
                by_addr[old] = blk = Block(self, code, sdna, old, length, count, data)
                append(blk)
        finally:
            if gc_was_enabled:
                gc.enable()
        self.blocks = blocks
        self.block_by_addr = by_addr

    # --- look-ups ------------------------------------------------------------------

    def struct_for_block(self, block: Block) -> Struct:
        structs = self.dna.structs
        if not 0 <= block.sdna_index < len(structs):
            raise BlendFileError(
                self.path, f"block {block.code!r} refers to DNA struct {block.sdna_index}, "
                f"but the DNA has {len(structs)}"
            )
        st = structs[block.sdna_index]
        if block.sdna_index and st.size > block.size:
            raise BlendFileError(
                self.path, f"block {block.code!r} holds {block.size} bytes, too few for a "
                f"{st.name.decode()} ({st.size} bytes)"
            )
        return st

    def struct_at(self, struct_: Struct, offset: int) -> StructView:
        """A view of a nested struct (what reading a struct-typed field returns)."""
        return StructView(self, struct_, offset)

    def blocks_by_code(self, code: bytes) -> list[Block]:
        """Every block with this code (``b'OB'``, ``b'IM'``...), in file order."""
        if self._by_code is None:
            by_code: dict[bytes, list[Block]] = {}
            for blk in self.blocks:
                lst = by_code.get(blk.code)
                if lst is None:
                    by_code[blk.code] = [blk]
                else:
                    lst.append(blk)
            self._by_code = by_code
        return self._by_code.get(code, [])

    @property
    def codes(self) -> set[bytes]:
        self.blocks_by_code(b"")
        assert self._by_code is not None
        return set(self._by_code)

    def dereference(self, addr: int) -> Block | None:
        """The block at an old memory address; None (with a warning) when there is none.

        In strict mode (``-S``) an unknown address is an error instead, as in BAT 1.x.
        """
        blk = self.block_by_addr.get(addr)
        if blk is None and addr:
            if self.strict_pointers:
                raise UnknownPointerError(self.path, f"pointer to unknown address 0x{addr:x}")
            if addr not in self._warned:
                self._warned.add(addr)
                log.warning("%s: pointer to unknown address 0x%x ignored", self.path, addr)
        return blk

    def find_id(self, code: bytes, name: bytes) -> Block | None:
        """The ID block with this code and name (without the two-letter prefix)."""
        full = code[:2] + name
        for blk in self.blocks_by_code(code):
            if blk.id_name == full:
                return blk
        return None

    @property
    def version(self) -> int:
        return self.header.version

    # --- saving --------------------------------------------------------------------

    def save(self, path: os.PathLike[str] | str, compress: Compression | None = None) -> None:
        """Write the (possibly modified) file to ``path``, compressed like the source.

        Refuses to overwrite the source: a blend file ``bat`` reads is never changed.
        """
        dest = Path(path)
        if dest.exists() and os.path.samefile(dest, self.path):
            raise BlendFileError(dest, "refusing to overwrite the source blend file")
        kind = self.compression if compress is None else compress
        compression.write(dest, memoryview(self.buf), kind)

    # --- life cycle ----------------------------------------------------------------

    def close(self) -> None:
        buf, self.buf = self.buf, None
        if isinstance(buf, mmap.mmap):
            buf.close()
        self.blocks = []
        self.block_by_addr = {}
        self._by_code = None

    def __enter__(self) -> BlendFile:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<BlendFile {self.path} v{self.header.version} {self.compression.value}>"


def open_blend(path: os.PathLike[str] | str, *, strict_pointers: bool = False) -> BlendFile:
    """Open a blend file read-only (compressed or not) and index its blocks."""
    return BlendFile(path, strict_pointers=strict_pointers)
