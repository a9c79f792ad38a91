"""The generic expander: which IDs does an ID depend on, found through its pointers.

Blender loads a linked ID together with every ID it references.  Rather than
hand-writing that knowledge per ID type, this walks the ID's own data blocks
along pointer fields, guided by the DNA: a pointer is only followed when its
type can lead to an ID at all (computed once per DNA), so geometry arrays and
other pointer-free data are never read.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any

from bat_core.blendfile import DNA, BlendFile, Block, Struct
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
}


class _Plan:
    """Per-struct lists of pointer offsets worth following."""

    __slots__ = ("double", "single")

    def __init__(self) -> None:
        self.single: list[int] = []
        self.double: list[int] = []


class _DNAPlans:
    """Reachability of IDs through each struct of one DNA, and the walk plans."""

    def __init__(self, dna: DNA) -> None:
        self.dna = dna
        self.id_structs = {st.index for st in dna.structs if _is_id_struct(st)}
        self.reach = self._reachability()
        self._plans: dict[int, _Plan] = {}

    def _targets(self, st: Struct) -> Iterator[tuple[str, Any]]:
        """(kind, struct-or-None) for each pointer/nested field: kinds ptr, void, nested."""
        skip = _SKIP_FIELDS.get(st.name, frozenset())
        for f in st.fields:
            if f.name in skip or f.is_funcptr:
                continue
            if f.is_pointer:
                target = self.dna.struct_by_name.get(f.type_name)
                yield ("ptr", target) if target is not None else ("void", None)
            elif f.struct is not None:
                yield "nested", f.struct

    def _reachability(self) -> set[int]:
        """Indexes of structs from which an ID may be reached (fixed point)."""
        reach = set(self.id_structs)
        changed = True
        structs = self.dna.structs
        while changed:
            changed = False
            for st in structs:
                if st.index in reach:
                    continue
                for kind, target in self._targets(st):
                    if kind == "void" or (target is not None and target.index in reach):
                        reach.add(st.index)
                        changed = True
                        break
        return reach

    def plan(self, st: Struct) -> _Plan:
        plan = self._plans.get(st.index)
        if plan is None:
            plan = self._plans[st.index] = _Plan()
            self._fill(st, 0, plan)
        return plan

    def _fill(self, st: Struct, base: int, plan: _Plan) -> None:
        psize = self.dna.pointer_size
        skip = _SKIP_FIELDS.get(st.name, frozenset())
        for f in st.fields:
            if f.name in skip or f.is_funcptr:
                continue
            if f.is_pointer:
                target = self.dna.struct_by_name.get(f.type_name)
                if target is not None and target.index not in self.reach:
                    continue
                offsets = [base + f.offset + i * psize for i in range(f.count)]
                if f.raw_name.startswith(b"**"):
                    plan.double.extend(offsets)
                else:
                    plan.single.extend(offsets)
            elif f.struct is not None and f.struct.index in self.reach:
                for i in range(f.count):
                    self._fill(f.struct, base + f.offset + i * f.struct.size, plan)


def _is_id_struct(st: Struct) -> bool:
    if st.name == b"ID":
        return True
    fields = st.fields
    return bool(fields) and fields[0].name == b"id" and fields[0].type_name == b"ID"


_plans_cache: dict[int, tuple[DNA, _DNAPlans]] = {}


def _plans_for(bf: BlendFile) -> _DNAPlans:
    entry = _plans_cache.get(id(bf.dna))
    if entry is None or entry[0] is not bf.dna:
        if len(_plans_cache) > 64:
            _plans_cache.clear()
        entry = _plans_cache[id(bf.dna)] = (bf.dna, _DNAPlans(bf.dna))
    return entry[1]


def expand_id(block: Block, ctx: TraceContext | None = None) -> Iterator[Block]:
    """Yield the ID blocks (and linked-ID placeholders) ``block`` points at, directly
    or through its own data blocks."""
    bf = block.file
    plans = _plans_for(bf)
    by_addr = bf.block_by_addr
    buf = bf.buf
    unpack = struct.Struct(bf.header.pointer_format).unpack_from
    psize = bf.header.pointer_size
    reach = plans.reach
    seen: set[int] = {block.addr_old}
    stack: list[Block] = [block]
    while stack:
        blk = stack.pop()
        st = blk.dna_type
        plan = plans.plan(st)
        if not plan.single and not plan.double:
            continue
        addrs: list[int] = []
        for i in range(blk.count):
            base = blk.offset + i * st.size
            if base + st.size > blk.offset + blk.size:
                break
            for off in plan.single:
                addr = unpack(buf, base + off)[0]
                if addr:
                    addrs.append(addr)
            for off in plan.double:
                addr = unpack(buf, base + off)[0]
                array = by_addr.get(addr) if addr else None
                if array is not None and array.addr_old not in seen:
                    seen.add(array.addr_old)
                    n = array.size // psize
                    addrs.extend(a for a in struct.unpack_from(
                        f"{bf.header.endian}{n}{'Q' if psize == 8 else 'I'}", buf, array.offset) if a)
        for addr in addrs:
            if addr in seen:
                continue
            target = by_addr.get(addr)
            if target is None:
                continue
            seen.add(addr)
            code = target.code
            if code == b"DATA":
                if target.sdna_index and target.dna_type.index in reach:
                    stack.append(target)
            elif len(code) == 2:
                yield target
