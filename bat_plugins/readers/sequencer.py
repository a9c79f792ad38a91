"""Video sequencer strips: image, movie and sound strips, inside meta strips too.

A strip stores its path split in two: the directory in its strip data
(``Strip.dir``; Blender 5.0 calls the struct ``StripData`` in code but still
writes ``Strip``) and the file names in an array of ``StripElem``.  Image
strips list one element per file; movie and sound strips use the first.  Each
file is reported as its own usage with ``dir_only=True``: the only field a
packer rewrites is the shared directory, the file names stay as they are.

The scene reader walks every strip (meta strips recursively) and hands each to
``ctx.read``, so readers registered for the strip struct (``Sequence``) see
them all; the built-in one is :func:`read_strip`.  Sound strips also point at a
Sound datablock, which the sound reader reports.  Proxies are not reported:
Blender rebuilds them, and does not list them among a file's paths either.
"""

from __future__ import annotations

from collections.abc import Iterator

from bat_core.blendfile import Block, StructView
from bat_core.bpathlib import BlendPath
from bat_core.trace import BlockUsage, TraceContext

from .common import first_field

# Sequence.type (DNA_sequence_types.h).
SEQ_TYPE_IMAGE, SEQ_TYPE_META, SEQ_TYPE_SCENE, SEQ_TYPE_MOVIE = 0, 1, 2, 3
SEQ_TYPE_SOUND_RAM, SEQ_TYPE_SOUND_HD = 4, 5

_KINDS = {
    SEQ_TYPE_IMAGE: "sequence-image",
    SEQ_TYPE_MOVIE: "sequence-movie",
    SEQ_TYPE_SOUND_RAM: "sequence-sound",
    SEQ_TYPE_SOUND_HD: "sequence-sound",
}
#: Deeper nesting than this is taken to be corrupt data.
MAX_META_DEPTH = 64


def join_dir(directory: bytes, name: bytes) -> BlendPath:
    """``directory`` + ``name`` as Blender joins them, keeping Windows separators."""
    if not directory:
        return BlendPath(name)
    if directory.endswith((b"/", b"\\")):
        return BlendPath(directory + name)
    sep = b"\\" if b"\\" in directory and b"/" not in directory else b"/"
    return BlendPath(directory + sep + name)


def iter_strips(owner: StructView) -> Iterator[Block]:
    """Every strip of ``owner``'s ``seqbase`` and of the meta strips in it, depth first."""
    seen: set[int] = set()
    stack: list[tuple[StructView, int]] = [(owner, 0)]
    while stack:
        view, depth = stack.pop()
        if not view.has(b"seqbase"):
            continue
        children = []
        for strip in view.iter_listbase(b"seqbase"):
            if strip.addr_old in seen:
                continue
            seen.add(strip.addr_old)
            children.append(strip)
        for strip in children:
            yield strip
        for strip in reversed(children):
            if strip.get(b"type", -1) == SEQ_TYPE_META and depth < MAX_META_DEPTH:
                stack.append((strip, depth + 1))


def _elements(data: StructView) -> list[StructView]:
    """The StripElem array of a strip's data, sized by its block (like MEM_allocN_len)."""
    elems = data.get_pointer(b"stripdata", None)
    if elems is None:
        return []
    st = data.file.dna.struct_by_name.get(data.dna_type.field(b"stripdata").type_name)
    if st is None or st.size == 0:
        return []
    n = elems.size // st.size
    return [data.file.struct_at(st, elems.offset + i * st.size) for i in range(n)]


def read_strip(strip: StructView, ctx: TraceContext) -> Iterator[BlockUsage]:
    kind = _KINDS.get(strip.get(b"type", -1))
    if kind is None:
        return
    data_field = first_field(strip, (b"strip", b"data"))
    data = strip.get_pointer(data_field, None) if data_field else None
    if data is None or not data.dna_type.has_field(b"stripdata"):
        return
    directory = data.get(b"dir", b"")
    elems = _elements(data)
    if kind != "sequence-image":
        elems = elems[:1]
    for elem in elems:
        name = elem.get(b"name", b"")
        if name:
            yield BlockUsage(data, b"dir", join_dir(directory, name), kind, dir_only=True)


def read_scene(block: Block, ctx: TraceContext) -> Iterator[BlockUsage]:
    ed = block.get_pointer(b"ed", None)
    if ed is None:
        return
    for strip in iter_strips(ed):
        yield from ctx.read(strip)


# The strip struct is written as ``Sequence``; should a future DNA call it ``Strip``,
# read_strip tells it from the old ``Strip`` (strip data, no ``type``) by its fields.
READERS = {b"SC": read_scene, "Sequence": read_strip, "Strip": read_strip}
