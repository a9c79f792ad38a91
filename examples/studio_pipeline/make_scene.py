"""Make the example's scene with Blender itself (run with a Python that has ``bpy``).

A studio add-on keeps, on each asset object, the path of the asset's
"look-dev sidecar" (a JSON file the farm's render wrapper reads) in a custom
ID property, ``studio_sidecar``.  Blender knows nothing about it: it is not
in ``bpy.utils.blend_paths()``, and bat's built-in readers do not see it.

    python examples/studio_pipeline/make_scene.py

writes ``project/shots/rock.blend`` (two objects with the property, one
pointing at a missing file), the sidecar files, and ``project/shots/rock.blend.json``
with what Blender reports: the custom property values, read back with bpy
from the saved file, and ``bpy.utils.blend_paths()``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import bpy

HERE = Path(__file__).resolve().parent
PROJECT = HERE / "project"
PROPERTY = "studio_sidecar"

SIDECARS = {
    "Rock": "//../assets/rock/rock.lookdev.json",     # exists, outside the shot's directory
    "Moss": "//sidecars/moss.lookdev.json",           # exists, next to the shot
    "Ghost": "//sidecars/ghost.lookdev.json",         # never written: missing
}


def main() -> None:
    if PROJECT.exists():
        shutil.rmtree(PROJECT)
    shots = PROJECT / "shots"
    (PROJECT / "assets" / "rock").mkdir(parents=True)
    (shots / "sidecars").mkdir(parents=True)
    (PROJECT / "assets" / "rock" / "rock.lookdev.json").write_text('{"shader": "rock_v3"}\n')
    (shots / "sidecars" / "moss.lookdev.json").write_text('{"shader": "moss_v1"}\n')

    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.context.preferences.filepaths.save_version = 0
    # Keep the file small: only the active workspace of the factory startup file.
    active = {win.workspace for wm in bpy.data.window_managers for win in wm.windows}
    bpy.data.batch_remove([ws for ws in bpy.data.workspaces if ws not in active])
    scene = bpy.context.scene
    for name, path in SIDECARS.items():
        mesh = bpy.data.meshes.new(name)
        ob = bpy.data.objects.new(name, mesh)
        ob[PROPERTY] = path
        ob["studio_version"] = 3  # another custom property the reader must ignore
        scene.collection.objects.link(ob)
    blend = shots / "rock.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend), compress=False)

    bpy.ops.wm.open_mainfile(filepath=str(blend))
    expected = {
        "blender_version": bpy.app.version_string,
        "property": PROPERTY,
        "sidecars": {ob.name: ob[PROPERTY] for ob in bpy.data.objects if PROPERTY in ob},
        "blend_paths": sorted(bpy.utils.blend_paths(absolute=False, packed=False, local=False)),
    }
    blend.with_name(blend.name + ".json").write_text(json.dumps(expected, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
