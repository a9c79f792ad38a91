"""SDNA: the self-description every blend file carries in its ``DNA1`` block.

Field offsets are always computed from it, never hard-coded, which is what lets
one code path read files from Blender 2.5 to 5.x.  Parsing the name and type
tables is cheap; a struct's field layout is computed on first use, and each
field path is compiled once into a small reader function.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import BlendFileError

FieldPath = bytes | str | int | Sequence[bytes | str | int]

# Element formats of DNA's basic types (without the endian prefix).
_BASIC_FORMATS = {
    b"char": "b", b"uchar": "B", b"short": "h", b"ushort": "H", b"int": "i", b"uint": "I",
    b"long": "i", b"ulong": "I", b"float": "f", b"double": "d", b"int64_t": "q",
    b"uint64_t": "Q", b"int8_t": "b", b"uint8_t": "B", b"int16_t": "h", b"uint16_t": "H",
    b"int32_t": "i", b"uint32_t": "I", b"bool": "?",
}
_FORMAT_BY_SIZE = {1: "b", 2: "h", 4: "i", 8: "q"}
_DIMS = re.compile(rb"\[(\d+)\]")
#: No real DNA array has more elements than this (struct sizes are 16-bit); a
#: bigger one is a corrupt name, refused before it becomes a huge number.
_MAX_ELEMENTS = 1 << 24
_UNKNOWN: Any = object()


class DNAError(BlendFileError):
    """The DNA block is malformed or contradicts itself."""


class MissingFieldError(DNAError, KeyError):
    """A struct (or the DNA) has no such field or struct, or no such array element.

    A KeyError, so code probing for fields that differ between Blender versions
    can catch it as one; a :class:`BlendFileError` too, because a field that code
    relies on and the DNA lacks means the file is damaged (or not what it
    claims), which the CLI reports in one line like any other bad file.
    """

    def __str__(self) -> str:  # the message, not KeyError's quoted repr of it
        return Exception.__str__(self)


class Field:
    """One member of a DNA struct, with its place and size inside the struct."""

    __slots__ = ("count", "dims", "elem_size", "fmt", "is_funcptr", "is_pointer", "name",
                 "offset", "raw_name", "size", "struct", "type_name")

    def __init__(self, raw_name: bytes, type_name: bytes, offset: int, size: int, elem_size: int,
                 dims: tuple[int, ...], is_pointer: bool, is_funcptr: bool,
                 fmt: str | None, struct_: Struct | None) -> None:
        self.raw_name = raw_name
        self.name = bare_name(raw_name)
        self.type_name = type_name
        self.offset = offset
        self.size = size
        self.elem_size = elem_size
        self.dims = dims
        self.count = size // elem_size if elem_size else 0
        self.is_pointer = is_pointer
        self.is_funcptr = is_funcptr
        self.fmt = fmt
        self.struct = struct_

    @property
    def is_string(self) -> bool:
        return self.type_name == b"char" and bool(self.dims) and not self.is_pointer

    def __repr__(self) -> str:
        return f"<Field {self.type_name.decode()} {self.raw_name.decode()} @{self.offset}+{self.size}>"


def bare_name(raw: bytes) -> bytes:
    """``*next`` -> ``next``, ``(*func)()`` -> ``func``, ``mat[4][4]`` -> ``mat``."""
    name = raw.split(b"[", 1)[0]
    if name.startswith(b"(*"):
        name = name[2:].split(b")", 1)[0]
    return name.lstrip(b"*")


class Struct:
    """A DNA struct type.  Fields are laid out on first access."""

    def __init__(self, dna: DNA, index: int, name: bytes, size: int,
                 members: Sequence[tuple[int, int]]) -> None:
        self.dna = dna
        self.index = index
        self.name = name
        self.size = size
        self._members = members
        self._fields: list[Field] | None = None
        self._by_name: dict[bytes, Field] = {}
        self._readers: dict[Any, Callable[[Any, int], Any] | None] = {}

    def __repr__(self) -> str:
        return f"<Struct {self.name.decode()} size={self.size}>"

    @property
    def is_id(self) -> bool:
        """An ID datablock's struct: ``ID`` itself, or one whose first member is ``ID id``."""
        if self.name == b"ID":
            return True
        if not self._members:
            return False
        type_idx, name_idx = self._members[0]
        return self.dna.type_names[type_idx] == b"ID" and self.dna.names[name_idx] == b"id"

    @property
    def members(self) -> Sequence[tuple[int, int]]:
        """The raw (type index, name index) pairs, for whole-DNA analyses that should
        not pay for laying out every struct."""
        return self._members

    @property
    def fields(self) -> list[Field]:
        if self._fields is None:
            self._layout()
        assert self._fields is not None
        return self._fields

    def _layout(self) -> None:
        dna = self.dna
        offset = 0
        fields: list[Field] = []
        for type_idx, name_idx in self._members:
            if type_idx >= len(dna.type_names) or name_idx >= len(dna.names):
                raise DNAError(dna.source, f"struct {self.name.decode()} refers to an unknown type or name")
            type_name = dna.type_names[type_idx]
            raw = dna.names[name_idx]
            dims = dna.dims(name_idx)
            count = 1
            for d in dims:
                count *= d
            is_funcptr = raw.startswith(b"(*")
            is_pointer = is_funcptr or raw.startswith(b"*")
            sub = None
            fmt = None
            if is_pointer:
                elem = dna.pointer_size
            else:
                elem = dna.type_sizes[type_idx]
                sub = dna.struct_by_type_index.get(type_idx)
                if sub is None:
                    fmt = _BASIC_FORMATS.get(type_name) or _FORMAT_BY_SIZE.get(elem)
            field = Field(raw, type_name, offset, elem * count, elem, dims, is_pointer, is_funcptr, fmt, sub)
            fields.append(field)
            self._by_name.setdefault(field.name, field)
            offset += field.size
        if offset != self.size:
            raise DNAError(
                self.dna.source,
                f"struct {self.name.decode()} fields add up to {offset} bytes but the DNA says {self.size}",
            )
        self._fields = fields

    def field(self, name: bytes | str) -> Field:
        """The field called ``name``; KeyError when the struct has none."""
        if self._fields is None:
            self._layout()
        if isinstance(name, str):
            name = name.encode()
        try:
            return self._by_name[name]
        except KeyError:
            raise MissingFieldError(self.dna.source, f"{self.name.decode()} has no field "
                                    f"{name.decode('ascii', 'replace')!r}") from None

    def has_field(self, name: bytes | str) -> bool:
        try:
            self.field(name)
        except KeyError:
            return False
        return True

    def reader(self, path: FieldPath) -> Callable[[Any, int], Any]:
        """A compiled ``reader(block_file_view, base_offset) -> value`` for a field path.

        Paths are a field name or a tuple of names into nested structs, with
        integers indexing arrays: ``(b'id', b'name')``, ``(b'mtex', 3)``.
        Raises KeyError for a path the struct does not have.
        """
        fn = self.reader_or_none(path)
        if fn is None:
            raise MissingFieldError(self.dna.source, f"{self.name.decode()} has no field {path!r}")
        return fn

    def reader_or_none(self, path: FieldPath) -> Callable[[Any, int], Any] | None:
        """Like :meth:`reader`, but None for a path the struct does not have.

        Misses are remembered too: readers probe for fields that differ between
        Blender versions, once per block.
        """
        key = path if not isinstance(path, list) else tuple(path)
        fn = self._readers.get(key, _UNKNOWN)
        if fn is _UNKNOWN:
            try:
                fn = _compile(self, _normalise(path))
            except KeyError:  # no such field, or no such element of an array
                fn = None
            self._readers[key] = fn
        return fn  # type: ignore[no-any-return]

    def locate(self, path: FieldPath) -> tuple[int, Field, int]:
        """(offset inside this struct, field, element count) for a field path."""
        return _locate(self, _normalise(path))


def _normalise(path: FieldPath) -> tuple[bytes | int, ...]:
    if isinstance(path, (bytes, str, int)):
        path = (path,)
    return tuple(p.encode() if isinstance(p, str) else p for p in path)


def _locate(struct_: Struct, path: tuple[bytes | int, ...]) -> tuple[int, Field, int]:
    offset = 0
    cur: Struct | None = struct_
    field: Field | None = None
    count = 0
    dims: tuple[int, ...] = ()
    for part in path:
        if isinstance(part, int):
            if field is None or not dims:
                raise MissingFieldError(struct_.dna.source, f"cannot index {path!r}: not an array")
            if not 0 <= part < dims[0]:
                raise MissingFieldError(struct_.dna.source,
                                        f"index {part} out of range for {field.raw_name.decode()}")
            stride = count // dims[0] * field.elem_size
            offset += part * stride
            count //= dims[0]
            dims = dims[1:]
            continue
        if field is not None:
            if field.is_pointer or field.struct is None or dims:
                raise MissingFieldError(struct_.dna.source, f"cannot look up {part.decode('ascii', 'replace')!r} "
                                        f"inside {field.raw_name.decode()}")
            cur = field.struct
        assert cur is not None
        field = cur.field(part)
        offset += field.offset
        count = field.count
        dims = field.dims
    if field is None:
        raise MissingFieldError(struct_.dna.source, "empty field path")
    return offset, field, count


def _compile(struct_: Struct, path: tuple[bytes | int, ...]) -> Callable[[Any, int], Any]:
    offset, field, count = _locate(struct_, path)
    dna = struct_.dna
    endian = dna.endian
    whole = count == field.count  # no index applied: the field's own shape
    if field.is_pointer:
        fmt = endian + (str(count) if count > 1 else "") + dna.pointer_char
        unpack = struct.Struct(fmt).unpack_from
        if count == 1:
            return lambda view, base: unpack(view.buf, base + offset)[0]
        return lambda view, base: unpack(view.buf, base + offset)
    if field.struct is not None:
        sub = field.struct
        if count == 1:
            return lambda view, base: view.struct_at(sub, base + offset)
        size = sub.size
        return lambda view, base: [view.struct_at(sub, base + offset + i * size) for i in range(count)]
    if field.type_name == b"char" and count > 1:
        end = count

        def read_chars(view: Any, base: int) -> bytes:
            raw = bytes(view.buf[base + offset : base + offset + end])
            nul = raw.find(b"\0")
            return raw if nul < 0 else raw[:nul]

        return read_chars
    if field.fmt is None:
        raise MissingFieldError(dna.source, f"field {field.raw_name.decode()} of type "
                                f"{field.type_name.decode()} cannot be read")
    unpack = struct.Struct(endian + (str(count) if count > 1 else "") + field.fmt).unpack_from
    if count == 1:
        return lambda view, base: unpack(view.buf, base + offset)[0]
    if whole and len(field.dims) > 1:
        inner = field.dims[-1]

        def read_matrix(view: Any, base: int) -> tuple[Any, ...]:
            flat = unpack(view.buf, base + offset)
            return tuple(flat[i : i + inner] for i in range(0, len(flat), inner))

        return read_matrix
    return lambda view, base: unpack(view.buf, base + offset)


_POINTER_PREFIXES = (b"*", b"(*")


def _dims(raw: bytes) -> tuple[int, ...]:
    """Array dimensions of a member name like ``mat[4][4]``; ValueError past any real size."""
    dims = []
    count = 1
    for d in _DIMS.findall(raw):
        if len(d) > 9:
            raise ValueError(f"array dimension {d[:12].decode()}... in {raw[:80]!r}")
        n = int(d)
        count *= n
        if count > _MAX_ELEMENTS:
            raise ValueError(f"array of {count} elements in {raw[:80]!r}")
        dims.append(n)
    return tuple(dims)


def _product(dims: tuple[int, ...]) -> int:
    count = 1
    for d in dims:
        count *= d
    return count


def _align4(pos: int) -> int:
    return (pos + 3) & ~3


class DNA:
    """Parsed ``DNA1`` block: names, types, type sizes and structs."""

    def __init__(self, data: bytes | memoryview, endian: str, pointer_size: int,
                 source: str = "<DNA>") -> None:
        self.source = source
        self.endian = endian
        self.pointer_size = pointer_size
        self.pointer_char = "Q" if pointer_size == 8 else "I"
        data = bytes(data)
        try:
            self._parse(data)
        except (struct.error, IndexError, ValueError) as exc:
            raise DNAError(self.source, f"corrupt DNA block ({exc})") from None

    def _expect(self, data: bytes, pos: int, tag: bytes) -> int:
        if data[pos : pos + 4] != tag:
            raise DNAError(self.source, f"corrupt DNA block: expected {tag.decode()} at offset {pos}")
        return pos + 4

    def _strings(self, data: bytes, pos: int, tag: bytes) -> tuple[list[bytes], int]:
        pos = self._expect(data, pos, tag)
        (count,) = struct.unpack_from(self.endian + "i", data, pos)
        pos += 4
        if count < 0 or count > len(data):
            raise DNAError(self.source, f"corrupt DNA block: {count} entries in {tag.decode()}")
        out = data[pos:].split(b"\0", count)
        if len(out) <= count:
            raise DNAError(self.source, f"corrupt DNA block: {tag.decode()} ends before its {count} entries")
        del out[count]  # the rest of the block
        pos += sum(map(len, out)) + count
        return out, _align4(pos)

    def _parse(self, data: bytes) -> None:
        pos = self._expect(data, 0, b"SDNA")
        self.names, pos = self._strings(data, pos, b"NAME")
        self.type_names, pos = self._strings(data, pos, b"TYPE")
        # DNA names are C identifiers: anything else is damage, and refusing it here
        # lets every message and look-up decode them as ASCII.
        if not (b"".join(self.names).isascii() and b"".join(self.type_names).isascii()):
            raise DNAError(self.source, "corrupt DNA block: a name or type name is not ASCII")
        pos = self._expect(data, pos, b"TLEN")
        ntypes = len(self.type_names)
        # Sizes and indexes are C shorts that are never negative: read unsigned so a
        # damaged one cannot index backwards or give a struct a negative size.
        self.type_sizes = list(struct.unpack_from(f"{self.endian}{ntypes}H", data, pos))
        pos = _align4(pos + 2 * ntypes)
        pos = self._expect(data, pos, b"STRC")
        (nstructs,) = struct.unpack_from(self.endian + "i", data, pos)
        pos += 4
        if nstructs < 0 or nstructs > len(data):
            raise DNAError(self.source, f"corrupt DNA block: {nstructs} structs")
        self.structs: list[Struct] = []
        self.struct_by_type_index: dict[int, Struct] = {}
        self.struct_by_name: dict[bytes, Struct] = {}
        short2 = struct.Struct(self.endian + "HH")
        self._name_dims = [_dims(n) if b"[" in n else () for n in self.names]
        name_info = [(n.startswith(_POINTER_PREFIXES), _product(d)) for n, d in zip(self.names, self._name_dims,
                                                                                     strict=True)]
        for index in range(nstructs):
            type_idx, nfields = short2.unpack_from(data, pos)
            pos += 4
            if type_idx >= ntypes:
                raise DNAError(self.source, f"corrupt DNA block: struct {index} has type {type_idx}")
            if type_idx in self.struct_by_type_index:
                raise DNAError(self.source, f"corrupt DNA block: type {type_idx} is described twice")
            flat = struct.unpack_from(f"{self.endian}{2 * nfields}H", data, pos)
            pos += 4 * nfields
            members = list(zip(flat[0::2], flat[1::2], strict=True))
            self._check_size(index, type_idx, members, name_info)
            st = Struct(self, index, self.type_names[type_idx], self.type_sizes[type_idx], members)
            self.structs.append(st)
            self.struct_by_type_index[type_idx] = st
            self.struct_by_name.setdefault(st.name, st)
        self._check_nesting(name_info)

    def dims(self, name_index: int) -> tuple[int, ...]:
        """Array dimensions of a member name (``()`` for a single value)."""
        return self._name_dims[name_index]

    def _check_nesting(self, name_info: list[tuple[bool, int]]) -> None:
        """Refuse a struct that contains itself by value, directly or through others.

        C cannot express that, so only a damaged DNA does; code that walks
        embedded structs (layouts, the expander) would otherwise never end.
        """
        by_type = self.struct_by_type_index
        embeds = {st.index: {by_type[t].index for t, n in st.members if t in by_type and not name_info[n][0]}
                  for st in self.structs}
        done: set[int] = set()
        for root in embeds:
            if root in done:
                continue
            # Iterative depth-first search; a struct on the current path seen again is a cycle.
            path: set[int] = {root}
            stack = [(root, iter(embeds[root]))]
            while stack:
                node, children = stack[-1]
                child = next(children, None)
                if child is None:
                    stack.pop()
                    path.discard(node)
                    done.add(node)
                    continue
                if child in path:
                    name = self.structs[child].name.decode()
                    raise DNAError(self.source, f"corrupt DNA block: struct {name} contains itself")
                if child not in done:
                    path.add(child)
                    stack.append((child, iter(embeds[child])))

    def _check_size(self, index: int, type_idx: int, members: list[tuple[int, int]],
                    name_info: list[tuple[bool, int]]) -> None:
        """Reject a DNA whose struct members do not add up to the struct's size.

        Done for every struct when the file is opened, because a lying DNA would
        otherwise go unnoticed until some field happens to be read.
        """
        total = 0
        sizes = self.type_sizes
        psize = self.pointer_size
        try:
            for t, n in members:
                is_ptr, count = name_info[n]
                total += (psize if is_ptr else sizes[t]) * count
        except IndexError:
            raise DNAError(self.source, f"corrupt DNA block: struct {index} refers to an unknown "
                           "type or name") from None
        if total != sizes[type_idx]:
            name = self.type_names[type_idx].decode("ascii", "replace")
            raise DNAError(self.source, f"corrupt DNA: struct {name} fields add up to {total} bytes "
                           f"but the DNA says {sizes[type_idx]}")

    def struct(self, name: bytes | str) -> Struct:
        """The struct called ``name``; :class:`MissingFieldError` (a KeyError) when there is none."""
        if isinstance(name, str):
            name = name.encode()
        try:
            return self.struct_by_name[name]
        except KeyError:
            raise MissingFieldError(self.source, f"the DNA has no struct {name.decode('ascii', 'replace')}") from None
