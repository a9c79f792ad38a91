"""Texture slots (MTex): the textures of brushes, particles, line styles and 2.7x data.

Materials, lights and worlds of Blender 2.7x have ``*mtex[18]`` arrays of
pointers to MTex structs; particle settings and line styles still do.  Brushes
embed ``mtex`` and ``mask_mtex``.  Each MTex points at a Tex ID, whose image
the image reader reports once the Tex is traced.  The generic expander finds
these too; these expanders say so explicitly and read only the slot pointers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from bat_core.blendfile import Block, StructView
from bat_core.trace import TraceContext

#: Fields that hold texture slots, as arrays of MTex pointers or embedded MTex.
SLOT_FIELDS = (b"mtex", b"mask_mtex")


def _slots(block: Block) -> Iterator[StructView]:
    st = block.dna_type
    for name in SLOT_FIELDS:
        if not st.has_field(name):
            continue
        field = st.field(name)
        if field.is_pointer:
            yield from block.iter_array_of_pointers(name)
        elif field.struct is not None and field.struct.name == b"MTex":
            yield block.get(name)


def expand_texture_slots(block: Block, ctx: TraceContext | None = None) -> Iterator[Block]:
    """The Tex IDs (or linked-ID placeholders) the block's texture slots use."""
    for slot in _slots(block):
        if not slot.dna_type.has_field(b"tex"):
            continue
        tex = slot.get_pointer(b"tex", None)
        if tex is not None and len(tex.code) == 2:
            yield tex


READERS: dict[bytes | str, Callable[..., Any]] = {}
EXPANDERS = {code: expand_texture_slots for code in (b"MA", b"LA", b"WO", b"BR", b"PA", b"LS")}
