"""A blend file's block index, kept in its memo: an unchanged file is not scanned again.

The header scan is one pure-Python step per block (about a third of a
``bat list`` of a production scene).  Its result depends on nothing but the
file's bytes, so :class:`~bat_core.blendfile.file.BlendFile` stores it in the
file's memo (``memo.py``: keyed by the file's identity) and the next open of
the same bytes loads the arrays instead.  A loaded index is checked against the
bytes it describes where that is cheap: the end block is ``ENDB`` and sampled
blocks' headers carry the addresses the index gives them.
"""

from __future__ import annotations

import functools
import struct
import sys
from array import array
from typing import Any, NamedTuple

from .header import BlendHeader
from .memo import code_version

SECTION = "index"
#: Files with fewer blocks are scanned: the scan is quicker than reading a memo file.
MIN_BLOCKS = 1_000


@functools.cache
def version() -> str:
    """The code the index depends on, and this machine's byte order (the arrays are stored raw)."""
    return code_version(__file__.replace("index_memo", "file"), __file__.replace("index_memo", "header"),
                        __file__) + sys.byteorder


# blocks, buckets, end position, special blocks, position item size
_HEAD = struct.Struct("<QQQQB")
#: Blocks whose headers are checked when an index is loaded (besides the first and last).
_SAMPLES = 64


class Index(NamedTuple):
    addrs: array[int]
    pos: array[int]
    links: array[int]
    heads: array[int]
    buckets: int
    end_pos: int
    special: list[int]


def encode(index: Index) -> bytes | None:
    """The index as memo bytes; None when it is too small to be worth one or cannot be stored."""
    if len(index.addrs) < MIN_BLOCKS or array("I").itemsize != 4:
        return None
    special = array("Q", index.special)
    head = _HEAD.pack(len(index.addrs), index.buckets, index.end_pos, len(special), index.pos.itemsize)
    return b"".join([head, index.addrs.tobytes(), index.pos.tobytes(), index.links.tobytes(),
                     index.heads.tobytes(), special.tobytes()])


def decode(data: bytes, buf: Any, header: BlendHeader) -> Index | None:
    """The index stored in ``data``, if it fits ``buf`` (the file's bytes); None otherwise."""
    if array("I").itemsize != 4 or len(data) < _HEAD.size:
        return None
    n, buckets, end_pos, n_special, pos_size = _HEAD.unpack_from(data)
    if pos_size not in (4, 8) or not buckets or n == 0:
        return None
    sizes = (8 * n, pos_size * n, 4 * n, 4 * buckets, 8 * n_special)
    if _HEAD.size + sum(sizes) != len(data):
        return None
    parts = []
    at = _HEAD.size
    for code, size in zip(("Q", "I" if pos_size == 4 else "Q", "I", "I", "Q"), sizes, strict=True):
        part = array(code)
        part.frombytes(data[at : at + size])
        parts.append(part)
        at += size
    addrs, pos, links, heads, special = parts
    hsize = header.block_header_struct.size
    if end_pos + hsize > len(buf) or bytes(buf[end_pos : end_pos + 4]) != b"ENDB":
        return None
    scan = header.scan_struct.unpack_from
    large = header.format_version == 1
    for i in {0, n - 1, *range(0, n, max(1, n // _SAMPLES))}:
        at = pos[i]
        if at + hsize > end_pos:
            return None
        fields = scan(buf, at)
        if (fields[1] if large else fields[2]) != addrs[i]:
            return None
    return Index(addrs, pos, links, heads, buckets, end_pos, special.tolist())
