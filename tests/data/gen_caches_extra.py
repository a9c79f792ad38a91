"""Blend files for tests/test_readers_caches.py that the shared cache fixtures lack.

Run with Blender as a Python module (4.2 or 5.0)::

    /opt/bpy50/bin/python tests/data/gen_caches_extra.py

Writes ``tests/data/caches_extra/`` (wiped first):

* ``libs/lib.blend`` (zstd): object ``Flag`` with a Cloth modifier (unnamed disk
  cache, baked to ``libs/blendcache_lib/466C6167_*``) *followed by* a Mesh Cache
  modifier reading ``//cache/flag.pc2``; object ``Émi`` (non-ASCII name) whose
  unnamed particle disk cache is ``libs/blendcache_lib/C3896D69_*``.
* ``main.blend`` (zstd): links ``Flag`` and ``Émi`` from the library, and has a
  local object ``Local`` with two modifiers: Mesh Cache ``//cache/local.pc2`` and
  Cloth with the named disk cache ``LocalCloth`` (``blendcache_main/LocalCloth_*``).
  ``main.blend.json`` holds what Blender reports (``fixturelib.save_fixture``).

Library caches resolve against the library (``blendcache_lib`` next to it), as
Blender's ``ptcache_path`` does for linked objects.
"""

from __future__ import annotations

import shutil
import struct
import sys
from pathlib import Path

import bpy

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "blendfiles"))
from fixturelib import reset, save_fixture

ROOT = Path(__file__).resolve().parent / "caches_extra"
FRAMES = (1, 2)


def _reset() -> None:
    reset()  # empty file with one workspace: small fixtures
    scene = bpy.context.scene
    scene.frame_start, scene.frame_end = FRAMES


def _quad(name: str) -> bpy.types.Object:
    me = bpy.data.meshes.new(name + "Mesh")
    me.from_pydata([(0, 0, 0), (1, 0, 0), (0, 1, 0), (1, 1, 0)], [], [(0, 1, 3, 2)])
    ob = bpy.data.objects.new(name, me)
    bpy.context.scene.collection.objects.link(ob)
    return ob


def _pc2(path: Path, points: int = 4) -> None:
    """A valid two-frame PC2 file (header, then xyz floats per point and frame)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = struct.pack("<12siiffi", b"POINTCACHE2\0", 1, points, 1.0, 1.0, len(FRAMES))
    data += struct.pack(f"<{3 * points * len(FRAMES)}f", *([0.0] * 3 * points * len(FRAMES)))
    path.write_bytes(data)


def _disk_cache(cache: bpy.types.PointCache, name: str = "") -> None:
    cache.use_disk_cache = True
    cache.name = name
    cache.frame_start, cache.frame_end = FRAMES


def _save(path: Path, compress: bool) -> None:
    bpy.ops.wm.save_as_mainfile(filepath=str(path), compress=compress, relative_remap=False)


def _bake() -> None:
    with bpy.context.temp_override(scene=bpy.context.scene, view_layer=bpy.context.view_layer):
        bpy.ops.ptcache.bake_all(bake=True)


def make_library(lib: Path) -> None:
    _reset()
    _save(lib, compress=True)  # // paths and blendcache_lib need a saved file
    flag = _quad("Flag")
    _disk_cache(flag.modifiers.new("Cloth", "CLOTH").point_cache)
    flag.modifiers.new("MeshCache", "MESH_CACHE").filepath = "//cache/flag.pc2"
    _pc2(lib.parent / "cache" / "flag.pc2")
    emitter = _quad("Émi")
    emitter.modifiers.new("Particles", "PARTICLE_SYSTEM")
    psys = emitter.particle_systems[0]
    psys.settings.count = 4
    psys.settings.frame_start, psys.settings.frame_end = FRAMES
    _disk_cache(psys.point_cache)
    _save(lib, compress=True)
    _bake()
    _save(lib, compress=True)


def make_main(main: Path, lib: Path) -> None:
    _reset()
    _save(main, compress=True)
    with bpy.data.libraries.load(str(lib), link=True, relative=True) as (_src, dst):
        dst.objects = ["Flag", "Émi"]
    for ob in dst.objects:
        bpy.context.scene.collection.objects.link(ob)
    local = _quad("Local")
    local.modifiers.new("MeshCache", "MESH_CACHE").filepath = "//cache/local.pc2"
    _pc2(main.parent / "cache" / "local.pc2")
    _disk_cache(local.modifiers.new("Cloth", "CLOTH").point_cache, "LocalCloth")
    _save(main, compress=True)
    _bake()
    root = main.parent
    baked = sorted(p.relative_to(root).as_posix() for d in ("blendcache_main", "libs/blendcache_lib")
                   for p in (root / d).rglob("*") if p.is_file())
    if not any(b.startswith("blendcache_main/") for b in baked) or not any(b.startswith("libs/") for b in baked):
        raise SystemExit(f"the point caches were not baked: {baked}")
    # main.blend.json: what Blender reports (blend_paths), as for the shared fixtures.
    save_fixture(main, root, compress=True, baked=baked, notes=(
        "Links Flag (cloth disk cache, then a Mesh Cache reading //cache/flag.pc2) and Émi (particle "
        "disk cache) from libs/lib.blend; their caches are libs/blendcache_lib/ (beside the library). "
        "Local object: Mesh Cache //cache/local.pc2 and a cloth disk cache named LocalCloth in "
        "blendcache_main/. Blender does not list disk point caches in blend_paths: they are baked_files."))


def main() -> int:
    shutil.rmtree(ROOT, ignore_errors=True)
    (ROOT / "libs").mkdir(parents=True)
    lib = ROOT / "libs" / "lib.blend"
    make_library(lib)
    make_main(ROOT / "main.blend", lib)
    for path in sorted(p for p in ROOT.rglob("*") if p.is_file()):
        print(path.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
