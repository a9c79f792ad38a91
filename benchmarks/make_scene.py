"""Build a production-sized benchmark scene with Blender (run with a ``bpy`` Python).

    /opt/bpy50/bin/python benchmarks/make_scene.py [--objects 3000 --materials 2000 ...]

Writes ``benchmarks/work/<blender-version>/`` (or ``--out``; wiped first)::

    shot.blend          uncompressed shot (~110 MB, ~400k blocks with the defaults)
    shot-zstd.blend     the same, zstd-compressed
    textures/           tiny PNGs: single images, UDIM tiles, image sequences
    caches/             external particle point caches (``.bphys`` files)
    libs/lib_NN.blend   libraries, each with its own objects, materials, textures;
                        the second half also link a collection of the first half
    libs/textures/      the libraries' PNGs
    scene.json          options, counts (blocks), sizes and every dependency file on disk

The shot holds ``--objects`` mesh objects (each with its own copy of a small grid
mesh, a modifier stack and, on two in three, a particle system) spread over
collections, ``--materials`` node-heavy materials using image textures directly
and through shader node groups (as many as there are images built node by node,
the rest copies of those), ``--images`` images, and links a collection and
a few materials from each of ``--libraries`` library files.  Everything is
derived from indices, so the uncompressed file sizes are the same on every run
with the same options.
"""

from __future__ import annotations

import argparse
import json
import shutil
import struct
import sys
import time
import zlib
from pathlib import Path

import bpy
from benchlib import SCENE_DEFAULTS, SCENE_FORMAT, count_blocks

HERE = Path(__file__).resolve().parent
V5 = bpy.app.version >= (5, 0, 0)

#: Per file: shader node groups (each with an image), geometry-node groups,
#: image textures (for Displace modifiers and particle settings), particle settings.
SHADER_GROUPS = 24
GEOMETRY_GROUPS = 8
TEXTURES = 40
PARTICLE_SETTINGS = 40
#: Every CACHE_EVERY-th particle system of the shot is cached on disk (external
#: cache under ``caches/``) with CACHE_FRAMES frames.
CACHE_EVERY = 100
CACHE_FRAMES = 5


def write_png(path: Path, seed: int, size: int = 4) -> None:
    """A tiny valid RGB PNG whose colour depends on ``seed``."""
    path.parent.mkdir(parents=True, exist_ok=True)

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    color = bytes(((seed * 37) % 256, (seed * 91) % 256, (seed * 53) % 256))
    rows = b"".join(b"\x00" + color * size for _ in range(size))
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(rows, 9))
        + chunk(b"IEND", b"")
    )


def reset() -> None:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.context.preferences.filepaths.save_version = 0


def save(blend: Path, compress: bool = False, copy: bool = False) -> None:
    blend.parent.mkdir(parents=True, exist_ok=True)
    bpy.ops.wm.save_as_mainfile(filepath=str(blend), compress=compress, copy=copy)


def make_images(blend_dir: Path, subdir: str, count: int, prefix: str) -> tuple[list, list[Path]]:
    """``count`` images under ``blend_dir/subdir``; every 50th is a UDIM set (4 tiles)
    and every 50th (offset 25) an 8-frame sequence.  Returns (images, files written)."""
    images = []
    files: list[Path] = []
    for i in range(count):
        name = f"{prefix}_{i:04d}"
        if i % 50 == 7:
            tiles = (1001, 1002, 1011, 1012)
            for t in tiles:
                files.append(blend_dir / subdir / "udim" / f"{name}.{t}.png")
                write_png(files[-1], i + t)
            img = bpy.data.images.load(f"//{subdir}/udim/{name}.1001.png", check_existing=False)
            img.source = "TILED"
            img.filepath = f"//{subdir}/udim/{name}.<UDIM>.png"
            for t in tiles[1:]:
                img.tiles.new(tile_number=t)
        elif i % 50 == 32:
            for frame in range(1, 9):
                files.append(blend_dir / subdir / "seq" / name / f"{name}.{frame:04d}.png")
                write_png(files[-1], i + frame)
            img = bpy.data.images.load(f"//{subdir}/seq/{name}/{name}.0001.png", check_existing=False)
            img.source = "SEQUENCE"
        else:
            files.append(blend_dir / subdir / f"{name}.png")
            write_png(files[-1], i)
            img = bpy.data.images.load(f"//{subdir}/{name}.png", check_existing=False)
        img.name = name
        images.append(img)
    return images, files


def make_shader_groups(prefix: str, count: int, images: list) -> list:
    """Shader node groups (a procedural layer: mapping, an image, noise, a ramp, a mix)."""
    groups = []
    for g in range(count):
        ng = bpy.data.node_groups.new(f"{prefix}_layer_{g:03d}", "ShaderNodeTree")
        ng.interface.new_socket("Vector", in_out="INPUT", socket_type="NodeSocketVector")
        ng.interface.new_socket("Strength", in_out="INPUT", socket_type="NodeSocketFloat")
        ng.interface.new_socket("Color", in_out="OUTPUT", socket_type="NodeSocketColor")
        ng.interface.new_socket("Height", in_out="OUTPUT", socket_type="NodeSocketFloat")
        nodes, links = ng.nodes, ng.links
        gin, gout = nodes.new("NodeGroupInput"), nodes.new("NodeGroupOutput")
        mapping = nodes.new("ShaderNodeMapping")
        tex = nodes.new("ShaderNodeTexImage")
        if images:
            tex.image = images[(g * 17 + 3) % len(images)]
        noise = nodes.new("ShaderNodeTexNoise")
        ramp = nodes.new("ShaderNodeValToRGB")
        math = nodes.new("ShaderNodeMath")
        math.operation = "MULTIPLY"
        mix = nodes.new("ShaderNodeMix")
        mix.data_type = "RGBA"
        links.new(gin.outputs["Vector"], mapping.inputs["Vector"])
        links.new(mapping.outputs["Vector"], tex.inputs["Vector"])
        links.new(mapping.outputs["Vector"], noise.inputs["Vector"])
        links.new(noise.outputs["Fac"], ramp.inputs["Fac"])
        links.new(ramp.outputs["Color"], mix.inputs[6])
        links.new(tex.outputs["Color"], mix.inputs[7])
        links.new(gin.outputs["Strength"], math.inputs[0])
        links.new(noise.outputs["Fac"], math.inputs[1])
        links.new(math.outputs["Value"], mix.inputs["Factor"])
        links.new(mix.outputs[2], gout.inputs["Color"])
        links.new(math.outputs["Value"], gout.inputs["Height"])
        groups.append(ng)
    return groups


def make_geometry_groups(prefix: str, count: int) -> list:
    """Geometry-node groups with two inputs (stored per modifier as ID properties) and a
    Bake node (unbaked).

    Without a bake node, Blender 5.0 saves a Nodes modifier with ``bakes_num`` 0 and a
    ``bakes`` pointer to nothing, on which BAT 1.23 stops with a SegmentationFault.
    """
    groups = []
    for g in range(count):
        ng = bpy.data.node_groups.new(f"{prefix}_scatter_{g:03d}", "GeometryNodeTree")
        ng.interface.new_socket("Geometry", in_out="INPUT", socket_type="NodeSocketGeometry")
        ng.interface.new_socket("Offset", in_out="INPUT", socket_type="NodeSocketVector")
        ng.interface.new_socket("Scale", in_out="INPUT", socket_type="NodeSocketFloat")
        ng.interface.new_socket("Geometry", in_out="OUTPUT", socket_type="NodeSocketGeometry")
        nodes, links = ng.nodes, ng.links
        gin, gout = nodes.new("NodeGroupInput"), nodes.new("NodeGroupOutput")
        setpos = nodes.new("GeometryNodeSetPosition")
        scale = nodes.new("GeometryNodeScaleElements")
        bake = nodes.new("GeometryNodeBake")
        links.new(gin.outputs["Geometry"], setpos.inputs["Geometry"])
        links.new(gin.outputs["Offset"], setpos.inputs["Offset"])
        links.new(setpos.outputs["Geometry"], scale.inputs["Geometry"])
        links.new(gin.outputs["Scale"], scale.inputs["Scale"])
        links.new(scale.outputs["Geometry"], bake.inputs[0])
        links.new(bake.outputs[0], gout.inputs["Geometry"])
        groups.append(ng)
    return groups


def make_material(name: str, images: list, groups: list, index: int):
    """A node material of 9 to 12 nodes: texture coordinates and mapping, one to three
    image textures (colour, roughness, normal map), a node-group layer mixed over the
    colour, bump; a Principled BSDF on every other material, else Diffuse."""
    mat = bpy.data.materials.new(name)
    if not V5:
        mat.use_nodes = True
    tree = mat.node_tree
    nodes, links = tree.nodes, tree.links
    for node in list(nodes):
        nodes.remove(node)
    out = nodes.new("ShaderNodeOutputMaterial")
    principled = index % 2 == 0
    bsdf = nodes.new("ShaderNodeBsdfPrincipled" if principled else "ShaderNodeBsdfDiffuse")
    links.new(bsdf.outputs[0], out.inputs[0])
    coords = nodes.new("ShaderNodeTexCoord")
    mapping = nodes.new("ShaderNodeMapping")
    links.new(coords.outputs["UV"], mapping.inputs["Vector"])
    texs = []
    for k in range(1 + index % 3 if images else 0):
        tex = nodes.new("ShaderNodeTexImage")
        tex.image = images[(index + k * 131) % len(images)]
        tex.location = (-400, -300 * k)
        links.new(mapping.outputs["Vector"], tex.inputs["Vector"])
        texs.append(tex)
    mix = nodes.new("ShaderNodeMix")
    mix.data_type = "RGBA"
    mix.blend_type = "MULTIPLY"
    links.new(mix.outputs[2], bsdf.inputs["Base Color" if principled else "Color"])
    if texs:
        links.new(texs[0].outputs["Color"], mix.inputs[6])
    if groups:
        layer = nodes.new("ShaderNodeGroup")
        layer.node_tree = groups[index % len(groups)]
        links.new(mapping.outputs["Vector"], layer.inputs["Vector"])
        links.new(layer.outputs["Color"], mix.inputs[7])
        bump = nodes.new("ShaderNodeBump")
        links.new(layer.outputs["Height"], bump.inputs["Height"])
        links.new(bump.outputs["Normal"], bsdf.inputs["Normal"])
    if len(texs) > 1 and principled:
        links.new(texs[1].outputs["Color"], bsdf.inputs["Roughness"])
    if len(texs) > 2:
        normal = nodes.new("ShaderNodeNormalMap")
        links.new(texs[2].outputs["Color"], normal.inputs["Color"])
        if groups:
            links.new(normal.outputs["Normal"], bump.inputs["Normal"])
    return mat


def make_textures(prefix: str, count: int, images: list) -> list:
    textures = []
    for t in range(count):
        tex = bpy.data.textures.new(f"{prefix}_tex_{t:03d}", type="IMAGE")
        if images:
            tex.image = images[(t * 29 + 11) % len(images)]
        textures.append(tex)
    return textures


def make_particle_settings(prefix: str, count: int, textures: list, instances: list) -> list:
    """Hair and emitter settings; emitters render instances, every setting has a texture slot."""
    settings = []
    for s in range(count):
        part = bpy.data.particles.new(f"{prefix}_particles_{s:03d}")
        part.type = "HAIR" if s % 2 else "EMITTER"
        part.count = 20 + s
        if s % 2 == 0 and instances:
            part.render_type = "OBJECT"
            part.instance_object = instances[s % len(instances)]
        if textures:
            slot = part.texture_slots.add()
            slot.texture = textures[s % len(textures)]
        settings.append(part)
    return settings


def grid_mesh(name: str, res: int):
    """A ``res`` x ``res`` quad grid with a UV map."""
    verts = [(x / res, y / res, 0.0) for y in range(res + 1) for x in range(res + 1)]
    row = res + 1
    faces = [(y * row + x, y * row + x + 1, (y + 1) * row + x + 1, (y + 1) * row + x)
             for y in range(res) for x in range(res)]
    me = bpy.data.meshes.new(name)
    me.from_pydata(verts, [], faces)
    me.update()
    me.uv_layers.new(name="UVMap")
    return me


class Kit:
    """What a file's objects are dressed with: materials, modifier inputs, particle settings."""

    def __init__(self, materials: list, textures: list, geometry_groups: list, particles: list) -> None:
        self.materials = materials
        self.textures = textures
        self.geometry_groups = geometry_groups
        self.particles = particles


def add_modifiers(ob, i: int, kit: Kit) -> None:
    """A particle system on two objects in three, then a modifier stack: subdivision on
    all, bevel on every other, displace (image texture) on every fourth, array on every
    fifth, geometry nodes on every third object."""
    if i % 3 != 2 and kit.particles:  # first: Blender adds no particles after a geometry-nodes modifier
        mod = ob.modifiers.new("Particles", "PARTICLE_SYSTEM")
        mod.particle_system.settings = kit.particles[i % len(kit.particles)]
        mod.particle_system.seed = i
    ob.modifiers.new("Subdivision", "SUBSURF").levels = 1
    if i % 2 == 0:
        ob.modifiers.new("Bevel", "BEVEL").width = 0.01
    if i % 4 == 1 and kit.textures:
        ob.modifiers.new("Displace", "DISPLACE").texture = kit.textures[i % len(kit.textures)]
    if i % 5 == 0:
        ob.modifiers.new("Array", "ARRAY").count = 2
    if i % 3 == 0 and kit.geometry_groups:
        ob.modifiers.new("Scatter", "NODES").node_group = kit.geometry_groups[i % len(kit.geometry_groups)]


def make_objects(prefix: str, count: int, kit: Kit, res: int, groups: int, parent_coll) -> list:
    """``count`` objects, each with its own copy of a grid mesh, in ``groups`` collections."""
    base = grid_mesh(prefix + "_base", res)
    colls = []
    for g in range(groups):
        coll = bpy.data.collections.new(f"{prefix}_set_{g:02d}")
        parent_coll.children.link(coll)
        colls.append(coll)
    # One step at a time for all objects, which keeps the build linear: a material
    # slot given to a mesh checks every object in the file, and a modifier added after
    # an object was linked to a collection re-syncs the view layer.
    meshes = []
    materials = kit.materials
    for i in range(count):
        me = base.copy()
        me.name = f"{prefix}_mesh_{i:05d}"
        if materials:
            me.materials.append(materials[i % len(materials)])
            if i % 3 == 0:
                me.materials.append(materials[(i * 7 + 1) % len(materials)])
        meshes.append(me)
    objects = []
    for i, me in enumerate(meshes):
        ob = bpy.data.objects.new(f"{prefix}_obj_{i:05d}", me)
        ob.location = (i % 60 * 2.0, i // 60 * 2.0, 0.0)
        objects.append(ob)
    for i, ob in enumerate(objects):
        colls[i % groups].objects.link(ob)
    for i, ob in enumerate(objects):
        add_modifiers(ob, i, kit)
    bpy.data.meshes.remove(base)
    return objects


def make_materials(prefix: str, count: int, images: list, groups: list) -> list:
    """``count`` materials: the first ones (as many as there are images, at least 6) built
    node by node, the others copies of them (material ``i`` copies material ``i % n``).

    Copying is what keeps the build linear: every node, link or image set through
    the Python API re-checks all the node trees in the file, a copy does not.
    """
    n = min(count, max(6, len(images)))
    materials = [make_material(f"{prefix}_mat_{i:05d}", images, groups, i) for i in range(n)]
    for i in range(n, count):
        mat = materials[i % n].copy()
        mat.name = f"{prefix}_mat_{i:05d}"
        materials.append(mat)
    return materials


def make_kit(prefix: str, images: list, n_materials: int, instances: list) -> Kit:
    shader_groups = make_shader_groups(prefix, min(SHADER_GROUPS, max(1, n_materials // 4)), images)
    materials = make_materials(prefix, n_materials, images, shader_groups)
    textures = make_textures(prefix, TEXTURES, images)
    particles = make_particle_settings(prefix, PARTICLE_SETTINGS, textures, instances)
    return Kit(materials, textures, make_geometry_groups(prefix, GEOMETRY_GROUPS), particles)


def instance_objects(prefix: str, coll) -> list:
    """A few small objects for particles to render (in a hidden collection)."""
    obs = []
    for k in range(4):
        ob = bpy.data.objects.new(f"{prefix}_pebble_{k}", grid_mesh(f"{prefix}_pebble_mesh_{k}", 1))
        coll.objects.link(ob)
        obs.append(ob)
    return obs


def keep(ids) -> None:
    """Give unused IDs a fake user so Blender saves them anyway."""
    for idb in ids:
        if idb.users == 0:
            idb.use_fake_user = True


def lib_name(n: int, libraries: int) -> str:
    return f"{n:03d}" if libraries > 100 else f"{n:02d}"


def make_library(path: Path, index: int, args: argparse.Namespace, linked: Path | None) -> list[Path]:
    """One library file with a ``LibNN`` collection; optionally links another library's."""
    reset()
    save(path)  # saved first so that // paths resolve while building
    scene = bpy.context.scene
    tag = f"lib{lib_name(index, args.libraries)}"
    images, files = make_images(path.parent, f"textures/{tag}", args.lib_images, tag)
    coll = bpy.data.collections.new(f"Lib{lib_name(index, args.libraries)}")
    scene.collection.children.link(coll)
    kit = make_kit(tag, images, args.lib_materials, instance_objects(tag, coll))
    make_objects(tag, args.lib_objects, kit, args.mesh_res, 2, coll)
    if linked is not None:
        with bpy.data.libraries.load(str(linked), link=True, relative=True) as (_src, dst):
            dst.collections = [f"Lib{lib_name(index - args.libraries // 2, args.libraries)}"]
        empty = bpy.data.objects.new(f"{tag}_nested", None)
        empty.instance_type = "COLLECTION"
        empty.instance_collection = dst.collections[0]
        coll.objects.link(empty)
    keep(images)
    keep(kit.materials)
    save(path)
    return files


def write_bphys(path: Path, frame: int, seed: int) -> None:
    """A small stand-in for a particle cache frame (bat and BAT only list it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"BPHYSICS" + struct.pack("<3I", 1, frame, seed) + bytes(64))


def add_point_caches(objects: list, shot_dir: Path) -> list[Path]:
    """External disk caches on every CACHE_EVERY-th particle system; returns their frame
    files, to be written by the caller once the file is saved: Blender would otherwise
    find them while saving, clear the frames of the unbaked cache after the current one
    and give the cache a stack index (which changes the file names)."""
    files: list[Path] = []
    psys_objects = [ob for ob in objects if ob.particle_systems]
    for n, ob in enumerate(psys_objects[::CACHE_EVERY]):
        cache = ob.particle_systems[0].point_cache
        name = f"psys_{n:03d}"
        cache.use_disk_cache = True
        cache.use_external = True
        cache.name = name
        cache.filepath = f"//caches/{name}/"
        # The cache's stack index stays -1 (no frame was ever written by Blender), so
        # the frame files are named <name>_<frame>.bphys, without an index.
        files += [shot_dir / "caches" / name / f"{name}_{frame:06d}.bphys" for frame in range(1, CACHE_FRAMES + 1)]
    return files


def make_shot(shot: Path, args: argparse.Namespace, libs: list[Path]) -> list[Path]:
    reset()
    save(shot)
    scene = bpy.context.scene
    images, files = make_images(shot.parent, "textures", args.images, "img")
    props = bpy.data.collections.new("shot_props")
    scene.collection.children.link(props)
    kit = make_kit("shot", images, args.materials, instance_objects("shot", props))
    linked_mats = []
    for n, lib in enumerate(libs):
        name = lib_name(n, len(libs))
        with bpy.data.libraries.load(str(lib), link=True, relative=True) as (src, dst):
            dst.collections = [f"Lib{name}"]
            dst.materials = sorted(src.materials)[:5]
        empty = bpy.data.objects.new(f"shot_lib_{name}", None)
        empty.instance_type = "COLLECTION"
        empty.instance_collection = dst.collections[0]
        empty.location = (n * 20.0, -30.0, 0.0)
        scene.collection.objects.link(empty)
        linked_mats.extend(dst.materials)
    objects = make_objects("shot", args.objects, kit, args.mesh_res, 30, scene.collection)
    for i, ob in enumerate(objects[::50]):
        if linked_mats:
            ob.data.materials.append(linked_mats[i % len(linked_mats)])
    caches = add_point_caches(objects, shot.parent)
    world = bpy.data.worlds.new("World")
    if not V5:
        world.use_nodes = True
    env = world.node_tree.nodes.new("ShaderNodeTexEnvironment")
    if images:
        env.image = images[0]
    world.node_tree.links.new(env.outputs["Color"], world.node_tree.nodes["Background"].inputs["Color"])
    scene.world = world
    keep(images)
    keep(kit.materials)
    cam = bpy.data.objects.new("Camera", bpy.data.cameras.new("Camera"))
    scene.collection.objects.link(cam)
    scene.camera = cam
    scene.collection.objects.link(bpy.data.objects.new("Sun", bpy.data.lights.new("Sun", "SUN")))
    save(shot)
    save(shot.with_name("shot-zstd.blend"), compress=True, copy=True)
    for n, path in enumerate(caches):
        write_bphys(path, n % CACHE_FRAMES + 1, n // CACHE_FRAMES)
    return files + caches


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for key, default in SCENE_DEFAULTS.items():
        p.add_argument(f"--{key}", type=int, default=default)
    p.add_argument("--lib-objects", type=int, default=40, help="objects per library")
    p.add_argument("--lib-materials", type=int, default=20, help="materials per library")
    p.add_argument("--lib-images", type=int, default=10, help="images per library")
    p.add_argument("--mesh-res", type=int, default=4, help="grid resolution of each mesh")
    p.add_argument("--out", type=Path, default=None,
                   help="output directory (default benchmarks/work/<blender version>)")
    return p.parse_args(argv)


def main() -> None:
    argv = sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else sys.argv[1:]
    args = parse_args(argv)
    # Absolute: the libraries are linked by a path relative to the shot, made from this one.
    out: Path = (args.out or HERE / "work" / bpy.app.version_string.split(" ")[0]).resolve()
    t0 = time.perf_counter()
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    libs: list[Path] = []
    files: list[Path] = []
    half = args.libraries // 2
    for n in range(args.libraries):
        path = out / "libs" / f"lib_{lib_name(n, args.libraries)}.blend"
        files += make_library(path, n, args, libs[n - half] if n >= half else None)
        libs.append(path)
    files += make_shot(out / "shot.blend", args, libs)
    files += libs
    shot = out / "shot.blend"
    counts = count_blocks(shot)
    lib_counts = [count_blocks(p) for p in libs]
    missing = [p for p in files if not p.is_file()]
    if missing:
        raise SystemExit(f"make_scene.py wrote no {missing[0]} ({len(missing)} files missing)")
    record = {
        "format": SCENE_FORMAT,
        "blender_version": bpy.app.version_string,
        "options": {k: v for k, v in vars(args).items() if k != "out"},
        "shot_size": shot.stat().st_size,
        "shot_zstd_size": (out / "shot-zstd.blend").stat().st_size,
        "shot_blocks": counts["blocks"],
        "shot_id_blocks": counts["id_blocks"],
        "shot_objects": sum(1 for ob in bpy.data.objects if ob.library is None),
        "linked_objects": sum(1 for ob in bpy.data.objects if ob.library is not None),
        "libraries": len(libs),
        "library_depth": 2 if half and args.libraries > half else 1,
        "library_sizes": [p.stat().st_size for p in libs],
        "library_blocks": [c["blocks"] for c in lib_counts],
        "dependency_files": sorted(p.relative_to(out).as_posix() for p in files),
        "build_seconds": round(time.perf_counter() - t0, 1),
    }
    (out / "scene.json").write_text(json.dumps(record, indent=1) + "\n")
    print(f"{shot}: {record['shot_size'] / 1e6:.1f} MB, {counts['blocks']} blocks ({counts['id_blocks']} IDs), "
          f"zstd {record['shot_zstd_size'] / 1e6:.1f} MB, {len(libs)} libraries, {len(files)} dependency files, "
          f"built in {record['build_seconds']} s")


if __name__ == "__main__":
    main()
