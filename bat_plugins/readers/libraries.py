"""Linked libraries: the library blend files themselves.

The tracer follows them on its own (it needs to know which IDs each file links);
this reader reports the files as dependencies so they are listed and packed.
"""

from __future__ import annotations

from collections.abc import Iterator

from bat_core.blendfile import Block
from bat_core.trace import BlockUsage, TraceContext, library_path, library_path_field

from .common import is_packed


def read_library(block: Block, ctx: TraceContext) -> Iterator[BlockUsage]:
    if is_packed(block):
        return
    path = library_path(block)
    field = library_path_field(block)
    if path and field:
        yield BlockUsage(block, field, path, "library")


READERS = {b"LI": read_library}
