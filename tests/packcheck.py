"""Is what Blender loads from a pack the same as what it loads from the source?

Blender's ``bpy.utils.blend_paths`` lists the paths of a file in the order it
walks its data.  A pack keeps every data block in its place, so the packed
file's list pairs up, entry by entry, with the source's.  Each pair must name
the same content: the same bytes for a file, the same tiles for a UDIM set,
the same files for a cache or bake directory, the same data blocks for a
library (a library's bytes change when its own paths are rewritten).  A path
that is missing in the source must be missing in the pack too; every path that
exists must lie inside the pack.

Comparing names alone (or "some file exists there") would accept a pack that
points at the wrong file; comparing content does not.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from bat_core.blendfile import open_blend

TILE_TOKENS = ("<UDIM>", "<UVTILE>")


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _blend_identity(path: Path) -> tuple[str, ...]:
    """The data blocks a library holds: what Blender links from it."""
    with open_blend(path) as bf:
        return ("blend", *sorted(f"{b.code.decode('latin-1')}:{b.id_name.decode('utf-8', 'replace')}"
                                 for b in bf.id_blocks()))


def content(path: str, blend: Path | None = None) -> Any:
    """What ``path`` (as Blender reports it for ``blend``) stands for; None when it names nothing.

    An unused path field (a disk point cache's external path) is reported as ''
    or, made absolute, as the blend file's own directory: both stand for nothing.
    """
    if path == "" or (blend is not None and os.path.normpath(path) == os.path.normpath(blend.parent)):
        return ""
    p = Path(path)
    for token in TILE_TOKENS:
        if token in p.name:
            head, tail = p.name.split(token, 1)
            if not p.parent.is_dir():
                return None
            tiles = {c.name[len(head):len(c.name) - len(tail)]: _sha(c) for c in p.parent.iterdir()
                     if c.is_file() and c.name.startswith(head) and c.name.endswith(tail)}
            return ("tiles", tiles) if tiles else None
    if p.is_dir():
        return ("dir", {c.relative_to(p).as_posix(): _sha(c) for c in sorted(p.rglob("*")) if c.is_file()})
    if not p.is_file():
        return None
    if p.suffix == ".blend":
        return _blend_identity(p)
    return _sha(p)


def inside(path: str, root: Path) -> bool:
    real = os.path.realpath(path)
    top = os.path.realpath(root)
    return real == top or real.startswith(top + os.sep)


def assert_same_files(reports: dict[str, Any], source: Path, packed: Path, root: Path | None) -> None:
    """Blender's report of ``packed`` names, entry by entry, what its report of ``source`` names.

    ``reports`` maps each file Blender opened to its ``blend_paths(absolute=True)``;
    ``root`` is the top of the pack (None: the paths need not be inside anything).
    """
    was_list, now_list = reports[str(source)], reports[str(packed)]
    assert isinstance(was_list, list), was_list
    assert isinstance(now_list, list), now_list
    assert len(now_list) == len(was_list), (was_list, now_list)
    for was, now in zip(was_list, now_list, strict=True):
        want = content(was, source)
        assert content(now, packed) == want, f"{packed}'s {now!r} is not what {source.name}'s {was!r} is"
        if root is not None and want not in (None, ""):
            assert inside(now, root), f"{now} is outside the pack {root}"
