"""Ask Blender itself (``bpy``, in a subprocess) what a blend file refers to and what it finds.

Tests use it as the judge of a pack: Blender opens each file and reports the
paths it knows (``bpy.utils.blend_paths``), which libraries it could load and
which images it could read.  One process handles a whole list of files.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

NO_BPY = ("bpy (Blender as a Python module) is not importable in this Python; "
          "these tests open blend files with it (pip install bpy==5.0.1, Python 3.11 only)")
needs_bpy = pytest.mark.skipif(importlib.util.find_spec("bpy") is None, reason=NO_BPY)

_SCRIPT = r"""
import json, os, sys
import bpy
files = json.load(open(sys.argv[1]))
out = {}
for f in files:
    try:
        bpy.ops.wm.open_mainfile(filepath=f, load_ui=False)
    except Exception as exc:
        out[f] = {"error": str(exc)}
        continue
    images = {}
    for img in bpy.data.images:
        if img.source in {"FILE", "SEQUENCE", "TILED"} and not img.packed_file:
            img.reload()
            images[img.name] = {"stored": img.filepath, "loaded": bool(img.has_data),
                                "size": list(img.size), "library": img.library.filepath if img.library else None}
    out[f] = {
        "blend_paths": bpy.utils.blend_paths(absolute=True, packed=False, local=False),
        "libraries": {lib.name: {"stored": lib.filepath, "found": not lib.is_missing}
                      for lib in bpy.data.libraries},
        "images": images,
        "missing_ids": sorted(idb.name for coll in (bpy.data.objects, bpy.data.collections,
                                                   bpy.data.materials, bpy.data.meshes)
                              for idb in coll if getattr(idb, "is_missing", False)),
    }
json.dump(out, open(sys.argv[2], "w"))
"""


def blender_report(files: list[Path], workdir: Path) -> dict[str, Any]:
    """Open every file in one Blender process; path -> what Blender found (skips without bpy)."""
    if importlib.util.find_spec("bpy") is None:
        pytest.skip(NO_BPY)
    listing = workdir / "blender-files.json"
    report = workdir / "blender-report.json"
    listing.write_text(json.dumps([str(f) for f in files]))
    proc = subprocess.run([sys.executable, "-c", _SCRIPT, str(listing), str(report)],
                          capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    if proc.returncode != 0 and "import bpy" in proc.stderr and "Error" in proc.stderr:
        pytest.skip(f"{NO_BPY}: {proc.stderr.strip().splitlines()[-1]}")
    assert proc.returncode == 0 and report.exists(), proc.stderr[-3000:]
    return json.loads(report.read_text())  # type: ignore[no-any-return]
