"""What a pack-target plugin registers: a named scheme that resolves target strings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TargetScheme:
    """A kind of pack target (directory, zip, s3, shaman...).

    ``recognises`` is asked with the raw target string; ``resolve`` turns the
    string into the pack target, which knows its root path and how to transfer
    files there.  Exactly one scheme should be the ``fallback``.
    """

    name: str
    help: str
    recognises: Callable[[str], bool]
    resolve: Callable[..., Any]
    fallback: bool = False
