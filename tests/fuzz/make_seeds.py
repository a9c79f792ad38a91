"""Make the fuzzer's seed files: small blend files that use every kind of dependency.

Run with Blender as a Python module, once per version::

    .venv/bin/python tests/fuzz/make_seeds.py                  # shot-v50.blend, lib-v50.blend
    /path/to/bpy42/bin/python tests/fuzz/make_seeds.py         # shot-v42.blend, lib-v42.blend
    python tests/fuzz/make_seeds.py --legacy /path/to/shared/legacy-blendfiles

Everything lands in ``tests/fuzz/seeds/`` (one directory, so every seed's ``//``
paths resolve there).  ``shot-vXY.blend`` (zstd) holds: a material with an
image node (``//textures/a.png``), an image sequence (``//textures/seq/f_0001.png``),
UDIM tiles (``//textures/udim/t.<UDIM>.png``), a text (``//scripts/tool.py``, a
``char *`` path), a sound (``//audio/beep.wav``), a Mesh Cache modifier
(``//cache/deform.pc2``), a sequencer image strip (``//textures/seq/``), a Geometry
Nodes simulation baked under ``//bake-vXY`` (another ``char *`` path), a cloth
disk cache, and an object linked from ``//lib-vXY.blend`` (which uses
``//textures/lib.png``).  The files are kept small: an empty factory file, one
workspace.

``--legacy`` copies two real Blender 2.79 files (``doubly_linked.blend``, which
links ``//linked_cube.blend``), gzip-compressed as 2.79's own "Compress File"
option saves them: the gzip seeds.
"""

from __future__ import annotations

import argparse
import gzip
import struct
import sys
import wave
import zlib
from pathlib import Path

SEEDS = Path(__file__).resolve().parent / "seeds"


def _png(path: Path, color: tuple[int, int, int]) -> None:
    """A 2x2 RGB PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = (b"\x00" + bytes(color) * 2) * 2
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b""))


def _wav(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(1)
        w.setframerate(8000)
        w.writeframes(bytes(128 + (40 if (i // 8) % 2 else -40) for i in range(400)))


def _pc2(path: Path, points: int = 3, frames: int = 2) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = struct.pack("<12siiffi", b"POINTCACHE2\0", 1, points, 1.0, 1.0, frames)
    path.write_bytes(data + struct.pack(f"<{3 * points * frames}f", *([0.0] * 3 * points * frames)))


def _data_files() -> None:
    _png(SEEDS / "textures" / "a.png", (200, 20, 20))
    _png(SEEDS / "textures" / "lib.png", (20, 200, 20))
    for i in (1, 2):
        _png(SEEDS / "textures" / "seq" / f"f_{i:04d}.png", (20, 20, 100 * i))
    for tile in (1001, 1002):
        _png(SEEDS / "textures" / "udim" / f"t.{tile}.png", (tile % 255, 9, 9))
    (SEEDS / "scripts").mkdir(parents=True, exist_ok=True)
    (SEEDS / "scripts" / "tool.py").write_text("print('seed')\n")
    _wav(SEEDS / "audio" / "beep.wav")
    _pc2(SEEDS / "cache" / "deform.pc2")


def _blender_seeds() -> None:
    import bpy

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "blendfiles"))
    from fixturelib import reset

    tag = "v{}{}".format(*bpy.app.version[:2])
    _data_files()
    lib, shot = SEEDS / f"lib-{tag}.blend", SEEDS / f"shot-{tag}.blend"

    def save(path: Path) -> None:
        bpy.ops.wm.save_as_mainfile(filepath=str(path), compress=True, relative_remap=False)

    def tri(name: str) -> bpy.types.Object:
        me = bpy.data.meshes.new(name + "Mesh")
        me.from_pydata([(0, 0, 0), (1, 0, 0), (0, 1, 0)], [], [(0, 1, 2)])
        ob = bpy.data.objects.new(name, me)
        bpy.context.scene.collection.objects.link(ob)
        return ob

    def image(path: str, source: str = "FILE") -> bpy.types.Image:
        img = bpy.data.images.new(Path(path).name, 2, 2)
        img.source = source
        img.filepath = path
        return img

    # The library: one object with a textured material.
    reset()
    save(lib)
    ob = tri("LibObject")
    mat = bpy.data.materials.new("LibMaterial")
    mat.use_nodes = True
    mat.node_tree.nodes.new("ShaderNodeTexImage").image = image("//textures/lib.png")
    ob.data.materials.append(mat)
    save(lib)

    reset()
    scene = bpy.context.scene
    scene.frame_start, scene.frame_end = 1, 1
    save(shot)
    ob = tri("Shot")
    mat = bpy.data.materials.new("ShotMaterial")
    mat.use_nodes = True
    for img in (image("//textures/a.png"), image("//textures/seq/f_0001.png", "SEQUENCE"),
                image("//textures/udim/t.<UDIM>.png", "TILED")):
        mat.node_tree.nodes.new("ShaderNodeTexImage").image = img
    ob.data.materials.append(mat)
    text = bpy.data.texts.load(str(SEEDS / "scripts" / "tool.py"))
    text.filepath = "//scripts/tool.py"
    text.use_fake_user = True
    sound = bpy.data.sounds.load(str(SEEDS / "audio" / "beep.wav"))
    sound.filepath = "//audio/beep.wav"
    sound.use_fake_user = True
    ob.modifiers.new("MeshCache", "MESH_CACHE").filepath = "//cache/deform.pc2"
    cloth = ob.modifiers.new("Cloth", "CLOTH")
    cloth.point_cache.use_disk_cache = True
    cloth.point_cache.name = "SeedCloth"

    editor = scene.sequence_editor_create()
    strips = editor.strips if hasattr(editor, "strips") else editor.sequences  # 5.0 renamed it
    strip = strips.new_image(name="Strip", filepath=str(SEEDS / "textures" / "seq" / "f_0001.png"),
                             channel=1, frame_start=1)
    strip.elements.append("f_0002.png")
    strip.directory = "//textures/seq/"

    # Geometry Nodes: a simulation zone baked to //bake-vXY.
    gn = tri("Sim")
    ng = bpy.data.node_groups.new("SeedGN", "GeometryNodeTree")
    ng.interface.new_socket("Geometry", in_out="INPUT", socket_type="NodeSocketGeometry")
    ng.interface.new_socket("Geometry", in_out="OUTPUT", socket_type="NodeSocketGeometry")
    gi, go = ng.nodes.new("NodeGroupInput"), ng.nodes.new("NodeGroupOutput")
    sim_in, sim_out = ng.nodes.new("GeometryNodeSimulationInput"), ng.nodes.new("GeometryNodeSimulationOutput")
    sim_in.pair_with_output(sim_out)
    if len(sim_out.state_items) == 0:
        sim_out.state_items.new("GEOMETRY", "Geometry")
    ng.links.new(gi.outputs[0], sim_in.inputs[0])
    ng.links.new(sim_in.outputs["Geometry"], sim_out.inputs["Geometry"])
    ng.links.new(sim_out.outputs["Geometry"], go.inputs[0])
    mod = gn.modifiers.new("GeometryNodes", "NODES")
    mod.node_group = ng
    mod.bake_directory = f"//bake-{tag}"
    if hasattr(mod, "bake_target"):
        mod.bake_target = "DISK"

    with bpy.data.libraries.load(str(lib), link=True, relative=True) as (_src, dst):
        dst.objects = ["LibObject"]
    scene.collection.objects.link(dst.objects[0])
    save(shot)
    bpy.context.view_layer.objects.active = gn
    with bpy.context.temp_override(object=gn, active_object=gn, selected_objects=[gn]):
        for bake in mod.bakes:
            bpy.ops.object.geometry_node_bake_single(session_uid=gn.session_uid, modifier_name=mod.name,
                                                     bake_id=bake.bake_id)
    save(shot)
    print("wrote", shot, lib)


def _legacy(src: Path) -> None:
    for name in ("doubly_linked.blend", "linked_cube.blend"):
        data = (src / name).read_bytes()
        if not data.startswith(b"BLENDER-v279"):
            raise SystemExit(f"{src / name} is not a Blender 2.79 file")
        (SEEDS / f"legacy279-{name}" if name == "doubly_linked.blend" else SEEDS / name).write_bytes(
            gzip.compress(data, 6, mtime=0))
    print("wrote the gzip-compressed 2.79 seeds")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--legacy", type=Path, help="directory of the real Blender 2.79 files")
    args = parser.parse_args()
    SEEDS.mkdir(parents=True, exist_ok=True)
    if args.legacy:
        _legacy(args.legacy)
    else:
        _blender_seeds()
    return 0


if __name__ == "__main__":
    sys.exit(main())
