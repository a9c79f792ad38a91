"""Open a blend file, index its blocks from their headers, save a modified copy."""

from __future__ import annotations

import logging
import mmap
import os
import stat
import struct
from array import array
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, NoReturn

from ..errors import BlendFileError, UnknownPointerError
from . import compression, index_memo
from .block import Block, StructView
from .compression import Compression
from .dna import DNA, Struct
from .header import BlendHeader, parse_header
from .memo import Memo

log = logging.getLogger(__name__)

#: Short block codes that are not ID types.
NON_ID_CODES = frozenset({b"ID", b"DATA", b"REND", b"GLOB", b"TEST", b"USER", b"DNA1", b"ENDB"})

#: Raw 4-byte codes to their NUL-stripped form, shared by every file.
_CODES: dict[bytes, bytes] = {}


#: Parsed DNAs by (DNA block bytes, endianness, pointer size).  Files saved by the same
#: Blender version carry byte-identical DNA, so a shot and its libraries share one
#: parsed DNA: its struct layouts and compiled field readers are worked out once.
_DNA_CACHE: dict[tuple[bytes, str, int], DNA] = {}
_DNA_CACHE_SIZE = 16

#: Bytes of file per bucket of the address index.  Blender's blocks average a few
#: hundred bytes, so a bucket holds one or two blocks and the table costs about
#: one byte per block; a file of much smaller blocks gets its table rebuilt bigger.
_BYTES_PER_BUCKET = 512
#: Rebuild the bucket table when more blocks than this share a bucket on average.
_MAX_LOAD = 4


#: The header scan gives back the pages of a mapped file behind it every this many
#: bytes (see :meth:`BlendFile._index_blocks`).
_RELEASE_EVERY = 8 << 20
#: A mapped file's pages are given back every this many block look-ups (see
#: :meth:`BlendFile.will_write`): what a trace reads in between is all it holds.
_TRIM_EVERY = 1024
#: ``madvise`` where the platform has it (not on Windows).
_DONTNEED: int | None = getattr(mmap, "MADV_DONTNEED", None) if hasattr(mmap.mmap, "madvise") else None


def _zeros(n: int) -> array[int]:
    """``n`` unsigned 32-bit zeros, without building a list."""
    return array("I", bytes(4 * n)) if array("I").itemsize == 4 else array("I", [0]) * n


def _bucket_chains(addrs: array[int], buckets: int) -> tuple[array[int], array[int]]:
    """Heads and links of the index's bucket chains, built from the addresses alone
    (the scan builds them as it goes; this is for a table that turned out too small)."""
    heads = _zeros(buckets)
    links = _zeros(len(addrs))
    for i, addr in enumerate(addrs):
        b = addr % buckets
        links[i] = heads[b]
        heads[b] = i + 1
    return heads, links


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


def _open_regular(path: Path) -> Any:
    """Open a regular file for reading; a FIFO, device or directory is refused
    without blocking (opening a FIFO waits for a writer; reading a device may
    never end)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise BlendFileError(path, exc.strerror or str(exc)) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = "a directory" if stat.S_ISDIR(mode) else "not a regular file"
            raise BlendFileError(path, f"{kind}, not a blend file")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


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
        self._all: list[Block] | None = None
        self._special_made: list[Block] | None = None
        self._made: dict[int, Block] = {}
        self._end_pos = 0
        self._special: list[int] = []
        # The address index: block i (file order) starts at _pos[i] and has the old
        # address _addrs[i]; the blocks whose address falls in bucket b
        # (address % _buckets) are chained, last first, from _heads[b] through
        # _links, as 1-based block numbers (0 ends a chain).  About 21 bytes a
        # block, where a dict of int objects costs over 100.
        self._addrs: array[int] = array("Q")
        self._pos: array[int] = array("Q")
        self._links: array[int] = array("I")
        self._heads: array[int] = _zeros(1)
        self._buckets = 1
        #: Look-ups left before the mapped buffer's pages are given back; -1 (never)
        #: for a buffer in memory and once anything was written into the buffer.
        self._countdown = -1
        self._written = False
        #: New data for blocks that were given more (or fewer) bytes than they had, by
        #: header position; applied by :meth:`save`, never to the source buffer.
        self._replaced: dict[int, bytes] = {}
        self.buf: Any = None
        #: What earlier runs learnt from these bytes (``memo.py``); None when memos are off.
        self.memo: Memo | None = None
        self._on_close: list[Callable[[], None]] = []
        fh = _open_regular(self.path)
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
        st = os.fstat(fh.fileno())
        size = st.st_size
        if size == 0:
            raise BlendFileError(self.path, "empty file, not a blend file")
        magic = fh.read(4)
        fh.seek(0)
        self.compression = compression.detect(magic)
        if self.compression is Compression.NONE and not magic.startswith(b"BLEN"):
            raise BlendFileError(self.path, "not a blend file (no BLENDER header)")
        if self.compression is Compression.NONE:
            try:
                self.buf = compression.load(fh, self.compression, size)
            except OSError as exc:  # not "cannot decompress": a plain file that cannot be mapped
                raise BlendFileError(self.path, f"cannot read: {exc.strerror or exc}") from None
        else:
            self.buf = compression.load(fh, self.compression, size)
        self.header: BlendHeader = parse_header(bytes(self.buf[:17]))
        self._unpack_header = self.header.block_header_struct.unpack_from
        self._header_size = self.header.block_header_struct.size
        self.memo = Memo.for_file(self.path, st)
        remembered = self._index_from_memo()
        if not remembered:
            self._index_blocks()
        # The last DNA1 block counts; Blender writes it at the end of the file.
        dna_pos = next((pos for pos in reversed(self._special) if self.buf[pos : pos + 4] == b"DNA1"), None)
        dna_block = self._block(dna_pos) if dna_pos is not None else None
        if dna_block is None:
            raise BlendFileError(self.path, "no DNA1 block: corrupt or truncated blend file")
        self.dna = _shared_dna(
            bytes(self.buf[dna_block.offset : dna_block.offset + dna_block.size]),
            self.header.endian,
            self.header.pointer_size,
            str(self.path),
        )
        if not remembered and self.memo is not None:
            data = index_memo.encode(index_memo.Index(self._addrs, self._pos, self._links, self._heads,
                                                      self._buckets, self._end_pos, self._special))
            if data is not None:
                self.memo.put(index_memo.SECTION, index_memo.version(), data)

    def _index_from_memo(self) -> bool:
        """Load the block index an earlier run kept for these bytes (``index_memo.py``)."""
        data = self.memo.get(index_memo.SECTION, index_memo.version()) if self.memo is not None else None
        if data is None:
            return False
        index = index_memo.decode(data, self.buf, self.header)
        del data
        if index is None:
            log.debug("%s: the remembered block index does not fit the file; scanning it", self.path)
            return False
        self._addrs, self._pos, self._links, self._heads = index.addrs, index.pos, index.links, index.heads
        self._buckets, self._end_pos, self._special = index.buckets, index.end_pos, index.special
        mapped = _DONTNEED is not None and isinstance(self.buf, mmap.mmap)
        self._countdown = _TRIM_EVERY if mapped and not self._written else -1
        return True

    def _index_blocks(self) -> None:
        """Scan the block headers: where each block starts, and where each address lives.

        This is the one pass over the whole file, so it does the least it can per
        header: no object per block, only numbers appended to arrays (see
        ``__init__``).  :class:`Block` objects are made on demand, and most blocks
        (``DATA``) are never asked for during a trace.  Blender may write several
        blocks at one address (arrays it saved from the same stack buffer); a look-up
        finds the last of them, as a dict filled in file order would.
        """
        buf = self.buf
        hsize = self._header_size
        unpack = self.header.scan_struct.unpack_from
        pos = self.header.size
        special: list[int] = []  # every block that is not DATA: IDs, placeholders, DNA1...
        add_special = special.append
        addrs = array("Q")
        add_addr = addrs.append
        positions = array("I" if len(buf) < 1 << 32 and array("I").itemsize == 4 else "Q")
        add_pos = positions.append
        links = array("I")
        add_link = links.append
        buckets = (len(buf) // _BYTES_PER_BUCKET) | 1  # odd: aligned addresses spread over all
        heads = _zeros(buckets)
        n = 0
        mapped = _DONTNEED is not None and isinstance(buf, mmap.mmap)
        release_at = _RELEASE_EVERY if mapped else 1 << 64
        released = 0
        data_code, end_code = b"DATA", b"ENDB"
        large = self.header.format_version == 1
        code = b""
        length = 0
        last = -1
        try:
            if large:
                while True:
                    code, old, length = unpack(buf, pos)
                    if code != data_code:
                        if code == end_code:
                            break
                        if not code[0]:
                            self._no_code(pos)
                        add_special(pos)
                    add_addr(old)
                    add_pos(pos)
                    b = old % buckets
                    add_link(heads[b])
                    n += 1
                    heads[b] = n
                    last = pos
                    pos += hsize + length
                    if pos > release_at:
                        released = self._release(released, pos)
                        release_at = released + _RELEASE_EVERY
            else:
                while True:
                    code, length, old = unpack(buf, pos)
                    if code != data_code:
                        if code == end_code:
                            break
                        if not code[0]:
                            self._no_code(pos)
                        add_special(pos)
                    add_addr(old)
                    add_pos(pos)
                    b = old % buckets
                    add_link(heads[b])
                    n += 1
                    heads[b] = n
                    last = pos
                    pos += hsize + length
                    if pos > release_at:
                        released = self._release(released, pos)
                        release_at = released + _RELEASE_EVERY
        except (struct.error, OverflowError):  # past the end (or past what an index can hold)
            self._scan_failed(last, code, length)
        finally:
            if mapped:
                self._release(released, len(buf))
        if pos + hsize > len(buf):
            raise BlendFileError(self.path, f"truncated: file ends at byte {len(buf)} inside a block header")
        if n > _MAX_LOAD * buckets:
            buckets = n | 1
            heads, links = _bucket_chains(addrs, buckets)
        self._end_pos = pos  # the ENDB block
        self._countdown = _TRIM_EVERY if mapped and not self._written else -1
        self._special = special
        self._addrs, self._pos, self._links, self._heads, self._buckets = addrs, positions, links, heads, buckets

    def _release(self, start: int, end: int) -> int:
        """Drop this process's pages of the mapped buffer from ``start`` (a page
        boundary) to ``end`` rounded down to one; return where that stopped."""
        end = min(end, len(self.buf))  # a crafted block length may point far past the end
        end -= end % mmap.PAGESIZE
        if end <= start or _DONTNEED is None or not isinstance(self.buf, mmap.mmap):
            return start
        try:
            self.buf.madvise(_DONTNEED, start, end - start)
        except (OSError, ValueError) as exc:  # advice only: a kernel may refuse it
            log.debug("%s: madvise: %s", self.path, exc)
        return end

    def _trim(self) -> None:
        """Give back every page of the mapped buffer (the trace faults back in
        the ones it reads next); only while nothing has been written into it."""
        if self._written or self.buf is None:
            self._countdown = -1
            return
        self._countdown = _TRIM_EVERY
        self._release(0, len(self.buf))

    def will_write(self) -> None:
        """Say that the buffer is about to be written to (``set``): from now on its
        pages are never given back, for ``MADV_DONTNEED`` would drop the private
        copy of a written page and the change with it."""
        self._written = True
        self._countdown = -1

    def _no_code(self, pos: int) -> NoReturn:
        """Every block Blender writes has a code (``DATA``, ``OB``...); a header of zeros
        is damage, often a run of them: stop at the first rather than index millions."""
        raise BlendFileError(self.path, f"corrupt: the block header at byte {pos} has no block code")

    def _scan_failed(self, last: int, code: bytes, length: int) -> None:
        """Say why a header could not be read: the file ends, or a block claims too much."""
        end = len(self.buf)
        if last >= 0:
            data = last + self._header_size
            if data + length > end:
                raise BlendFileError(
                    self.path,
                    f"truncated or corrupt: block {code.rstrip(bytes(1))!r} at byte {last} claims "
                    f"{length} bytes, past the end of the file ({end} bytes)",
                )
        raise BlendFileError(self.path, f"truncated: file ends at byte {end} inside a block header")

    # --- blocks ----------------------------------------------------------------------

    def _block(self, pos: int) -> Block:
        """The block whose header starts at ``pos`` (one object per block, made once)."""
        blk = self._made.get(pos)
        if blk is None:
            if self.header.format_version == 1:
                raw_code, sdna, old, length, count = self._unpack_header(self.buf, pos)
            else:
                raw_code, length, old, sdna, count = self._unpack_header(self.buf, pos)
            if self._replaced:
                replaced = self._replaced.get(pos)
                if replaced is not None:
                    length = len(replaced)
            code = _CODES.get(raw_code)
            if code is None:
                code = raw_code.rstrip(b"\0")
                if len(_CODES) < 4096:  # a corrupt file may hold any number of odd codes
                    _CODES[raw_code] = code
            blk = self._made[pos] = Block(self, code, sdna, old, length, count, pos + self._header_size)
        return blk

    def _special_blocks(self) -> list[Block]:
        if self._special_made is None:
            made: list[Block] = []
            add = made.append
            make = self._block
            for pos in self._special:  # spread over the whole file: count them as look-ups
                add(make(pos))
                self._countdown -= 1
                if not self._countdown:
                    self._trim()
            self._special_made = made
        return self._special_made

    @property
    def blocks(self) -> list[Block]:
        """Every block in file order (made on first use: a trace never needs them all)."""
        if self._all is None:
            make = self._block
            self._all = [make(pos) for pos in self._pos]
        return self._all

    @property
    def block_count(self) -> int:
        """How many blocks the file has, ENDB excluded."""
        return len(self._pos)

    def id_blocks(self) -> list[Block]:
        """The file's own ID blocks (two-letter codes), in file order; not placeholders."""
        return [b for b in self._special_blocks() if len(b.code) == 2 and b.code not in NON_ID_CODES]

    def _position(self, addr: int) -> int | None:
        """Where the header of the block at ``addr`` starts: the last block in the
        address's bucket chain that has it.  Each look-up counts towards giving the
        mapped pages back (see :meth:`_trim`)."""
        self._countdown -= 1
        if not self._countdown:
            self._trim()
        i = self._heads[addr % self._buckets]
        addrs = self._addrs
        while i:
            i -= 1
            if addrs[i] == addr:
                return int(self._pos[i])
            i = self._links[i]
        return None

    def block_at_addr(self, addr: int) -> Block | None:
        """The block at an old memory address, or None; quiet (see :meth:`dereference`)."""
        pos = self._position(addr)
        if pos is None:
            return None
        blk = self._made.get(pos)
        return blk if blk is not None else self._block(pos)

    def peek_addr(self, addr: int) -> tuple[bytes, int, int, int, int] | None:
        """(code, sdna index, data offset, size, count) of the block at ``addr``, or None.

        For walkers that visit many blocks and keep few (the expander, the node
        walker): no :class:`Block` object is made.  The sdna index is not checked,
        and a block given new contents (:meth:`replace_block_data`) is described as
        the source file has it.
        """
        pos = self._position(addr)
        if pos is None:
            return None
        if self.header.format_version == 1:
            raw_code, sdna, _, length, count = self._unpack_header(self.buf, pos)
        else:
            raw_code, length, _, sdna, count = self._unpack_header(self.buf, pos)
        code = _CODES.get(raw_code)
        if code is None:
            code = raw_code.rstrip(b"\0")
        return code, sdna, pos + self._header_size, length, count

    # --- look-ups ------------------------------------------------------------------

    def struct_for_block(self, block: Block) -> Struct:
        structs = self.dna.structs
        if not 0 <= block.sdna_index < len(structs):
            raise BlendFileError(
                self.path, f"block {block.code!r} refers to DNA struct {block.sdna_index}, "
                f"but the DNA has {len(structs)}"
            )
        st = structs[block.sdna_index]
        if len(block.code) == 2 and block.code not in NON_ID_CODES and not st.is_id:
            # An ID block (``IM``, ``OB``...) always holds an ID struct; anything else
            # would have readers take, say, a pointer for the image's file path.
            raise BlendFileError(
                self.path, f"block {block.code.decode('ascii', 'replace')!r} is an ID block but holds a "
                f"{st.name.decode()}, which is not an ID"
            )
        if block.sdna_index and st.size * max(block.count, 1) > block.size:
            raise BlendFileError(
                self.path, f"block {block.code!r} holds {block.size} bytes, too few for "
                f"{max(block.count, 1)} {st.name.decode()} ({st.size} bytes each)"
            )
        return st

    def struct_at(self, struct_: Struct, offset: int) -> StructView:
        """A view of a nested struct (what reading a struct-typed field returns)."""
        return StructView(self, struct_, offset)

    def blocks_by_code(self, code: bytes) -> list[Block]:
        """Every block with this code (``b'OB'``, ``b'IM'``...), in file order."""
        if self._by_code is None:
            by_code: dict[bytes, list[Block]] = {}
            for blk in self._special_blocks():
                lst = by_code.get(blk.code)
                if lst is None:
                    by_code[blk.code] = [blk]
                else:
                    lst.append(blk)
            self._by_code = by_code
        if code == b"DATA":
            return [b for b in self.blocks if b.code == b"DATA"]
        return self._by_code.get(code, [])

    @property
    def codes(self) -> set[bytes]:
        self.blocks_by_code(b"")
        assert self._by_code is not None
        codes = set(self._by_code)
        if len(self._special) < self.block_count:
            codes.add(b"DATA")
        return codes

    def dereference(self, addr: int) -> Block | None:
        """The block at an old memory address; None (with a warning) when there is none.

        In strict mode (``-S``) an unknown address is an error instead, as in BAT 1.x.
        """
        blk = self.block_at_addr(addr)
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

    @property
    def max_block_size(self) -> int:
        """The most bytes one block can hold: its header stores the length as a signed
        32-bit integer (12-byte file header) or a signed 64-bit one (17-byte header)."""
        return (1 << 63) - 1 if self.header.format_version == 1 else (1 << 31) - 1

    def replace_block_data(self, block: Block, data: bytes) -> None:
        """Give a raw data block new contents of any length, in the private copy.

        ``char *`` strings (a text's file path, a bake directory) live in a data
        block of their own, sized to the string they held; a longer string needs a
        bigger block.  The new bytes are kept beside the file's buffer (the source
        is never written to) and :meth:`save` writes them in place of the old
        data, with the block header's length changed to match.  Nothing else
        moves: blocks refer to each other by old memory address, not by position.

        Files with a 12-byte header keep every block a multiple of 4 bytes long
        (Blender up to 4.x aligns them so), so the data is padded with NULs there.
        Only raw data blocks (DNA struct 0, one element) can be replaced: the
        fields of a struct block are read in place.
        """
        if block.file is not self or self.buf is None:
            raise ValueError("the block does not belong to this open file")
        if block.sdna_index != 0 or block.count != 1:
            raise ValueError(f"block {block.code!r} at address 0x{block.addr_old:x} is not raw data; "
                             "only raw data blocks can be given new contents")
        if self.header.format_version == 0 and len(data) % 4:
            data = bytes(data) + bytes(4 - len(data) % 4)
        else:
            data = bytes(data)
        if len(data) > self.max_block_size:
            raise ValueError(f"{len(data)} bytes do not fit in one block of this file "
                             f"({self.max_block_size} max)")
        self._replaced[block.offset - self._header_size] = data
        block.size = len(data)
        self.modified = True

    def block_data(self, block: Block) -> bytes:
        """A block's bytes: its replacement when it was given one, else the file's."""
        if self._replaced:
            replaced = self._replaced.get(block.offset - self._header_size)
            if replaced is not None:
                return replaced
        return bytes(self.buf[block.offset : block.offset + block.size])

    def is_replaced(self, block: Block) -> bool:
        return (block.offset - self._header_size) in self._replaced

    def _chunks(self, view: memoryview) -> Iterator[memoryview | bytes]:
        """The saved file as consecutive pieces: views of the buffer between replaced
        blocks, and each replaced block's new header and data.  Nothing is copied."""
        hsize = self._header_size
        length_at = 3 if self.header.format_version == 1 else 1
        start = 0
        for pos in sorted(self._replaced):
            data = self._replaced[pos]
            old_length = self._unpack_header(self.buf, pos)[length_at]
            yield view[start:pos]
            yield self.header.with_length(view[pos : pos + hsize], len(data))
            yield data
            start = pos + hsize + old_length
        yield view[start:]

    def save(self, path: os.PathLike[str] | str, compress: Compression | None = None) -> None:
        """Write the (possibly modified) file to ``path``, compressed like the source.

        Refuses to overwrite the source: a blend file ``bat`` reads is never changed.
        The file is written streaming, piece by piece, straight from the buffer.
        """
        dest = Path(path)
        if dest.exists() and os.path.samefile(dest, self.path):
            raise BlendFileError(dest, "refusing to overwrite the source blend file")
        kind = self.compression if compress is None else compress
        with memoryview(self.buf) as view:
            compression.write(dest, self._chunks(view), kind)

    # --- life cycle ----------------------------------------------------------------

    def on_close(self, fn: Callable[[], None]) -> None:
        """Call ``fn`` when the file is closed (readers give what they learnt to the memo then)."""
        self._on_close.append(fn)

    def close(self) -> None:
        calls, self._on_close = self._on_close, []
        for fn in calls:
            fn()
        memo, self.memo = self.memo, None
        if memo is not None:
            memo.save()
        buf, self.buf = self.buf, None
        if isinstance(buf, mmap.mmap):
            buf.close()
        self._all = None
        self._special_made = None
        self._made = {}
        self._special = []
        self._addrs, self._pos, self._links = array("Q"), array("Q"), array("I")
        self._heads, self._buckets = _zeros(1), 1
        self._countdown = -1
        self._replaced = {}
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
