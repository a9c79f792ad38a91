"""Cache datablocks: Alembic/USD CacheFiles and OpenVDB Volumes.

Both may be a frame sequence (``is_sequence``: ``anim_0001.abc``...; Blender
stores the first file and reads the others by frame number).  A Volume may be
packed, then it is no file.  A CacheFile's override layers
(``CacheFile.layers``, Alembic only) are files Blender opens on top of the main
archive, so they count too even though ``blend_paths`` leaves them out.
"""

from __future__ import annotations

from collections.abc import Iterator

from bat_core.blendfile import Block
from bat_core.bpathlib import BlendPath
from bat_core.trace import BlockUsage, TraceContext

from .common import is_packed


def read_cache_file(block: Block, ctx: TraceContext) -> Iterator[BlockUsage]:
    if is_packed(block):
        return
    sequence = bool(block.get(b"is_sequence", 0))
    path = block.get(b"filepath", b"")
    if path:
        yield BlockUsage(block, b"filepath", BlendPath(path), "cachefile", is_sequence=sequence)
    if block.has(b"layers"):
        for layer in block.iter_listbase(b"layers"):
            layer_path = layer.get(b"filepath", b"")
            if layer_path:
                yield BlockUsage(layer, b"filepath", BlendPath(layer_path), "cachefile")


def read_volume(block: Block, ctx: TraceContext) -> Iterator[BlockUsage]:
    if is_packed(block):
        return
    path = block.get(b"filepath", b"")
    if path:
        yield BlockUsage(block, b"filepath", BlendPath(path), "volume",
                         is_sequence=bool(block.get(b"is_sequence", 0)))


READERS = {b"CF": read_cache_file, b"VO": read_volume}
