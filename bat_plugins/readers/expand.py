"""The generic expander: which IDs does an ID depend on, found through its pointers.

Blender loads a linked ID together with every ID it references.  Rather than
hand-writing that knowledge per ID type, this walks the ID's own data blocks
along pointer fields, guided by the DNA: a pointer is only followed when its
type can lead to an ID at all (computed once per DNA), so geometry arrays and
other pointer-free data are never read.
"""

from __future__ import annotations

import functools
import struct
import weakref
from array import array
from collections.abc import Iterator

from bat_core.blendfile import DNA, BlendFile, Block, Struct
from bat_core.blendfile import dna as dna_module
from bat_core.blendfile import file as file_module
from bat_core.blendfile.dna import bare_name
from bat_core.blendfile.memo import code_version
from bat_core.trace import TraceContext

# Pointers that do not express a dependency: list links between IDs, runtime
# data, and back-pointers to an owner (Blender's "loopback" references).
_SKIP_FIELDS: dict[bytes, frozenset[bytes]] = {
    b"ID": frozenset({b"next", b"prev", b"newid", b"lib", b"orig_id", b"py_instance",
                      b"runtime", b"library_weak_reference", b"_pad1"}),
    b"Key": frozenset({b"from"}),
    b"bNodeTree": frozenset({b"owner_id"}),
    b"Object": frozenset({b"proxy_from"}),
    b"Collection": frozenset({b"owner_id"}),
    # Blender 4.x/5.x generic attributes: arrays of numbers, strings, never IDs.
    b"Attribute": frozenset({b"data"}),
    b"AttributeArray": frozenset({b"data", b"sharing_info"}),
}


class _Plan:
    """How to read the pointers worth following out of one struct instance.

    ``single`` unpacks all of them in one call (a format with padding between
    the pointer fields); ``double`` are offsets of ``**`` fields, pointers to
    separate arrays of pointers.
    """

    __slots__ = ("double", "single", "size")

    def __init__(self, offsets: list[int], double: list[int], size: int, pointer_format: str) -> None:
        self.size = size
        self.double = double
        self.single = _gather_format(sorted(offsets), pointer_format) if offsets else None


def _gather_format(offsets: list[int], pointer_format: str) -> struct.Struct:
    """A struct format that reads the pointers at ``offsets`` and skips the bytes between."""
    endian, code = pointer_format[0], pointer_format[1:]
    psize = struct.calcsize(pointer_format)
    parts = [endian]
    pos = 0
    for off in offsets:
        if off > pos:
            parts.append(f"{off - pos}x")
        parts.append(code)
        pos = off + psize
    return struct.Struct("".join(parts))


class _DNAPlans:
    """Reachability of IDs through each struct of one DNA, and the walk plans."""

    def __init__(self, dna: DNA) -> None:
        self.dna = dna
        self.reach = self._reachability()
        self._plans: dict[int, _Plan | None] = {}
        self.pointer_format = dna.endian + dna.pointer_char

    def _reachability(self) -> set[int]:
        """Indexes of structs from which an ID may be reached.

        Works on the raw DNA members (no struct layouts): an edge from each struct
        to the structs it points at or embeds, then a search backwards from the ID
        structs and from the structs holding ``void *`` pointers, which may point
        at anything.
        """
        dna = self.dna
        names, type_names = dna.names, dna.type_names
        by_type = dna.struct_by_type_index
        users: dict[int, list[int]] = {}  # struct index -> structs pointing at or embedding it
        reach: set[int] = set()
        for st in dna.structs:
            members = st.members
            if st.name == b"ID" or (members and type_names[members[0][0]] == b"ID"
                                    and bare_name(names[members[0][1]]) == b"id"):
                reach.add(st.index)
            skip = _SKIP_FIELDS.get(st.name)
            for type_idx, name_idx in members:
                raw = names[name_idx]
                if raw.startswith(b"(*") or (skip and bare_name(raw) in skip):
                    continue
                target = by_type.get(type_idx)
                if target is not None:
                    users.setdefault(target.index, []).append(st.index)
                elif raw.startswith(b"*") and type_names[type_idx] == b"void":
                    # Only void * may point at anything.  Pointers to other types
                    # that are not DNA structs (char *, float *, runtime handles)
                    # hold plain or runtime data, never an ID.
                    reach.add(st.index)
        todo = list(reach)
        while todo:
            for user in users.get(todo.pop(), ()):
                if user not in reach:
                    reach.add(user)
                    todo.append(user)
        return reach

    def plan(self, sdna_index: int) -> _Plan | None:
        """The walk plan of a struct, or None when nothing in it can lead to an ID."""
        plan = self._plans.get(sdna_index)
        if plan is None and sdna_index not in self._plans:
            st = self.dna.structs[sdna_index]
            single: list[int] = []
            double: list[int] = []
            self._fill(st, 0, single, double)
            if single or double:
                plan = _Plan(single, double, st.size, self.pointer_format)
            self._plans[sdna_index] = plan
        return plan

    def _fill(self, st: Struct, base: int, single: list[int], double: list[int]) -> None:
        psize = self.dna.pointer_size
        skip = _SKIP_FIELDS.get(st.name, frozenset())
        for f in st.fields:
            if f.name in skip or f.is_funcptr:
                continue
            if f.is_pointer:
                target = self.dna.struct_by_name.get(f.type_name)
                if target is None and f.type_name != b"void":
                    continue
                if target is not None and target.index not in self.reach:
                    continue
                offsets = [base + f.offset + i * psize for i in range(f.count)]
                (double if f.raw_name.startswith(b"**") else single).extend(offsets)
            elif f.struct is not None and f.struct.index in self.reach:
                for i in range(f.count):
                    self._fill(f.struct, base + f.offset + i * f.struct.size, single, double)


_plans_cache: dict[int, tuple[DNA, _DNAPlans]] = {}


def _plans_for(bf: BlendFile) -> _DNAPlans:
    entry = _plans_cache.get(id(bf.dna))
    if entry is None or entry[0] is not bf.dna:
        if len(_plans_cache) > 64:
            _plans_cache.clear()
        entry = _plans_cache[id(bf.dna)] = (bf.dna, _DNAPlans(bf.dna))
    return entry[1]


#: The memo section of the walks' answers.
MEMO_SECTION = "expand"


@functools.cache
def _memo_version() -> str:
    """The code the walks' answers depend on: this module and the reader (worked out on first use)."""
    return code_version(__file__, dna_module.__file__, file_module.__file__)


class _Walks:
    """The answers of this file's walks: ID address -> the addresses of the IDs it pulls in.

    Loaded from the file's memo, and given back to it with the new answers when
    the file is closed, so the next trace of an unchanged library walks nothing.
    """

    __slots__ = ("bf", "found", "new")

    def __init__(self, bf: BlendFile) -> None:
        self.bf = bf
        self.found: dict[int, tuple[int, ...]] = {}
        self.new = False
        data = bf.memo.get(MEMO_SECTION, _memo_version()) if bf.memo is not None else None
        if data:
            self.found = _decode(data)

    def store(self) -> None:
        if self.new and self.bf.memo is not None:
            self.bf.memo.put(MEMO_SECTION, _memo_version(), _encode(self.found))
            self.new = False


def _encode(found: dict[int, tuple[int, ...]]) -> bytes:
    flat = array("Q")
    for addr, deps in found.items():
        flat.append(addr)
        flat.append(len(deps))
        flat.extend(deps)
    return flat.tobytes()


def _decode(data: bytes) -> dict[int, tuple[int, ...]]:
    flat = array("Q")
    flat.frombytes(data[: len(data) // flat.itemsize * flat.itemsize])
    found: dict[int, tuple[int, ...]] = {}
    pos, end = 0, len(flat)
    while pos + 2 <= end:
        addr, n = flat[pos], flat[pos + 1]
        if pos + 2 + n > end:
            return {}  # cut short: trust none of it
        found[addr] = tuple(flat[pos + 2 : pos + 2 + n])
        pos += 2 + n
    return found if pos == end else {}


_walks_of: weakref.WeakKeyDictionary[BlendFile, _Walks] = weakref.WeakKeyDictionary()


def expand_id(block: Block, ctx: TraceContext | None = None) -> Iterator[Block]:
    """Yield the ID blocks (and linked-ID placeholders) ``block`` points at, directly
    or through its own data blocks.

    The answer for an ID of an unchanged file comes from the file's memo when an
    earlier run worked it out; otherwise it is worked out (:func:`_walk`) and
    kept for the memo.  A file with changes in memory is always walked.
    """
    bf = block.file
    if bf.memo is None or bf.modified:
        yield from _walk(block)
        return
    walks = _walks_of.get(bf)
    if walks is None:
        walks = _walks_of[bf] = _Walks(bf)
        bf.on_close(walks.store)
    deps = walks.found.get(block.addr_old)
    if deps is None:
        found = list(_walk(block))
        walks.found[block.addr_old] = tuple(b.addr_old for b in found)
        walks.new = True
        yield from found
        return
    at = bf.block_at_addr
    for addr in deps:
        dep = at(addr)
        if dep is not None:
            yield dep


def _walk(block: Block) -> Iterator[Block]:
    """The walk itself, along the pointers that can lead to an ID.

    Data blocks are visited through :meth:`BlendFile.peek_addr` (a header read,
    no :class:`Block` object); only the IDs found become blocks.
    """
    bf = block.file
    plans = _plans_for(bf)
    peek = bf.peek_addr
    buf = bf.buf
    psize = bf.header.pointer_size
    array_format = bf.header.endian + ("Q" if psize == 8 else "I")
    reach = plans.reach
    block.dna_type  # noqa: B018 - validates the root block's struct (raises on a corrupt one)
    seen: set[int] = {block.addr_old}
    stack: list[tuple[int, int, int, int]] = [(block.sdna_index, block.offset, block.size, block.count)]
    while stack:
        sdna, offset, size, count = stack.pop()
        plan = plans.plan(sdna)
        if plan is None:
            continue
        addrs: list[int] = []
        single = plan.single
        step = plan.size
        end = offset + size
        for base in range(offset, offset + count * step, step):
            if base + step > end:
                break
            if single is not None:
                addrs.extend(single.unpack_from(buf, base))
            for off in plan.double:
                addr = struct.unpack_from(array_format, buf, base + off)[0]
                if not addr or addr in seen:
                    continue
                seen.add(addr)
                array = peek(addr)
                if array is not None:
                    n = array[3] // psize
                    addrs.extend(struct.unpack_from(f"{bf.header.endian}{n}{array_format[1]}", buf, array[2]))
        for addr in addrs:
            if not addr or addr in seen:
                continue
            seen.add(addr)
            target = peek(addr)
            if target is None:
                continue
            code = target[0]
            if code == b"DATA":
                if target[1] and target[1] in reach:
                    stack.append(target[1:])
            elif len(code) == 2:
                found = bf.block_at_addr(addr)
                if found is not None:
                    yield found
