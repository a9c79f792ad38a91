"""Helpers shared by the fixture generator scripts; they run inside Blender's Python.

Every fixture blend file is saved through :func:`save_fixture`, which re-opens the
saved file the way a user would and records what Blender itself reports about it
in ``<file>.json`` beside it.  Those JSON files are the expected answers the tests
compare ``bat`` against, so nothing in them is written by hand.
"""

from __future__ import annotations

import glob
import json
import os
import re
from pathlib import Path

import bpy

# bpy.data collection name -> the two-letter ID code of its blocks in a blend file.
ID_CODES = {
    "actions": "AC", "armatures": "AR", "brushes": "BR", "cache_files": "CF",
    "cameras": "CA", "collections": "GR", "curves": "CU", "fonts": "VF",
    "grease_pencils": "GD", "images": "IM", "lattices": "LT", "libraries": "LI",
    "lights": "LA", "lightprobes": "LP", "linestyles": "LS", "masks": "MSK",
    "materials": "MA", "meshes": "ME", "metaballs": "MB", "movieclips": "MC",
    "node_groups": "NT", "objects": "OB", "paint_curves": "PC", "palettes": "PL",
    "particles": "PA", "pointclouds": "PT", "scenes": "SC", "screens": "SN",
    "shape_keys": "KE", "sounds": "SO", "speakers": "SK", "texts": "TX",
    "textures": "TE", "volumes": "VO", "window_managers": "WM", "workspaces": "WS",
    "worlds": "WO", "hair_curves": "CV",
}

_UDIM = re.compile(r"<UDIM>|<UVTILE>")


def reset() -> None:
    """Start from an empty file so fixtures stay small.

    The factory startup file still carries eleven workspaces and screens; only the
    active one is kept.  ``.blend1`` backups are switched off.
    """
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.context.preferences.filepaths.save_version = 0
    active = {win.workspace for wm in bpy.data.window_managers for win in wm.windows}
    extra = [ws for ws in bpy.data.workspaces if ws not in active]
    if active and extra:
        bpy.data.batch_remove(extra)


def _expand(path: str) -> list[str]:
    """Files on disk that one reported path stands for (sequences, UDIM tiles)."""
    if _UDIM.search(path):
        pattern = _UDIM.sub("*", path)
        return sorted(glob.glob(glob.escape(pattern).replace(r"[*]", "*")))
    return [path] if os.path.exists(path) else []


def _rel(path: str, root: Path) -> str:
    """A path relative to the fixture root when inside it, else as reported."""
    p = os.path.normpath(path)
    try:
        return Path(p).relative_to(root).as_posix()
    except ValueError:
        return p


def save_fixture(
    blend: Path,
    root: Path,
    *,
    compress: bool = False,
    sequences: dict[str, list[str]] | None = None,
    baked: list[str] | None = None,
    notes: str = "",
) -> dict:
    """Save the current file to ``blend``, re-open it and record Blender's answer.

    ``root`` is the fixture project root: paths inside it are recorded relative to
    it so the expectations hold wherever the repository is checked out.
    ``sequences`` maps a reported path (relative to root) to the files it stands for
    when Blender reports only the first one (image sequences, cache sequences).
    ``baked`` lists files (relative to root) that are dependencies Blender does not
    report through ``blend_paths`` (point caches, bake directories).

    ``blend_paths`` are Blender's absolute answers (made relative to ``root`` when
    inside it), ``stored_paths`` the same paths before being made absolute.
    """
    blend = Path(blend)
    blend.parent.mkdir(parents=True, exist_ok=True)
    bpy.context.preferences.filepaths.save_version = 0
    bpy.ops.wm.save_as_mainfile(filepath=str(blend), compress=compress, relative_remap=False)
    bpy.ops.wm.open_mainfile(filepath=str(blend))

    counts: dict[str, int] = {}
    for attr, code in ID_CODES.items():
        coll = getattr(bpy.data, attr, None)
        if coll is None:
            continue
        n = sum(1 for idb in coll if idb.library is None and not getattr(idb, "is_runtime_data", False))
        if n:
            counts[code] = n
    # Blender writes only the libraries that something is linked from directly;
    # libraries reached only through other libraries are not stored in this file.
    direct = set()
    for attr in ID_CODES:
        coll = getattr(bpy.data, attr, None)
        if coll is None or attr == "libraries":
            continue
        for idb in coll:
            if idb.library is not None and not idb.is_library_indirect:
                direct.add(idb.library.name)
    if direct:
        counts["LI"] = len(direct)
    else:
        counts.pop("LI", None)

    # NB: ``packed=False`` *skips* packed files (the flag means "include packed").
    reported = sorted(set(bpy.utils.blend_paths(absolute=True, packed=False, local=False)))
    # The same paths not made absolute: ``//`` is relative to the file (or library)
    # that holds the path.  Blender shows backslashes as ``/`` here
    # (``C:\x\y.png`` is stored as such but listed as ``C:/x/y.png``).
    stored = sorted(set(bpy.utils.blend_paths(absolute=False, packed=False, local=False)))
    existing: set[str] = set()
    missing: set[str] = set()
    blend_dir = os.path.normpath(str(blend.parent))
    for path in reported:
        if not path or os.path.normpath(path) == blend_dir:
            # An empty path field (e.g. a disk cache's unused external path) is
            # reported as the blend file's own directory: not a dependency.
            continue
        rel = _rel(path, root)
        if os.path.isdir(path):
            # A directory (bake or cache directory) stands for the files in it.
            files = sorted(_rel(os.path.join(d, f), root) for d, _, fs in os.walk(path) for f in fs)
        else:
            files = [_rel(f, root) for f in _expand(path)]
        if sequences and rel in sequences:
            files = sorted(set(files) | set(sequences[rel]))
        if files:
            existing.update(files)
        else:
            missing.add(rel)

    with open(blend, "rb") as f:
        magic = f.read(4)
    record = {
        "blender_version": bpy.app.version_string,
        "compressed": magic == b"\x28\xb5\x2f\xfd",
        "id_block_counts": counts,
        "blend_paths": [_rel(p, root) for p in reported],
        "stored_paths": stored,
        "existing_files": sorted(existing),
        "missing_files": sorted(missing),
        "baked_files": sorted(baked or []),
        "notes": notes,
    }
    blend.with_suffix(blend.suffix + ".json").write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n")
    return record
