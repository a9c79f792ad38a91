"""Build a production-sized benchmark scene with Blender (run with a ``bpy`` Python).

    /opt/bpy42/bin/python benchmarks/make_scene.py [--objects 3000 --materials 2000 ...]

Writes ``benchmarks/work/<blender-version>/`` (wiped first)::

    shot.blend          uncompressed shot (~50 MB with the defaults)
    shot-zstd.blend     the same, zstd-compressed
    textures/           tiny PNGs: single images, UDIM tiles, image sequences
    libs/lib_NN.blend   libraries, each with its own objects, materials, textures;
                        the second half also link a collection of the first half
    libs/textures/      the libraries' PNGs
    scene.json          options, counts, sizes and every dependency file on disk

The shot holds ``--objects`` mesh objects (each with its own copy of a small grid
mesh) spread over collections, ``--materials`` node-tree materials using image
textures (every fourth one a Principled BSDF with two images, the others a
Diffuse BSDF with one), ``--images`` images, and links a collection and a few
materials from each of ``--libraries`` library files.  Everything is derived from
indices, so the file sizes are the same on every run with the same options.
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
from benchlib import SCENE_DEFAULTS

HERE = Path(__file__).resolve().parent
V5 = bpy.app.version >= (5, 0, 0)


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


def make_material(name: str, images: list, index: int):
    """A node material: Principled + two image textures (every 4th), else Diffuse + one."""
    mat = bpy.data.materials.new(name)
    if not V5:
        mat.use_nodes = True
    tree = mat.node_tree
    for node in list(tree.nodes):
        tree.nodes.remove(node)
    out = tree.nodes.new("ShaderNodeOutputMaterial")
    if index % 4 == 0:
        bsdf = tree.nodes.new("ShaderNodeBsdfPrincipled")
        inputs = ["Base Color", "Roughness"]
    else:
        bsdf = tree.nodes.new("ShaderNodeBsdfDiffuse")
        inputs = ["Color"]
    tree.links.new(bsdf.outputs[0], out.inputs[0])
    if images:
        for k, socket in enumerate(inputs):
            tex = tree.nodes.new("ShaderNodeTexImage")
            tex.image = images[(index + k * 131) % len(images)]
            tex.location = (-400, -300 * k)
            tree.links.new(tex.outputs["Color"], bsdf.inputs[socket])
    return mat


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


def make_objects(scene, prefix: str, count: int, materials: list, res: int, groups: int, parent_coll):
    """``count`` objects, each with its own copy of a grid mesh, in ``groups`` collections."""
    base = grid_mesh(prefix + "_base", res)
    colls = []
    for g in range(groups):
        coll = bpy.data.collections.new(f"{prefix}_set_{g:02d}")
        parent_coll.children.link(coll)
        colls.append(coll)
    objects = []
    for i in range(count):
        me = base.copy()
        me.name = f"{prefix}_mesh_{i:05d}"
        if materials:
            me.materials.append(materials[i % len(materials)])
            if i % 3 == 0:
                me.materials.append(materials[(i * 7 + 1) % len(materials)])
        ob = bpy.data.objects.new(f"{prefix}_obj_{i:05d}", me)
        ob.location = (i % 60 * 2.0, i // 60 * 2.0, 0.0)
        colls[i % groups].objects.link(ob)
        objects.append(ob)
    bpy.data.meshes.remove(base)
    return objects


def keep(ids) -> None:
    """Give unused IDs a fake user so Blender saves them anyway."""
    for idb in ids:
        if idb.users == 0:
            idb.use_fake_user = True


def make_library(path: Path, index: int, args: argparse.Namespace, linked: Path | None) -> list[Path]:
    """One library file with a ``LibNN`` collection; optionally links another library's."""
    reset()
    save(path)  # saved first so that // paths resolve while building
    scene = bpy.context.scene
    tag = f"lib{index:02d}"
    images, files = make_images(path.parent, f"textures/{tag}", args.lib_images, tag)
    materials = [make_material(f"{tag}_mat_{i:04d}", images, i) for i in range(args.lib_materials)]
    coll = bpy.data.collections.new(f"Lib{index:02d}")
    scene.collection.children.link(coll)
    make_objects(scene, tag, args.lib_objects, materials, args.mesh_res, 2, coll)
    if linked is not None:
        with bpy.data.libraries.load(str(linked), link=True, relative=True) as (_src, dst):
            dst.collections = [f"Lib{index - args.libraries // 2:02d}"]
        empty = bpy.data.objects.new(f"{tag}_nested", None)
        empty.instance_type = "COLLECTION"
        empty.instance_collection = dst.collections[0]
        coll.objects.link(empty)
    keep(images)
    keep(materials)
    save(path)
    return files


def make_shot(shot: Path, args: argparse.Namespace, libs: list[Path]) -> list[Path]:
    reset()
    save(shot)
    scene = bpy.context.scene
    images, files = make_images(shot.parent, "textures", args.images, "img")
    materials = [make_material(f"mat_{i:05d}", images, i) for i in range(args.materials)]
    linked_mats = []
    for n, lib in enumerate(libs):
        with bpy.data.libraries.load(str(lib), link=True, relative=True) as (src, dst):
            dst.collections = [f"Lib{n:02d}"]
            dst.materials = sorted(src.materials)[:5]
        empty = bpy.data.objects.new(f"shot_lib_{n:02d}", None)
        empty.instance_type = "COLLECTION"
        empty.instance_collection = dst.collections[0]
        empty.location = (n * 20.0, -30.0, 0.0)
        scene.collection.objects.link(empty)
        linked_mats.extend(dst.materials)
    objects = make_objects(scene, "shot", args.objects, materials, args.mesh_res, 30, scene.collection)
    for i, ob in enumerate(objects[::50]):
        if linked_mats:
            ob.data.materials.append(linked_mats[i % len(linked_mats)])
    keep(images)
    keep(materials)
    cam = bpy.data.objects.new("Camera", bpy.data.cameras.new("Camera"))
    scene.collection.objects.link(cam)
    scene.camera = cam
    scene.collection.objects.link(bpy.data.objects.new("Sun", bpy.data.lights.new("Sun", "SUN")))
    save(shot)
    save(shot.with_name("shot-zstd.blend"), compress=True, copy=True)
    return files


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
    out: Path = args.out or HERE / "work" / bpy.app.version_string.split(" ")[0]
    t0 = time.perf_counter()
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    libs: list[Path] = []
    files: list[Path] = []
    half = args.libraries // 2
    for n in range(args.libraries):
        path = out / "libs" / f"lib_{n:02d}.blend"
        files += make_library(path, n, args, libs[n - half] if n >= half else None)
        libs.append(path)
    files += make_shot(out / "shot.blend", args, libs)
    files += libs
    shot = out / "shot.blend"
    record = {
        "blender_version": bpy.app.version_string,
        "options": {k: v for k, v in vars(args).items() if k != "out"},
        "shot_size": shot.stat().st_size,
        "shot_zstd_size": (out / "shot-zstd.blend").stat().st_size,
        "library_sizes": [p.stat().st_size for p in libs],
        "dependency_files": sorted(p.relative_to(out).as_posix() for p in files),
        "build_seconds": round(time.perf_counter() - t0, 1),
    }
    (out / "scene.json").write_text(json.dumps(record, indent=1) + "\n")
    print(f"{shot}: {record['shot_size'] / 1e6:.1f} MB, zstd {record['shot_zstd_size'] / 1e6:.1f} MB, "
          f"{len(files)} dependency files, built in {record['build_seconds']} s")


if __name__ == "__main__":
    main()
