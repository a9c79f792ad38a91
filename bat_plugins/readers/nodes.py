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


class _NodeLayout:
    """Where a file's node trees keep their links, worked out once per file."""

    __slots__ = ("first_off", "next_off", "node_size", "storage_off", "unpack", "wanted")

    def __init__(self, tree: StructView, ctx: TraceContext) -> None:
        bf = tree.file
        node_st = bf.dna.struct_by_name[b"bNode"]
        by_name = bf.dna.struct_by_name
        #: sdna indexes of the node storage structs that some reader wants.
        self.wanted = frozenset(by_name[n].index for n in ctx.tracer.registry.readers_by_struct if n in by_name)
        self.first_off = tree.dna_type.locate((b"nodes", b"first"))[0]
        self.node_size = node_st.size
        self.next_off = node_st.field(b"next").offset
        self.storage_off = node_st.field(b"storage").offset
        self.unpack = struct.Struct(bf.header.pointer_format).unpack_from


def _layout(tree: StructView, ctx: TraceContext) -> _NodeLayout | None:
    key = ("nodes.layout", tree.dna_type.index)
    layout = ctx.memo.get(key, False)
    if layout is False:
        usable = b"bNode" in tree.file.dna.struct_by_name and tree.has((b"nodes", b"first"))
        layout = ctx.memo[key] = _NodeLayout(tree, ctx) if usable else None
    assert layout is None or isinstance(layout, _NodeLayout)
    return layout


def read_node_tree(tree: StructView, ctx: TraceContext) -> Iterator[BlockUsage]:
    """Hand each node's storage with a registered reader to ``ctx.read``.

    Production files have thousands of nodes, few with interesting storage, so
    the ``next``/``storage`` pointers are unpacked directly and nodes are visited
    by header (:meth:`BlendFile.peek_addr`) rather than through a view per node.
    """
    layout = _layout(tree, ctx)
    if layout is None or not layout.wanted:
        return
    bf = tree.file
    buf = bf.buf
    peek = bf.peek_addr
    unpack = layout.unpack
    wanted = layout.wanted
    seen: set[int] = set()
    addr = unpack(buf, tree.offset + layout.first_off)[0]
    while addr and addr not in seen:
        seen.add(addr)
        node = peek(addr)
        if node is None:
            bf.dereference(addr)  # warns (or raises in strict mode)
            return
        if node[3] < layout.node_size:
            return
        storage_addr = unpack(buf, node[2] + layout.storage_off)[0]
        if storage_addr:
            storage = peek(storage_addr)
            if storage is None:
                bf.dereference(storage_addr)
            elif storage[1] in wanted:
                found = bf.block_at_addr(storage_addr)
                if found is not None:
                    yield from ctx.read(found)
        addr = unpack(buf, node[2] + layout.next_off)[0]


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
