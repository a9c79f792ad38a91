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
    if not tree.has(b"nodes"):
        return
    for node in tree.iter_listbase(b"nodes"):
        storage = node.get_pointer(b"storage", None)
        if storage is not None:
            yield from ctx.read(storage)


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
