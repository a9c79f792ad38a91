"""External CustomData: multires displacement saved to a ``.btx`` file.

``multires_external_save`` moves a mesh's displacement out of the blend file;
the path is in the face-corner CustomData's ``external`` block
(``CustomDataExternal.filename``, ``filepath`` in newer sources).  The face-corner
data is ``ldata`` on disk (``corner_data`` in Blender 4.x/5.x sources, renamed
only in memory); pre-BMesh files kept it in the face data, ``fdata``.
"""

from __future__ import annotations

from collections.abc import Iterator

from bat_core.blendfile import Block
from bat_core.bpathlib import BlendPath
from bat_core.trace import BlockUsage, TraceContext

from .common import first_field

#: Where Blender has kept the external layer: the on-disk name first (it is the
#: common case and costs no failed look-up), then the in-memory one.
_CUSTOMDATA_FIELDS = ((b"ldata", b"corner_data"), (b"fdata", b"face_data"))


def read_mesh(block: Block, ctx: TraceContext) -> Iterator[BlockUsage]:
    for names in _CUSTOMDATA_FIELDS:
        for field in names:
            addr = block.get((field, b"external"), None)
            if addr is not None:
                break
        if not addr:
            continue
        external = block.get_pointer((field, b"external"), None)
        if external is None:
            continue
        path_field = first_field(external, (b"filepath", b"filename"))
        if path_field is None:
            continue
        path = external.get(path_field)
        if path:
            yield BlockUsage(external, path_field, BlendPath(path), "multires")
            return  # Blender only reads the first one it finds


READERS = {b"ME": read_mesh}
