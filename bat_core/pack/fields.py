"""Read and measure the field a usage's path is stored in.

Most paths live in fixed ``char[N]`` arrays (``Image.filepath``): a longer path
cannot be written without truncating it, and a truncated path silently breaks
the file, so the planner checks :func:`capacity` before anything is written.
A few are ``char *`` strings in a data block of their own (texts, Geometry
Nodes bake directories); Blender sets no limit on those, and neither does bat:
the rewritten copy gives the block as many bytes as the new path needs.
"""

from __future__ import annotations

from ..blendfile import StructView
from ..blendfile.dna import FieldPath


def read_stored(view: StructView, field: FieldPath) -> bytes:
    """The path as stored now (in the private copy, so after earlier rewrites too)."""
    return view.get_string(field)


def capacity(view: StructView, field: FieldPath) -> int:
    """How many bytes of path the field holds (one byte is kept for the terminating NUL).

    A ``char *`` string holds as much as a block can (its own block grows when a
    longer path is written); one that points at no block holds nothing.
    """
    _, dna_field, count = view.dna_type.locate(field)
    if dna_field.is_pointer:
        addr = view.get(field)
        blk = view.file.dereference(addr) if addr else None
        return 0 if blk is None else view.file.max_block_size - 4  # NUL and alignment
    return count - 1


def write_stored(view: StructView, field: FieldPath, value: bytes) -> None:
    """Store ``value`` in the file's private copy; ValueError when it does not fit."""
    if b"\0" in value:
        raise ValueError("a stored path cannot contain a NUL byte")
    view.set(field, value)
