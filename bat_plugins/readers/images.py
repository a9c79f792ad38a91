"""Images: single files, frame sequences, UDIM tiles and movies; packed ones skipped."""

from __future__ import annotations

from collections.abc import Iterator

from bat_core.blendfile import Block
from bat_core.trace import BlockUsage, TraceContext
from bat_core.trace.sequences import has_udim_token

from .common import is_packed, path_field

# Image.source values (DNA_image_types.h).
IMA_SRC_FILE, IMA_SRC_SEQUENCE, IMA_SRC_MOVIE, IMA_SRC_GENERATED, IMA_SRC_VIEWER, IMA_SRC_TILED = range(1, 7)


def read_image(block: Block, ctx: TraceContext) -> Iterator[BlockUsage]:
    source = block.get(b"source", IMA_SRC_FILE)
    if source in (IMA_SRC_GENERATED, IMA_SRC_VIEWER) or is_packed(block):
        return
    found = path_field(block)
    if found is None:
        return
    field, path = found
    sequence = source in (IMA_SRC_SEQUENCE, IMA_SRC_TILED) or has_udim_token(path)
    yield BlockUsage(block, field, path, "image", is_sequence=sequence)


READERS = {b"IM": read_image}
