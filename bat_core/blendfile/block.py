"""Blocks and struct views: typed, lazy access to the data of a blend file.

A :class:`StructView` is a struct type at an offset in the file's buffer; a
:class:`Block` is a view that also carries the block header (code, old memory
address, length, count).  Nothing is read until a field is asked for.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ..errors import BlendFileError
from .dna import FieldPath, MissingFieldError, Struct

if TYPE_CHECKING:
    from .file import BlendFile

_MISSING: Any = object()


class StructView:
    """A DNA struct instance at ``offset`` in ``file``'s uncompressed bytes."""

    __slots__ = ("_struct", "file", "offset")

    def __init__(self, file: BlendFile, struct_: Struct | None, offset: int) -> None:
        self.file = file
        self._struct = struct_
        self.offset = offset

    @property
    def dna_type(self) -> Struct:
        assert self._struct is not None
        return self._struct

    @property
    def dna_type_name(self) -> str:
        return self.dna_type.name.decode()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.dna_type_name} @{self.offset}>"

    # --- reading ---------------------------------------------------------------

    def get(self, path: FieldPath, default: Any = _MISSING) -> Any:
        """The value of a field: int, float, bytes (char arrays), tuple, StructView.

        Pointers come back as integer addresses; use :meth:`get_pointer` to follow
        them.  With ``default`` given, a field the struct does not have (an older
        or newer Blender) returns it instead of raising ``KeyError``.
        """
        reader = self.dna_type.reader_or_none(path)
        if reader is None:
            if default is _MISSING:
                raise MissingFieldError(self.file.path, f"{self.dna_type_name} has no field {path!r}")
            return default
        return reader(self.file, self.offset)

    def has(self, path: FieldPath) -> bool:
        return self.dna_type.reader_or_none(path) is not None

    def get_pointer(self, path: FieldPath, default: Any = _MISSING) -> Block | None:
        """Follow a pointer field to the block it points at (None for a null pointer)."""
        addr = self.get(path, default=0 if default is not _MISSING else _MISSING)
        if not addr:
            return None if default is _MISSING else default
        return self.file.dereference(addr)

    def iter_array_of_pointers(self, path: FieldPath, count: int | None = None) -> Iterator[Block]:
        """Blocks pointed at by an array of pointers, skipping null entries.

        Works for fixed DNA arrays (``*mtex[18]``) and for a pointer to a separate
        block of pointers (``**mat`` with ``totcol``); ``count`` limits the latter.
        """
        value = self.get(path)
        if isinstance(value, tuple):
            addrs: tuple[int, ...] | list[int] = value
        else:
            if not value:
                return
            array = self.file.dereference(value)
            if array is None:
                return
            addrs = array.read_pointers(count)
        deref = self.file.dereference
        for addr in addrs:
            if addr:
                blk = deref(addr)
                if blk is not None:
                    yield blk

    def iter_listbase(self, path: FieldPath) -> Iterator[Block]:
        """Blocks of a ``ListBase`` field, following each item's ``next`` pointer.

        Blender requires list items to start with their ``next`` pointer, but it is
        often inside a nested struct (``ModifierData modifier``), so it is read at
        offset 0 of each item rather than by name.
        """
        listbase = self.get(path)
        addr = listbase.get(b"first")
        seen: set[int] = set()
        bf = self.file
        unpack = struct.Struct(bf.header.pointer_format).unpack_from
        deref = bf.dereference
        while addr and addr not in seen:
            seen.add(addr)
            blk = deref(addr)
            if blk is None:
                return
            yield blk
            addr = unpack(bf.buf, blk.offset)[0] if blk.size >= bf.header.pointer_size else 0

    # --- writing -----------------------------------------------------------------

    def set(self, path: FieldPath, value: bytes | str | int | float) -> None:
        """Set a char-array, integer or float field in the file's private copy.

        The change lives in memory until :meth:`BlendFile.save` writes the whole
        file somewhere else; the source file is never written to.
        """
        dna = self.dna_type
        rel, field, count = dna.locate(path)
        pos = self.offset + rel
        buf = self.file.buf
        if field.is_pointer:
            if field.type_name == b"char" and not field.is_funcptr and count == 1 and field.count == 1:
                self._set_string_block(path, value)
                return
            raise TypeError(f"refusing to set pointer field {field.raw_name.decode()}")
        if field.struct is not None:
            raise TypeError(f"cannot set struct field {field.raw_name.decode()} as a whole")
        if field.type_name == b"char" and count > 1:
            data = value.encode() if isinstance(value, str) else value
            if not isinstance(data, bytes):
                raise TypeError(f"{field.raw_name.decode()} takes bytes or str, not {type(value).__name__}")
            if len(data) >= count:
                raise ValueError(f"{len(data)} bytes do not fit in {field.raw_name.decode()} ({count - 1} max)")
            self.file.will_write()
            buf[pos : pos + count] = data.ljust(count, b"\0")
        else:
            if count != 1 or field.fmt is None:
                raise TypeError(f"cannot set {field.raw_name.decode()} to a single value")
            if isinstance(value, (bytes, str)):
                raise TypeError(f"{field.raw_name.decode()} takes a number, not {type(value).__name__}")
            self.file.will_write()
            struct.pack_into(dna.dna.endian + field.fmt, buf, pos, value)
        self.file.modified = True


    def get_string(self, path: FieldPath) -> bytes:
        """A string field's bytes, whether a ``char name[N]`` array or a ``char *`` pointer."""
        value = self.get(path)
        if isinstance(value, bytes):
            return value
        if not value:
            return b""
        blk = self.file.dereference(value)
        if blk is None:
            return b""
        raw = blk.raw_data()
        nul = raw.find(b"\0")
        return raw if nul < 0 else raw[:nul]

    def _set_string_block(self, path: FieldPath, value: bytes | str | int | float) -> None:
        """Set the string a ``char *`` field points at, in its own data block.

        A string that fits is written over the old one; a longer one gives the
        block new, bigger contents (see :meth:`BlendFile.replace_block_data`), so
        there is no limit but the block format's own.
        """
        data = value.encode() if isinstance(value, str) else value
        if not isinstance(data, bytes):
            raise TypeError(f"a string field takes bytes or str, not {type(value).__name__}")
        if b"\0" in data:
            raise ValueError(f"a string for field {path!r} cannot contain a NUL byte")
        addr = self.get(path)
        bf = self.file
        blk = bf.dereference(addr) if addr else None
        if blk is None:
            raise ValueError(f"string field {path!r} points at no block; cannot set it")
        if len(data) < blk.size and not bf.is_replaced(blk):
            bf.will_write()
            bf.buf[blk.offset : blk.offset + blk.size] = data.ljust(blk.size, b"\0")
            bf.modified = True
        else:
            bf.replace_block_data(blk, data + b"\0")


class Block(StructView):
    """One block of the file: header fields plus lazy access to its data."""

    __slots__ = ("addr_old", "code", "count", "sdna_index", "size")

    def __init__(self, file: BlendFile, code: bytes, sdna_index: int, addr_old: int, size: int,
                 count: int, offset: int) -> None:
        self.file = file
        self._struct = None
        self.offset = offset
        self.code = code
        self.sdna_index = sdna_index
        self.addr_old = addr_old
        self.size = size
        self.count = count

    @property
    def dna_type(self) -> Struct:
        st = self._struct
        if st is None:
            st = self._struct = self.file.struct_for_block(self)
        return st

    def __repr__(self) -> str:
        return (f"<Block {self.code.decode(errors='replace')} {self.dna_type_name} "
                f"addr=0x{self.addr_old:x} size={self.size} count={self.count}>")

    @property
    def id_name(self) -> bytes:
        """The ID name (``OBCube``) of an ID block; empty for other blocks."""
        name = self.get((b"id", b"name"), b"")
        if not isinstance(name, bytes):  # a DNA whose ID.name is no char array
            raise BlendFileError(self.file.path, f"the ID name of block {self.code!r} is not a string "
                                 f"in this file's DNA (a {type(name).__name__}): a damaged DNA")
        return name

    def items(self) -> Iterator[StructView]:
        """Each of the ``count`` structs stored in this block."""
        st = self.dna_type
        for i in range(self.count):
            yield StructView(self.file, st, self.offset + i * st.size)

    def raw_data(self) -> bytes:
        """The block's bytes (its new contents when it was given some)."""
        return self.file.block_data(self)

    def read_pointers(self, count: int | None = None) -> list[int]:
        """Interpret this block's data as an array of pointers (``void **`` data)."""
        psize = self.file.header.pointer_size
        n = self.size // psize if count is None else min(count, self.size // psize)
        fmt = f"{self.file.header.endian}{n}{'Q' if psize == 8 else 'I'}"
        if self.file.is_replaced(self):
            return list(struct.unpack_from(fmt, self.raw_data()))
        return list(struct.unpack_from(fmt, self.file.buf, self.offset))
