"""Small helpers shared by the built-in block readers."""

from __future__ import annotations

from collections.abc import Sequence

from bat_core.blendfile import StructView
from bat_core.bpathlib import BlendPath


def first_field(view: StructView, names: Sequence[bytes]) -> bytes | None:
    """The first of ``names`` that the struct has (fields get renamed across versions)."""
    st = view.dna_type
    for name in names:
        if st.has_field(name):
            return name
    return None


def path_field(view: StructView, names: Sequence[bytes] = (b"filepath", b"name")) -> tuple[bytes, BlendPath] | None:
    """(field name, stored path) of the first existing path field, None when empty."""
    name = first_field(view, names)
    if name is None:
        return None
    value = view.get(name)
    if not value:
        return None
    return name, BlendPath(value)


def is_packed(view: StructView) -> bool:
    """True when the datablock carries its file inside the blend file."""
    if view.get(b"packedfile", 0):
        return True
    if view.has(b"packedfiles"):
        return bool(view.get((b"packedfiles", b"first")))
    return False
