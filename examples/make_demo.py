"""Build the small demo project in ``examples/demo/`` with Blender.

    /opt/bpy50/bin/python examples/make_demo.py

The project::

    demo/
      shot.blend              zstd-compressed; links the "Props" collection
      shot.blend.json         what Blender reports as shot.blend's dependencies
      textures/               floor_color.png, floor_rough.png, brick.png
      audio/ambience.wav      played by a speaker in the shot
      lib/props.blend         uncompressed library with a crate and a barrel
      lib/props.blend.json
      lib/textures/wood.png   referenced from props.blend as //textures/wood.png

Everything is regenerated from scratch; the images and the sound are written by
this script (tiny PNGs and a one-second WAV), the blend files are saved by Blender.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "blendfiles"))

import bpy  # noqa: E402
from fixturelib import save_fixture  # noqa: E402
from gen_assets import (  # noqa: E402
    add_image_node,
    cube_mesh,
    instance_collection,
    link_from,
    link_object,
    load_image,
    new_collection,
    new_material,
    start,
    write_png,
    write_wav,
)

DEMO = HERE / "demo"


def textured_material(name: str, color_image, rough_image=None):
    mat = new_material(name)
    add_image_node(mat, color_image, link=True)
    if rough_image is not None:
        rough_image.colorspace_settings.name = "Non-Color"
        node = add_image_node(mat, rough_image, y=-300)
        tree = mat.node_tree
        tree.links.new(node.outputs["Color"], tree.nodes["Principled BSDF"].inputs["Roughness"])
    return mat


def mesh_object(scene, name: str, mat, size=1.0, location=(0, 0, 0), scale=(1, 1, 1), collection=None):
    me = cube_mesh(name + "Mesh", size)
    me.materials.append(mat)
    ob = bpy.data.objects.new(name, me)
    ob.location = location
    ob.scale = scale
    return link_object(scene, ob, collection)


def make_props(blend: Path) -> None:
    write_png(blend.parent / "textures" / "wood.png", (140, 95, 50), 16, checker=(110, 70, 35), cell=2)
    scene = start(blend)
    props = new_collection(scene, "Props")
    wood = textured_material("Wood", load_image(blend.parent / "textures" / "wood.png", "//textures/wood.png", "wood"))
    mesh_object(scene, "Crate", wood, 1.0, (0, 0, 0.5), collection=props)
    mesh_object(scene, "Barrel", wood, 1.0, (1.5, 0, 0.6), (0.6, 0.6, 1.2), collection=props)
    save_fixture(blend, blend.parent.parent, compress=False, notes="Demo library, saved uncompressed.")


def make_shot(blend: Path, props: Path) -> None:
    tex = DEMO / "textures"
    write_png(tex / "floor_color.png", (180, 180, 170), 16, checker=(60, 60, 70), cell=4)
    write_png(tex / "floor_rough.png", (200, 200, 200), 8, checker=(120, 120, 120), cell=1)
    write_png(tex / "brick.png", (150, 50, 40), 16, checker=(200, 190, 180), cell=4)
    write_wav(DEMO / "audio" / "ambience.wav", freq=220.0, seconds=1.0)

    scene = start(blend)
    scene.frame_start, scene.frame_end = 1, 48

    floor_mat = textured_material(
        "Floor",
        load_image(tex / "floor_color.png", "//textures/floor_color.png", "floor_color"),
        load_image(tex / "floor_rough.png", "//textures/floor_rough.png", "floor_rough"),
    )
    brick_mat = textured_material("Brick", load_image(tex / "brick.png", "//textures/brick.png", "brick"))
    mesh_object(scene, "Floor", floor_mat, 1.0, (0, 0, -0.05), (10, 10, 0.1))
    mesh_object(scene, "Wall", brick_mat, 1.0, (0, 3, 1.5), (6, 0.3, 3))
    mesh_object(scene, "Pillar", brick_mat, 1.0, (-2.5, 1, 1.5), (0.5, 0.5, 3))

    [props_coll] = link_from(props, collections=["Props"]).collections
    instance_collection(scene, props_coll, "Props", (0.5, 0, 0))

    cam = link_object(scene, bpy.data.objects.new("Camera", bpy.data.cameras.new("Camera")))
    cam.location = (6, -7, 4)
    cam.rotation_euler = (1.15, 0, 0.7)
    scene.camera = cam
    sun = link_object(scene, bpy.data.objects.new("Sun", bpy.data.lights.new("Sun", "SUN")))
    sun.rotation_euler = (0.6, 0.2, 0.5)

    sound = bpy.data.sounds.load(str(DEMO / "audio" / "ambience.wav"))
    sound.filepath = "//audio/ambience.wav"
    speaker = bpy.data.speakers.new("Ambience")
    speaker.sound = sound
    link_object(scene, bpy.data.objects.new("Ambience", speaker)).location = (0, 1, 2)

    save_fixture(blend, DEMO, compress=True, notes="Demo shot, saved zstd-compressed; links lib/props.blend.")


def main() -> None:
    if DEMO.exists():
        shutil.rmtree(DEMO)
    DEMO.mkdir(parents=True)
    props = DEMO / "lib" / "props.blend"
    make_props(props)
    make_shot(DEMO / "shot.blend", props)
    total = sum(f.stat().st_size for f in DEMO.rglob("*") if f.is_file())
    print(f"demo project: {total / 1024:.0f} KiB in {DEMO}")


if __name__ == "__main__":
    main()
