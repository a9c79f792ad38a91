"""Readers and expanders meet damaged files: what they raise becomes a BlendFileError.

A reader knows what Blender writes (``StripData.dir`` is a ``char[768]``); a
damaged DNA can say anything (the same field as an array of structs), and the
reader then fails on a value of the wrong kind.  Every reader, built-in or
third-party, would need the same defensive checks; instead the tracer runs each
one through :func:`guarded`, which reports such a failure as a damaged file,
naming the block and the reader, with the original exception chained (``-d``
shows it).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from ..blendfile import Block
from ..errors import BatError, BlendFileError

T = TypeVar("T")

#: What a reader raises on values that are not what Blender writes.
_DAMAGE = (AttributeError, TypeError, ValueError, LookupError, ArithmeticError, struct.error)


def guarded(handler: Callable[[Block, Any], Iterator[T]], block: Block, ctx: Any) -> Iterator[T]:
    """``handler(block, ctx)``, with a failure on a damaged block reported as one."""
    try:
        yield from handler(block, ctx)
    except BatError:
        raise
    except _DAMAGE as exc:
        try:
            name = block.id_name or block.code
        except BatError:  # the name itself is damaged
            name = block.code
        who = getattr(handler, "__qualname__", repr(handler))
        raise BlendFileError(
            ctx.blendfile.path, f"block {name!r} does not read as Blender writes it "
            f"({who}: {type(exc).__name__}: {exc}); the file looks damaged"
        ) from exc
