"""Record what Blender reports about the Blender 2.79 files in ``tests/data/legacy279/``.

No Blender that runs here writes files this old, so the blend files are copies
of real 2.79 files (``shared/legacy-blendfiles/``, from BAT's own test files).
This script copies them (when given the directory) and, for each, writes
``<file>.json`` with what Blender itself reports after opening it::

    python tests/data/gen_legacy279.py [/path/to/legacy-blendfiles]

(a Python with ``bpy``).  Keys as in ``tests/blendfiles/README.md``:
``blend_paths`` (absolute, relative to this directory when inside it),
``stored_paths``, ``existing_files`` and ``missing_files``; plus
``libraries``: each Library datablock's stored path and whether Blender found it.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import bpy

HERE = Path(__file__).resolve().parent / "legacy279"
FILES = ("basic_file.blend", "linked_cube.blend", "doubly_linked.blend")


def _rel(path: str) -> str:
    p = Path(os.path.normpath(path))
    return p.relative_to(HERE).as_posix() if p.is_relative_to(HERE) else str(p)


def record(blend: Path) -> dict:  # type: ignore[type-arg]
    bpy.ops.wm.open_mainfile(filepath=str(blend), load_ui=False)
    reported = sorted(set(bpy.utils.blend_paths(absolute=True, packed=False, local=False)))
    stored = sorted(set(bpy.utils.blend_paths(absolute=False, packed=False, local=False)))
    out = {
        "blender_version": bpy.app.version_string,
        "saved_by": f"{bpy.data.version[0]}.{bpy.data.version[1]}",
        "blend_paths": [_rel(p) for p in reported],
        "stored_paths": stored,
        "existing_files": sorted(_rel(p) for p in reported if os.path.isfile(p)),
        "missing_files": sorted(_rel(p) for p in reported if not os.path.exists(p)),
        "libraries": [{"stored": lib.filepath, "found": not lib.is_missing}
                      for lib in sorted(bpy.data.libraries, key=lambda li: li.filepath)],
    }
    blend.with_name(blend.name + ".json").write_text(json.dumps(out, indent=2) + "\n")
    return out


def main(argv: list[str]) -> int:
    if argv:
        src = Path(argv[0])
        HERE.mkdir(exist_ok=True)
        for name in FILES:
            shutil.copyfile(src / name, HERE / name)
            os.chmod(HERE / name, 0o644)
    for name in FILES:
        print(name, record(HERE / name))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
