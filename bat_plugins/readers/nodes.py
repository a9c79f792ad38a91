"""Node trees: IES light profiles and OSL scripts in node storage.

A small walker hands every node's ``storage`` struct to ``ctx.read``, so
readers are registered by storage struct name (``NodeShaderTexIES``...) and
third-party readers for other node storages work the same way.  The walker
itself is registered for ``bNodeTree``: node groups (``NT`` IDs, dispatched by
struct name) and the trees embedded in materials, lights, worlds, scenes
(compositor, before 5.0), textures and line styles, which their owners pass to
``ctx.read``.  Node groups used by a tree are IDs of their own and are traced
(or, in libraries, expanded to) separately.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator

from bat_core.blendfile import Block, StructView
from bat_core.bpathlib import BlendPath
from bat_core.trace import BlockUsage, TraceContext

# NodeShaderTexIES.mode / NodeShaderScript.mode (DNA_node_types.h).
NODE_IES_EXTERNAL = 1
NODE_SCRIPT_EXTERNAL = 1

#: ID codes whose struct embeds a node tree in ``nodetree``.
OWNER_CODES = (b"MA", b"LA", b"WO", b"SC", b"TE", b"LS")


def read_node_tree(tree: StructView, ctx: TraceContext) -> Iterator[BlockUsage]:
    """Hand each node's storage with a registered reader to ``ctx.read``.

    Production files have thousands of nodes, few with interesting storage, so
    the ``next``/``storage`` pointers are unpacked directly rather than through
    a view per node.
    """
    bf = tree.file
    node_st = bf.dna.struct_by_name.get(b"bNode")
    if node_st is None or not tree.has((b"nodes", b"first")):
        return
    next_off = node_st.field(b"next").offset
    storage_off = node_st.field(b"storage").offset
    unpack = struct.Struct(bf.header.pointer_format).unpack_from
    buf = bf.buf
    by_addr = bf.block_by_addr
    wanted = ctx.tracer.registry.readers_by_struct
    seen: set[int] = set()
    addr = tree.get((b"nodes", b"first"))
    while addr and addr not in seen:
        seen.add(addr)
        node = by_addr.get(addr) or bf.dereference(addr)  # dereference warns (or raises)
        if node is None or node.size < node_st.size:
            return
        storage_addr = unpack(buf, node.offset + storage_off)[0]
        if storage_addr:
            storage = by_addr.get(storage_addr) or bf.dereference(storage_addr)
            if storage is not None and storage.dna_type.name in wanted:
                yield from ctx.read(storage)
        addr = unpack(buf, node.offset + next_off)[0]


def read_embedded_tree(block: Block, ctx: TraceContext) -> Iterator[BlockUsage]:
    tree = block.get_pointer(b"nodetree", None)
    if tree is not None:
        yield from ctx.read(tree)


def _external(storage: StructView, external_mode: int, kind: str) -> Iterator[BlockUsage]:
    """The ``filepath`` of a node in external mode (internal ones use a Text ID)."""
    if storage.get(b"mode", external_mode) != external_mode:
        return
    path = storage.get(b"filepath", b"")
    if path:
        yield BlockUsage(storage, b"filepath", BlendPath(path), kind)


def read_ies(storage: StructView, ctx: TraceContext) -> Iterator[BlockUsage]:
    yield from _external(storage, NODE_IES_EXTERNAL, "ies")


def read_script(storage: StructView, ctx: TraceContext) -> Iterator[BlockUsage]:
    yield from _external(storage, NODE_SCRIPT_EXTERNAL, "osl-script")


READERS: dict[bytes | str, Callable[..., Iterator[BlockUsage]]] = {
    "bNodeTree": read_node_tree,
    "NodeShaderTexIES": read_ies,
    "NodeShaderScript": read_script,
    **{code: read_embedded_tree for code in OWNER_CODES},
}
