"""Blend files whose ``char *`` paths must grow when they are packed.

Run with Blender as a Python module (5.0 and 4.2)::

    .venv/bin/python tests/data/gen_grow_paths.py            # -> tests/data/grow_paths/v50/
    /path/to/bpy42/bin/python tests/data/gen_grow_paths.py   # -> tests/data/grow_paths/v42/

Writes ``tests/data/grow_paths/v<major><minor>/`` (wiped first):

* ``outside/<STUDIO>/scripts/tool.py``: a pipeline script, outside the project.
* ``outside/<STUDIO>/textures/rig_mask.png``: an image, outside the project.
* ``proj/shot.blend`` (zstd): the project.  Text ``tool.py`` loaded from
  ``//../outside/<STUDIO>/scripts/tool.py`` (fake user); image ``rig_mask.png``
  from ``//../outside/<STUDIO>/textures/rig_mask.png`` (fake user); object
  ``Sim`` with a Geometry Nodes modifier whose simulation zone is baked (frames
  1-2) under the modifier's bake directory ``//../outside/<CACHES>/gn_bake``
  and whose Bake node is baked to its own custom directory
  ``//../outside/<CACHES>/gn_bake_custom``.  ``proj/shot.blend.json`` holds what
  Blender reports (``fixturelib``).

``<STUDIO>`` and ``<CACHES>`` are long directory names, as studio paths are.
The text and bake paths live in ``char *`` strings (``Text.filepath``,
``NodesModifierData.bake_directory``, ``NodesModifierBake.directory``), each in a
data block sized to the string; the image's in ``Image.filepath[1024]``.
Packed with ``proj/`` as the project, the files go under
``_outside_project/<absolute path>/`` and every one of these paths gets longer:
each ``char *`` one longer than the block that holds it.
"""

from __future__ import annotations

import shutil
import struct
import sys
import zlib
from pathlib import Path

import bpy

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "blendfiles"))
from fixturelib import reset, save_fixture

V = bpy.app.version[:2]
ROOT = Path(__file__).resolve().parent / "grow_paths" / f"v{V[0]}{V[1]}"
#: Long directory names, as a studio's shared tools and caches have.
STUDIO = "studio-pipeline/shared-tools-for-every-show-and-sequence"
CACHES = "studio-pipeline/simulation-caches-of-shot010-lighting"


def _png(path: Path) -> None:
    """A 4x4 red PNG, written without an image library."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\0" + b"\xff\0\0" * 4 for _ in range(4))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 4, 4, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def _geometry_tree(name: str) -> bpy.types.NodeTree:
    ng = bpy.data.node_groups.new(name, "GeometryNodeTree")
    ng.interface.new_socket("Geometry", in_out="INPUT", socket_type="NodeSocketGeometry")
    ng.interface.new_socket("Geometry", in_out="OUTPUT", socket_type="NodeSocketGeometry")
    return ng


def _sim_and_bake_tree() -> bpy.types.NodeTree:
    """Group input -> Bake node -> simulation zone (moves up each frame) -> output.

    (A Bake node downstream of a simulation zone makes 5.0 bake no simulation
    frames headless, so the Bake node comes first.)
    """
    ng = _geometry_tree("GrowMain")
    nodes, links = ng.nodes, ng.links
    gi, go = nodes.new("NodeGroupInput"), nodes.new("NodeGroupOutput")
    bake = nodes.new("GeometryNodeBake")
    if len(bake.bake_items) == 0:  # 5.0 creates the node without items from Python
        bake.bake_items.new("GEOMETRY", "Geometry")
    links.new(gi.outputs[0], bake.inputs[0])
    sim_in = nodes.new("GeometryNodeSimulationInput")
    sim_out = nodes.new("GeometryNodeSimulationOutput")
    sim_in.pair_with_output(sim_out)
    if len(sim_out.state_items) == 0:
        sim_out.state_items.new("GEOMETRY", "Geometry")
    links.new(bake.outputs[0], sim_in.inputs[0])
    move = nodes.new("GeometryNodeTransform")
    move.inputs["Translation"].default_value = (0, 0, 0.1)
    links.new(sim_in.outputs["Geometry"], move.inputs["Geometry"])
    links.new(move.outputs[0], sim_out.inputs["Geometry"])
    links.new(sim_out.outputs["Geometry"], go.inputs[0])
    return ng


def _tiny_mesh() -> bpy.types.Mesh:
    me = bpy.data.meshes.new("SimMesh")
    me.from_pydata([(0, 0, 0), (1, 0, 0), (0, 1, 0)], [], [(0, 1, 2)])
    return me


def _bake(obj: bpy.types.Object, mod: bpy.types.Modifier) -> None:
    view_layer = bpy.context.view_layer
    view_layer.objects.active = obj
    obj.select_set(True)
    for bake in mod.bakes:
        with bpy.context.temp_override(object=obj, active_object=obj, selected_objects=[obj]):
            bpy.ops.object.geometry_node_bake_single(
                session_uid=obj.session_uid, modifier_name=mod.name, bake_id=bake.bake_id
            )


def _files_under(root: Path, *dirs: str) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for d in dirs for p in (root / d).rglob("*") if p.is_file())


def main() -> int:
    shutil.rmtree(ROOT, ignore_errors=True)
    script = ROOT / "outside" / STUDIO / "scripts" / "tool.py"
    script.parent.mkdir(parents=True)
    script.write_text("print('a script kept outside the project')\n")
    mask = ROOT / "outside" / STUDIO / "textures" / "rig_mask.png"
    mask.parent.mkdir(parents=True)
    _png(mask)
    blend = ROOT / "proj" / "shot.blend"
    blend.parent.mkdir(parents=True)

    reset()
    scene = bpy.context.scene
    scene.frame_start, scene.frame_end = 1, 2
    bpy.ops.wm.save_as_mainfile(filepath=str(blend), compress=True)  # so that // paths resolve

    text = bpy.data.texts.load(str(script))
    text.filepath = f"//../outside/{STUDIO}/scripts/tool.py"
    text.use_fake_user = True
    image = bpy.data.images.load(str(mask))
    image.filepath = f"//../outside/{STUDIO}/textures/rig_mask.png"
    image.use_fake_user = True

    obj = bpy.data.objects.new("Sim", _tiny_mesh())
    scene.collection.objects.link(obj)
    mod = obj.modifiers.new("GeometryNodes", "NODES")
    mod.node_group = _sim_and_bake_tree()
    mod.bake_directory = f"//../outside/{CACHES}/gn_bake"
    if hasattr(mod, "bake_target"):  # 4.3+: bakes can also be packed into the blend file
        mod.bake_target = "DISK"
    for bake in mod.bakes:
        if bake.node is not None and bake.node.bl_idname == "GeometryNodeBake":
            bake.use_custom_path = True
            bake.directory = f"//../outside/{CACHES}/gn_bake_custom"
            if hasattr(bake, "bake_target"):
                bake.bake_target = "DISK"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend), compress=True)
    _bake(obj, mod)

    baked = _files_under(ROOT, f"outside/{CACHES}/gn_bake", f"outside/{CACHES}/gn_bake_custom")
    if not any(p.startswith(f"outside/{CACHES}/gn_bake/") for p in baked) or not any(
            p.startswith(f"outside/{CACHES}/gn_bake_custom/") for p in baked):
        raise SystemExit(f"the bakes wrote nothing useful: {baked}")
    save_fixture(blend, ROOT, compress=True, baked=baked, notes=(
        f"Text 'tool.py' from //../outside/{STUDIO}/scripts/tool.py and image 'rig_mask.png' from "
        f"//../outside/{STUDIO}/textures/rig_mask.png (both fake users); GN modifier on 'Sim': "
        f"simulation zone baked under //../outside/{CACHES}/gn_bake/<bake id>/, Bake node under the "
        f"custom directory //../outside/{CACHES}/gn_bake_custom/. The text and bake paths are char * "
        "strings outside the project (proj/), so packing them makes each one longer than its string "
        "block; the image path grows inside Image.filepath[1024]."))
    for path in sorted(p for p in ROOT.rglob("*") if p.is_file()):
        print(path.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
