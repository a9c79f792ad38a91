"""Fixture scenarios for asset dependencies: images, libraries, sounds, fonts, ...

Runs inside Blender's Python (see ``generate.py``).  Every scenario is a function
``scenario(root)`` that builds a small project under the empty directory ``root``
and saves its blend files through :func:`fixturelib.save_fixture`, which records
Blender's own view of the dependencies next to each file.

All paths are stored relative (``//...``) unless a scenario deliberately stores an
absolute or foreign one.
"""

from __future__ import annotations

import math
import shutil
import struct
import wave
import zlib
from collections.abc import Callable
from pathlib import Path

import bpy
from fixturelib import reset, save_fixture

V5 = bpy.app.version >= (5, 0, 0)


# ---------------------------------------------------------------------------
# Small, deterministic data files written without Blender.


def write_png(path: Path, color=(255, 0, 0), size: int = 4, checker=None, cell: int = 2) -> Path:
    """A valid ``size`` x ``size`` RGB PNG filled with ``color``.

    With ``checker`` (a second colour) it is a checkerboard of ``cell``-pixel squares.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    rows = b"".join(
        b"\x00"
        + b"".join(bytes(checker if checker and (x // cell + y // cell) % 2 else color) for x in range(size))
        for y in range(size)
    )
    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(rows, 9))
        + chunk(b"IEND", b"")
    )
    path.write_bytes(png)
    return path


def write_wav(path: Path, freq: float = 440.0, seconds: float = 0.1, rate: int = 8000) -> Path:
    """A real mono 8-bit PCM WAV file with a short sine beep."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = int(rate * seconds)
    frames = bytes(128 + int(100 * math.sin(2 * math.pi * freq * i / rate)) for i in range(n))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(1)
        w.setframerate(rate)
        w.writeframes(frames)
    return path


def write_text(path: Path, text: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8", newline="\n")
    return path


def make_movie(path: Path, frames: int = 3) -> Path:
    """Render a tiny real MPEG-4 movie with Blender's own FFmpeg.

    Only the sequencer is rendered (a colour strip), so no GPU is needed.  This
    replaces the current file; call it before building the scenario.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    reset()
    scene = _scene()
    r = scene.render
    r.resolution_x = r.resolution_y = 16
    r.resolution_percentage = 100
    r.fps = 24
    scene.frame_start, scene.frame_end = 1, frames
    strip = _strips(scene.sequence_editor_create()).new_effect(
        name="Color", type="COLOR", channel=1, frame_start=1,
        **({"length": frames} if V5 else {"frame_end": frames + 1}),
    )
    strip.color = (0.2, 0.4, 0.8)
    ims = r.image_settings
    if hasattr(ims, "media_type"):  # Blender 5.0
        ims.media_type = "VIDEO"
    ims.file_format = "FFMPEG"
    r.ffmpeg.format = "MPEG4"
    r.ffmpeg.codec = "MPEG4"
    r.ffmpeg.audio_codec = "NONE"
    r.use_file_extension = True
    out_dir = path.parent / "_render"
    r.filepath = str(out_dir / "movie_")
    r.use_sequencer = True
    for prop in r.bl_rna.properties:  # no date/time/host metadata in the movie
        if prop.identifier.startswith("use_stamp"):
            setattr(r, prop.identifier, False)
    r.use_compositing = False
    bpy.ops.render.render(animation=True)
    [produced] = list(out_dir.iterdir())
    shutil.move(str(produced), str(path))
    out_dir.rmdir()
    reset()
    return path


# ---------------------------------------------------------------------------
# Blender helpers.


def _scene() -> bpy.types.Scene:
    return bpy.data.scenes[0] if bpy.data.scenes else bpy.data.scenes.new("Scene")


def _strips(owner):
    """Sequencer strip collection: ``strips`` in 5.0, ``sequences`` before."""
    return owner.strips if hasattr(owner, "strips") else owner.sequences


def start(blend: Path) -> bpy.types.Scene:
    """Empty file saved at ``blend`` so that ``//`` paths resolve while building."""
    reset()
    blend.parent.mkdir(parents=True, exist_ok=True)
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    return _scene()


def link_object(scene, ob, collection=None):
    (collection or scene.collection).objects.link(ob)
    return ob


def cube_mesh(name: str, size: float = 1.0) -> bpy.types.Mesh:
    s = size / 2
    verts = [(x, y, z) for x in (-s, s) for y in (-s, s) for z in (-s, s)]
    faces = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    me = bpy.data.meshes.new(name)
    me.from_pydata(verts, [], faces)
    me.update()
    uv = me.uv_layers.new(name="UVMap")
    for loop in me.loops:
        v = me.vertices[loop.vertex_index].co
        uv.data[loop.index].uv = (v.x + 0.5, v.y + 0.5)
    return me


def new_material(name: str) -> bpy.types.Material:
    mat = bpy.data.materials.new(name)
    if not V5:
        mat.use_nodes = True
    if not mat.node_tree.nodes.get("Principled BSDF"):  # 5.0 starts from an empty tree
        tree = mat.node_tree
        bsdf = tree.nodes.new("ShaderNodeBsdfPrincipled")
        out = tree.nodes.get("Material Output") or tree.nodes.new("ShaderNodeOutputMaterial")
        tree.links.new(bsdf.outputs[0], out.inputs[0])
    return mat


def add_image_node(mat, image, x: int = -400, y: int = 0, link: bool = False):
    tree = mat.node_tree
    node = tree.nodes.new("ShaderNodeTexImage")
    node.image = image
    node.location = (x, y)
    if link:
        bsdf = tree.nodes["Principled BSDF"]
        tree.links.new(node.outputs["Color"], bsdf.inputs["Base Color"])
    return node


def load_image(abs_path: Path, stored: str, name: str | None = None) -> bpy.types.Image:
    """Load an image file, storing its path as ``stored`` (normally ``//...``).

    ``//`` paths are loaded as such (the blend file is already saved), so no
    absolute path of the generating machine ends up anywhere in the file.
    """
    assert Path(abs_path).is_file(), abs_path
    img = bpy.data.images.load(stored if stored.startswith("//") else str(abs_path))
    img.filepath = stored
    if name:
        img.name = name
    return img


def path_only_image(name: str, stored: str) -> bpy.types.Image:
    """An image datablock pointing at a file that does not exist."""
    img = bpy.data.images.new(name, 4, 4)
    img.source = "FILE"
    img.filepath = stored
    return img


def textured_object(scene, name: str, image, collection=None, size: float = 1.0):
    """A cube with a material showing ``image``."""
    mat = new_material(name + "Mat")
    if image is not None:
        add_image_node(mat, image, link=True)
    me = cube_mesh(name + "Mesh", size)
    me.materials.append(mat)
    ob = bpy.data.objects.new(name, me)
    link_object(scene, ob, collection)
    return ob


def new_collection(scene, name: str) -> bpy.types.Collection:
    coll = bpy.data.collections.new(name)
    scene.collection.children.link(coll)
    return coll


def instance_collection(scene, coll, name: str | None = None, location=(0, 0, 0)):
    empty = bpy.data.objects.new(name or (coll.name + "Instance"), None)
    empty.instance_type = "COLLECTION"
    empty.instance_collection = coll
    empty.location = location
    scene.collection.objects.link(empty)
    return empty


def link_from(lib_path: Path, stored_rel: bool = True, **names: list[str]):
    """Link IDs from a library (``collections=[...]``, ``objects=[...]``, ...)."""
    with bpy.data.libraries.load(str(lib_path), link=True, relative=stored_rel) as (data_from, data_to):
        for attr, wanted in names.items():
            available = set(getattr(data_from, attr))
            missing = set(wanted) - available
            if missing:
                raise RuntimeError(f"{lib_path}: no {attr} {sorted(missing)}")
            setattr(data_to, attr, list(wanted))
    return data_to


# ---------------------------------------------------------------------------
# Scenarios.


def basic(root: Path) -> None:
    """Cube, camera, light and a material: no external dependencies at all."""
    scene = start(root / "basic.blend")
    mat = new_material("CubeMat")
    mat.diffuse_color = (0.8, 0.2, 0.1, 1.0)
    me = cube_mesh("CubeMesh", 2.0)
    me.materials.append(mat)
    link_object(scene, bpy.data.objects.new("Cube", me))
    cam = link_object(scene, bpy.data.objects.new("Camera", bpy.data.cameras.new("Camera")))
    cam.location = (7, -7, 5)
    cam.rotation_euler = (1.1, 0, 0.785)
    scene.camera = cam
    light = link_object(scene, bpy.data.objects.new("Light", bpy.data.lights.new("Light", "POINT")))
    light.location = (4, 1, 6)
    notes = "No external files; the same content saved plain and zstd-compressed."
    save_fixture(root / "basic.blend", root, compress=False, notes=notes)
    save_fixture(root / "basic-zstd.blend", root, compress=True, notes=notes)


def images(root: Path) -> None:
    """Every kind of image path: single, sequence, UDIM, movie, packed, missing, odd names."""
    tex = root / "textures"
    write_png(tex / "single.png", (200, 30, 30))
    seq = [write_png(tex / "seq" / f"frame_{i:04d}.png", (40 * i, 80, 80)) for i in range(1, 6)]
    for tile in (1001, 1002, 1011):
        write_png(tex / "udim" / f"color.{tile}.png", (tile % 256, 120, 40))
    write_png(tex / "tëxture ü 1.png", (10, 200, 10))
    make_movie(tex / "clip.mp4")
    packed_src = write_png(tex / "packed.png", (1, 2, 3))

    blend = root / "images.blend"
    scene = start(blend)
    mat = new_material("ImagesMat")
    imgs = []

    imgs.append(load_image(tex / "single.png", "//textures/single.png", "single"))

    img = load_image(seq[0], "//textures/seq/frame_0001.png", "sequence")
    img.source = "SEQUENCE"
    imgs.append(img)

    img = load_image(tex / "udim" / "color.1001.png", "//textures/udim/color.1001.png", "udim")
    img.source = "TILED"
    img.filepath = "//textures/udim/color.<UDIM>.png"
    for tile in (1002, 1011):
        if not img.tiles.get(tile):
            img.tiles.new(tile_number=tile)
    imgs.append(img)

    img = load_image(tex / "clip.mp4", "//textures/clip.mp4", "movie")
    img.source = "MOVIE"
    imgs.append(img)

    img = load_image(packed_src, "//textures/packed.png", "packed")
    img.pack()
    assert img.packed_file is not None
    for packed in img.packed_files:  # Blender records the absolute source path here
        packed.filepath = "//textures/packed.png"
    imgs.append(img)

    imgs.append(path_only_image("missing", "//textures/missing.png"))
    imgs.append(load_image(tex / "tëxture ü 1.png", "//textures/tëxture ü 1.png", "unicode"))
    imgs.append(path_only_image("absolute", "/nonexistent/bat-fixture/abs.png"))
    imgs.append(path_only_image("windows", "C:\\textures\\win.png"))

    for i, img in enumerate(imgs):
        node = add_image_node(mat, img, y=-300 * i, link=(i == 0))
        if img.source in {"SEQUENCE", "MOVIE"}:
            node.image_user.frame_duration = 5 if img.source == "SEQUENCE" else 3
            node.image_user.use_auto_refresh = True
    me = cube_mesh("PlaneMesh")
    me.materials.append(mat)
    link_object(scene, bpy.data.objects.new("Textured", me))
    packed_src.unlink()  # the packed image's file is gone: only the packed copy remains

    seq_rel = [f"textures/seq/frame_{i:04d}.png" for i in range(1, 6)]
    sequences = {seq_rel[0]: seq_rel}
    notes = (
        "packed.png is packed (and absent on disk) so it is not a dependency; "
        "the image sequence textures/seq/frame_0001..0005 is reported by Blender as its first frame; "
        "the UDIM image as color.<UDIM>.png (tiles 1001, 1002, 1011 exist)."
    )
    save_fixture(blend, root, sequences=sequences, notes=notes)
    save_fixture(root / "images-zstd.blend", root, compress=True, sequences=sequences, notes=notes)


def libraries(root: Path) -> None:
    """Linked libraries: nested, parent directory, odd name, linked twice, a cycle.

    shot.blend and char.blend are saved plain, the other libraries zstd-compressed,
    so a trace crosses both kinds of file (and the fixtures stay small).
    """
    libs = root / "libs"
    write_png(libs / "sub" / "textures" / "prop.png", (150, 100, 50))
    write_png(libs / "textures" / "char.png", (200, 160, 140))
    write_png(libs / "textures" / "bïg prop.png", (90, 90, 200))
    write_png(libs / "textures" / "cycle.png", (0, 0, 0))
    write_png(root / "textures" / "set.png", (30, 120, 30))
    write_png(root / "shots" / "textures" / "shot.png", (250, 250, 0))

    # libs/sub/prop.blend: the deepest library.
    prop = libs / "sub" / "prop.blend"
    scene = start(prop)
    coll = new_collection(scene, "PropColl")
    img = load_image(libs / "sub" / "textures" / "prop.png", "//textures/prop.png", "prop")
    textured_object(scene, "Prop", img, coll, 0.5)
    save_fixture(prop, root, compress=True)

    # libs/char.blend: own texture, links the prop collection two levels down.
    char = libs / "char.blend"
    scene = start(char)
    coll = new_collection(scene, "CharColl")
    img = load_image(libs / "textures" / "char.png", "//textures/char.png", "char")
    textured_object(scene, "Char", img, coll)
    [prop_coll] = link_from(prop, collections=["PropColl"]).collections
    held = bpy.data.objects.new("HeldProp", None)
    held.instance_type = "COLLECTION"
    held.instance_collection = prop_coll
    held.location = (0.8, 0, 0.5)
    coll.objects.link(held)
    save_fixture(char, root)

    # set.blend in the project root, above the shot's directory.
    set_blend = root / "set.blend"
    scene = start(set_blend)
    coll = new_collection(scene, "SetColl")
    img = load_image(root / "textures" / "set.png", "//textures/set.png", "set")
    textured_object(scene, "Ground", img, coll, 10.0)
    save_fixture(set_blend, root, compress=True)

    # A library whose file name has a space and non-ASCII characters.
    big = libs / "bïg prop.blend"
    scene = start(big)
    img = load_image(libs / "textures" / "bïg prop.png", "//textures/bïg prop.png", "bïg prop")
    textured_object(scene, "BigProp", img, None, 1.5)
    save_fixture(big, root, compress=True)

    # A cycle: cycle_a links from cycle_b and cycle_b links from cycle_a.
    cycle_note = ""
    cyc_a, cyc_b = libs / "cycle_a.blend", libs / "cycle_b.blend"
    scene = start(cyc_b)
    coll = new_collection(scene, "CycBColl")
    img = load_image(libs / "textures" / "cycle.png", "//textures/cycle.png", "cycle")
    textured_object(scene, "CycB", img, coll, 0.3)
    bpy.ops.wm.save_mainfile()

    scene = start(cyc_a)
    coll = new_collection(scene, "CycAColl")
    textured_object(scene, "CycA", None, coll, 0.3)
    [b_coll] = link_from(cyc_b, collections=["CycBColl"]).collections
    coll.children.link(b_coll)
    save_fixture(cyc_a, root, compress=True)

    bpy.ops.wm.open_mainfile(filepath=str(cyc_b))
    scene = _scene()
    try:
        [a_coll] = link_from(cyc_a, collections=["CycAColl"]).collections
        instance_collection(scene, a_coll, "CycAInstance", (2, 0, 0))
    except Exception as exc:
        cycle_note = f" cycle_b could not link cycle_a: {exc}."
    save_fixture(cyc_b, root, compress=True, notes="Links back to cycle_a.blend, which links this file." + cycle_note)

    # The shot.
    shot = root / "shots" / "shot.blend"
    scene = start(shot)
    img = load_image(root / "shots" / "textures" / "shot.png", "//textures/shot.png", "shot")
    textured_object(scene, "ShotLocal", img, None, 0.2)

    [char_coll] = link_from(char, collections=["CharColl"]).collections
    instance_collection(scene, char_coll, "CharInstance")
    [set_coll] = link_from(set_blend, collections=["SetColl"]).collections
    instance_collection(scene, set_coll, "SetInstance", (0, 0, -1))
    [big_ob] = link_from(big, objects=["BigProp"]).objects
    scene.collection.objects.link(big_ob)
    # prop.blend is linked twice: directly here and indirectly through char.blend.
    [prop_coll] = link_from(prop, collections=["PropColl"]).collections
    instance_collection(scene, prop_coll, "PropInstance", (3, 0, 0))
    [a_coll] = link_from(cyc_a, collections=["CycAColl"]).collections
    instance_collection(scene, a_coll, "CycleInstance", (-3, 0, 0))

    save_fixture(
        shot,
        root,
        notes=(
            "Links char.blend (which links sub/prop.blend), ../set.blend, 'bïg prop.blend', "
            "sub/prop.blend directly as well, and cycle_a.blend (cycle_a <-> cycle_b)." + cycle_note
        ),
    )


def sound_sequencer(root: Path) -> None:
    """Sounds, movie clips and sequencer strips (image, movie, sound, meta)."""
    write_wav(root / "audio" / "beep.wav", 880)
    write_wav(root / "audio" / "music.wav", 330, 0.2)
    footage = [write_png(root / "footage" / f"clip_{i:04d}.png", (60 * i, 60, 60)) for i in range(1, 4)]
    make_movie(root / "footage" / "clip.mp4")
    strip_imgs = [write_png(root / "strips" / f"img_{i:04d}.png", (20, 50 * i, 20)) for i in range(1, 5)]
    meta_imgs = [write_png(root / "strips" / "meta" / f"meta_{i:04d}.png", (5, 5, 60 * i)) for i in range(1, 3)]
    make_movie(root / "strips" / "movie.mp4", frames=4)

    blend = root / "edit.blend"
    scene = start(blend)
    scene.frame_start, scene.frame_end = 1, 20

    # A speaker playing a sound datablock.
    sound = bpy.data.sounds.load(str(root / "audio" / "beep.wav"))
    sound.filepath = "//audio/beep.wav"
    spk = bpy.data.speakers.new("Speaker")
    spk.sound = sound
    link_object(scene, bpy.data.objects.new("Speaker", spk))

    # Movie clips: a real movie file and an image sequence.
    clip = bpy.data.movieclips.load(str(root / "footage" / "clip.mp4"))
    clip.filepath = "//footage/clip.mp4"
    clip.name = "clip_movie"
    scene.active_clip = clip
    seq_clip = bpy.data.movieclips.load(str(footage[0]))
    seq_clip.filepath = "//footage/clip_0001.png"
    seq_clip.name = "clip_sequence"

    ed = scene.sequence_editor_create()
    strips = _strips(ed)
    strips.new_clip(name="ClipStrip", clip=seq_clip, channel=5, frame_start=1)

    img = strips.new_image(name="ImageStrip", filepath=str(strip_imgs[0]), channel=1, frame_start=1)
    for f in strip_imgs[1:]:
        img.elements.append(f.name)
    img.directory = "//strips/"

    mov = strips.new_movie(name="MovieStrip", filepath=str(root / "strips" / "movie.mp4"), channel=2, frame_start=5)
    mov.filepath = "//strips/movie.mp4"

    notes = ""
    try:
        snd = strips.new_sound(name="SoundStrip", filepath=str(root / "audio" / "music.wav"), channel=3, frame_start=1)
    except RuntimeError as exc:  # the 4.2 bpy module is built without Audaspace
        notes = f" No sound strip: {str(exc).strip()}."
        music = bpy.data.sounds.load(str(root / "audio" / "music.wav"))
        music.use_fake_user = True
    else:
        music = snd.sound
    music.filepath = "//audio/music.wav"

    meta = strips.new_meta(name="MetaStrip", channel=4, frame_start=10)
    inner = _strips(meta).new_image(name="MetaImage", filepath=str(meta_imgs[0]), channel=1, frame_start=10)
    for f in meta_imgs[1:]:
        inner.elements.append(f.name)
    inner.directory = "//strips/meta/"

    # Strips keep their own directory + file name (the sound strip's is absolute).
    bpy.ops.file.make_paths_relative()
    sequences = {
        "footage/clip_0001.png": [f"footage/{f.name}" for f in footage],
        "strips/img_0001.png": [f"strips/{f.name}" for f in strip_imgs],
        "strips/meta/meta_0001.png": [f"strips/meta/{f.name}" for f in meta_imgs],
    }
    save_fixture(
        blend,
        root,
        sequences=sequences,
        notes=(
            "Image strips are reported file by file (one path per element); the image-sequence "
            "movie clip only by its first file, the other frames are added from the sequence." + notes
        ),
    )


def fonts_texts(root: Path) -> None:
    """An external vector font, the built-in font, an external and an internal text."""
    fonts_dir = Path(bpy.utils.system_resource("DATAFILES", path="fonts"))
    src = fonts_dir / "NotoSansHebrew-Regular.woff2"
    font_file = root / "fonts" / src.name
    font_file.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, font_file)
    write_text(root / "scripts" / "tool.py", 'print("hello from an external text")\n')

    blend = root / "texts.blend"
    scene = start(blend)
    font = bpy.data.fonts.load(str(font_file))
    font.filepath = "//fonts/" + font_file.name
    cu = bpy.data.curves.new("ExternalFontText", "FONT")
    cu.body = "external"
    cu.font = font
    link_object(scene, bpy.data.objects.new("ExternalFontText", cu))

    cu = bpy.data.curves.new("BuiltinFontText", "FONT")  # uses <builtin>
    cu.body = "builtin"
    ob = link_object(scene, bpy.data.objects.new("BuiltinFontText", cu))
    ob.location = (0, -2, 0)

    txt = bpy.data.texts.load(str(root / "scripts" / "tool.py"))
    txt.filepath = "//scripts/tool.py"
    internal = bpy.data.texts.new("notes.txt")
    internal.write("An internal text block, stored inside the blend file.\n")
    save_fixture(blend, root, notes="The <builtin> font and the internal text are not files.")


IES = """IESNA:LM-63-2002
[TEST] bat fixture
[MANUFAC] none
TILT=NONE
1 1000 1 3 1 1 2 0.1 0.1 0.0
1.0 1.0 100
0 45 90
0
1000 800 0
"""

OSL = """shader thing(color In = color(1, 0, 0), output color Out = 0)
{
    Out = In * 0.5;
}
"""


def nodes(root: Path) -> None:
    """Shader nodes with external files: an IES light profile and an OSL script."""
    write_text(root / "lights" / "spot.ies", IES)
    write_text(root / "shaders" / "thing.osl", OSL)

    blend = root / "nodes.blend"
    scene = start(blend)
    mat = new_material("NodesMat")
    tree = mat.node_tree
    ies = tree.nodes.new("ShaderNodeTexIES")
    ies.mode = "EXTERNAL"
    ies.filepath = "//lights/spot.ies"
    ies.location = (-400, 200)
    osl = tree.nodes.new("ShaderNodeScript")
    osl.mode = "EXTERNAL"
    osl.filepath = "//shaders/thing.osl"
    osl.location = (-400, -200)
    me = cube_mesh("NodesMesh")
    me.materials.append(mat)
    link_object(scene, bpy.data.objects.new("Nodes", me))
    save_fixture(blend, root, compress=True)


def brush_texture(root: Path) -> None:
    """A (local) brush whose texture slot uses an image."""
    write_png(root / "textures" / "brush.png", (255, 255, 255))
    blend = root / "brush.blend"
    start(blend)
    img = load_image(root / "textures" / "brush.png", "//textures/brush.png", "brush")
    tex = bpy.data.textures.new("BrushTex", "IMAGE")
    tex.image = img
    brush = bpy.data.brushes.new("TexBrush", mode="TEXTURE_PAINT")
    brush.texture = tex
    brush.use_fake_user = True
    save_fixture(blend, root, compress=True, notes="The image is only used through brush.texture (a texture slot).")


def pack_info(root: Path) -> None:
    """A project whose own notes file is called ``pack-info.txt``, the name of the note
    bat (like BAT 1.x) writes at the top of a pack: the project's file must win."""
    write_text(root / "pack-info.txt", "Notes of the project: render at 24 fps.\n")
    blend = root / "notes.blend"
    start(blend)
    txt = bpy.data.texts.load(str(root / "pack-info.txt"))
    txt.filepath = "//pack-info.txt"
    save_fixture(blend, root, notes="An external text whose name is pack-info.txt.")


SCENARIOS: dict[str, Callable[[Path], None]] = {
    "basic": basic,
    "images": images,
    "libraries": libraries,
    "sound_sequencer": sound_sequencer,
    "fonts_texts": fonts_texts,
    "nodes": nodes,
    "brush_texture": brush_texture,
    "pack_info": pack_info,
}
