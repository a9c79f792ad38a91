"""Blend files for tests/test_readers_media.py that the shared fixtures lack.

Run with Blender 5.0 as a Python module (4.2's has no Audaspace, so no sound strip)::

    /opt/bpy50/bin/python tests/data/gen_media_extra.py

Writes ``tests/data/media_extra/`` (wiped first), each blend file with Blender's
own answer in ``<file>.json`` (``fixturelib.save_fixture``):

* ``libs/lib.blend`` (zstd), everything with a fake user:
  brush ``LibBrush`` (texture ``BrushTex`` → ``//textures/brush.png``, mask texture
  ``MaskTex`` → ``//textures/mask.png``); particle settings ``LibParticles`` and line
  style ``LibStyle``, each with a texture slot (``//textures/particle.png``,
  ``//textures/linestyle.png``); node group ``LibGroup`` with an external IES node
  (``//lights/group.ies``); material ``LibMat`` using that group and an IES node in
  INTERNAL mode whose stale filepath ``//lights/stale.ies`` does not exist; world
  ``LibWorld`` with an external OSL script (``//shaders/world.osl``); light
  ``LibLight`` with an external IES node (``//lights/light.ies``).
* ``main.blend`` (zstd): links all of those (and uses them), plus local data:
  a sequencer with a meta strip inside a meta strip (image strip
  ``//strips/deep_0001..0002.png``), an image strip whose second element
  ``//strips/gap_0002.png`` is missing, a sound strip ``//audio/strip.wav``; a packed
  sound and a packed font (their files deleted after packing).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import bpy

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "blendfiles"))
from fixturelib import save_fixture
from gen_assets import (
    IES,
    OSL,
    _strips,
    cube_mesh,
    link_from,
    link_object,
    load_image,
    new_material,
    start,
    write_png,
    write_text,
    write_wav,
)

ROOT = Path(__file__).resolve().parent / "media_extra"


def _image_texture(name: str, png: Path, stored: str) -> bpy.types.Texture:
    tex = bpy.data.textures.new(name, "IMAGE")
    tex.image = load_image(png, stored, name + "Image")
    return tex


def _ies_node(tree, mode: str, path: str):
    node = tree.nodes.new("ShaderNodeTexIES")
    node.mode = mode  # before the path: switching to EXTERNAL clears it
    node.filepath = path
    return node


def make_library(root: Path) -> Path:
    tex_dir = root / "libs" / "textures"
    for name in ("brush", "mask", "particle", "linestyle"):
        write_png(tex_dir / f"{name}.png", (40, 80, 120))
    write_text(root / "libs" / "lights" / "group.ies", IES)
    write_text(root / "libs" / "lights" / "light.ies", IES)
    write_text(root / "libs" / "shaders" / "world.osl", OSL)

    lib = root / "libs" / "lib.blend"
    start(lib)
    brush = bpy.data.brushes.new("LibBrush", mode="TEXTURE_PAINT")
    brush.texture = _image_texture("BrushTex", tex_dir / "brush.png", "//textures/brush.png")
    brush.mask_texture = _image_texture("MaskTex", tex_dir / "mask.png", "//textures/mask.png")

    particles = bpy.data.particles.new("LibParticles")
    particles.texture_slots.add().texture = _image_texture(
        "PartTex", tex_dir / "particle.png", "//textures/particle.png")
    style = bpy.data.linestyles.new("LibStyle")
    style.texture_slots.add().texture = _image_texture(
        "StyleTex", tex_dir / "linestyle.png", "//textures/linestyle.png")

    group = bpy.data.node_groups.new("LibGroup", "ShaderNodeTree")
    _ies_node(group, "EXTERNAL", "//lights/group.ies")
    mat = new_material("LibMat")
    mat.node_tree.nodes.new("ShaderNodeGroup").node_tree = group
    _ies_node(mat.node_tree, "INTERNAL", "//lights/stale.ies")  # stale path: unused, not reported

    world = bpy.data.worlds.new("LibWorld")
    if bpy.app.version < (5, 0, 0):
        world.use_nodes = True
    osl = world.node_tree.nodes.new("ShaderNodeScript")
    osl.mode = "EXTERNAL"
    osl.filepath = "//shaders/world.osl"

    light = bpy.data.lights.new("LibLight", "POINT")
    light.use_nodes = True
    _ies_node(light.node_tree, "EXTERNAL", "//lights/light.ies")

    for idb in (brush, particles, style, group, mat, world, light):
        idb.use_fake_user = True
    save_fixture(lib, root, compress=True,
                 notes="lights/stale.ies (not reported) is the path of an IES node in INTERNAL mode.")
    return lib


def make_main(root: Path, lib: Path) -> None:
    deep = [write_png(root / "strips" / f"deep_{i:04d}.png", (9, 9, 9 * i)) for i in (1, 2)]
    gap = write_png(root / "strips" / "gap_0001.png", (1, 2, 3))
    write_wav(root / "audio" / "strip.wav", 220)
    packed_wav = write_wav(root / "audio" / "packed.wav", 440)
    fonts_dir = Path(bpy.utils.system_resource("DATAFILES", path="fonts"))
    packed_font = root / "fonts" / "packed.woff2"
    packed_font.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(fonts_dir / "NotoSansHebrew-Regular.woff2", packed_font)

    blend = root / "main.blend"
    scene = start(blend)
    linked = link_from(lib, brushes=["LibBrush"], particles=["LibParticles"], linestyles=["LibStyle"],
                       materials=["LibMat"], worlds=["LibWorld"], lights=["LibLight"])
    scene.world = linked.worlds[0]
    link_object(scene, bpy.data.objects.new("Lamp", linked.lights[0]))
    me = cube_mesh("CubeMesh")
    me.materials.append(linked.materials[0])
    cube = link_object(scene, bpy.data.objects.new("Cube", me))
    cube.modifiers.new("Particles", "PARTICLE_SYSTEM")
    own_settings = cube.particle_systems[0].settings
    cube.particle_systems[0].settings = linked.particles[0]
    bpy.data.particles.remove(own_settings)
    view_layer = scene.view_layers[0]
    view_layer.freestyle_settings.linesets.new("LineSet").linestyle = linked.linestyles[0]
    scene["brush"] = linked.brushes[0]  # 5.0 paint modes take brushes from assets only

    ed = scene.sequence_editor_create()
    outer = _strips(ed).new_meta(name="Outer", channel=1, frame_start=1)
    inner = _strips(outer).new_meta(name="Inner", channel=1, frame_start=1)
    deep_strip = _strips(inner).new_image(name="Deep", filepath=str(deep[0]), channel=1, frame_start=1)
    deep_strip.elements.append(deep[1].name)
    deep_strip.directory = "//strips/"
    gap_strip = _strips(ed).new_image(name="Gap", filepath=str(gap), channel=2, frame_start=1)
    gap_strip.elements.append("gap_0002.png")
    gap_strip.directory = "//strips/"
    snd = _strips(ed).new_sound(name="SoundStrip", filepath=str(root / "audio" / "strip.wav"),
                                channel=3, frame_start=1)
    snd.sound.filepath = "//audio/strip.wav"

    sound = bpy.data.sounds.load(str(packed_wav))
    sound.pack()
    sound.filepath = "//audio/packed.wav"
    sound.use_fake_user = True
    font = bpy.data.fonts.load(str(packed_font))
    font.pack()
    font.filepath = "//fonts/packed.woff2"
    cu = bpy.data.curves.new("PackedFontText", "FONT")
    cu.font = font
    link_object(scene, bpy.data.objects.new("PackedFontText", cu))

    bpy.ops.file.make_paths_relative()
    packed_wav.unlink()
    packed_font.unlink()
    save_fixture(
        blend, root, compress=True,
        sequences={"strips/deep_0001.png": [f"strips/{f.name}" for f in deep]},
        notes="strips/gap_0002.png is a missing strip element; the packed sound and font are not reported.",
    )


def main() -> int:
    shutil.rmtree(ROOT, ignore_errors=True)
    ROOT.mkdir(parents=True)
    lib = make_library(ROOT)
    make_main(ROOT, lib)
    for path in sorted(p for p in ROOT.rglob("*") if p.is_file()):
        print(path.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
