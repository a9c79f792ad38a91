"""Sounds, movie clips, vector fonts and texts saved to files.

Each is an ID with a single stored path.  Packed sounds and fonts, the built-in
font and texts that live only inside the blend file are not dependencies.
"""

from __future__ import annotations

from collections.abc import Iterator

from bat_core.blendfile import Block, StructView
from bat_core.bpathlib import BlendPath
from bat_core.trace import BlockUsage, TraceContext

from .common import first_field, is_packed, path_field

# MovieClip.source (DNA_movieclip_types.h).
MCLIP_SRC_SEQUENCE, MCLIP_SRC_MOVIE = 1, 2
# The name Blender gives its own font (BKE_vfont_is_builtin).
BUILTIN_FONT = b"<builtin>"


def c_string(view: StructView, field: bytes) -> bytes:
    """The text of a ``char *`` field: a separate data block, NUL-terminated."""
    blk = view.get_pointer(field, None)
    if blk is None:
        return b""
    return blk.raw_data().split(b"\0", 1)[0]


def read_sound(block: Block, ctx: TraceContext) -> Iterator[BlockUsage]:
    if is_packed(block):
        return
    found = path_field(block)
    if found is not None:
        yield BlockUsage(block, found[0], found[1], "sound")


def read_movieclip(block: Block, ctx: TraceContext) -> Iterator[BlockUsage]:
    found = path_field(block)
    if found is None:
        return
    sequence = block.get(b"source", MCLIP_SRC_MOVIE) == MCLIP_SRC_SEQUENCE
    yield BlockUsage(block, found[0], found[1], "movieclip", is_sequence=sequence)


def read_vfont(block: Block, ctx: TraceContext) -> Iterator[BlockUsage]:
    if is_packed(block):
        return
    found = path_field(block)
    if found is not None and found[1] != BUILTIN_FONT:
        yield BlockUsage(block, found[0], found[1], "font")


def read_text(block: Block, ctx: TraceContext) -> Iterator[BlockUsage]:
    """Texts keep their path in a ``char *`` (``field`` names that pointer field).

    Texts that live only inside the blend file have no path.  The ``ISMEM`` flag
    does not tell: a text written with ``Text.save`` keeps it, yet has a file
    that Blender reports (and reports missing when it is gone), as it does for
    every text with a path.
    """
    field = first_field(block, (b"filepath", b"name"))
    if field is None or not block.dna_type.field(field).is_pointer:
        return
    path = c_string(block, field)
    if path:
        yield BlockUsage(block, field, BlendPath(path), "text")


READERS = {b"SO": read_sound, b"MC": read_movieclip, b"VF": read_vfont, b"TX": read_text}
