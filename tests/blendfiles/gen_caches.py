"""Fixture scenarios for cache-like dependencies, built and baked by Blender itself.

Runs inside Blender's Python (``bpy``), imported by ``generate.py``.  Every
scenario function gets an empty project root, builds its files under it and saves
its blend file(s) through :func:`fixturelib.save_fixture`, which records what
Blender reports.  Files that are real dependencies but that Blender's
``blend_paths`` does not report (point caches, bake directories) are listed as
``baked``.

Works on Blender 4.2 and 5.0; differences are handled by checking
``bpy.app.version`` and explained in each fixture's ``notes``.
"""

from __future__ import annotations

import os
import shutil
import struct
from collections.abc import Callable
from pathlib import Path

import bpy
from fixturelib import reset, save_fixture

V = bpy.app.version


# --------------------------------------------------------------------------- helpers


def _reset() -> None:
    """Empty file, and no ``.blend1`` backups next to the fixtures."""
    reset()
    bpy.context.preferences.filepaths.save_version = 0


def _files_under(root: Path, *dirs: str) -> list[str]:
    """Every file below ``root/dir`` for each dir, relative to root, sorted."""
    out: list[str] = []
    for d in dirs:
        base = root / d
        if not base.exists():
            continue
        for dirpath, _dirnames, filenames in os.walk(base):
            for fn in filenames:
                out.append(Path(dirpath, fn).relative_to(root).as_posix())
    return sorted(out)


def _first_save(blend: Path) -> None:
    """Save once so that ``//`` paths resolve (needed before baking)."""
    blend.parent.mkdir(parents=True, exist_ok=True)
    bpy.ops.wm.save_as_mainfile(filepath=str(blend), relative_remap=False)


def _link(obj: bpy.types.Object) -> bpy.types.Object:
    bpy.context.scene.collection.objects.link(obj)
    return obj


def _box_mesh(name: str, size: float = 1.0) -> bpy.types.Mesh:
    """A tiny closed box mesh: 8 vertices, 6 quads."""
    s = size / 2
    verts = [(x, y, z) for x in (-s, s) for y in (-s, s) for z in (-s, s)]
    faces = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    me = bpy.data.meshes.new(name)
    me.from_pydata(verts, [], faces)
    me.update()
    return me


def _grid_mesh(name: str, n: int = 4, size: float = 2.0) -> bpy.types.Mesh:
    """A flat n x n-vertex grid in the XY plane."""
    step = size / (n - 1)
    verts = [(-size / 2 + i * step, -size / 2 + j * step, 0.0) for j in range(n) for i in range(n)]
    faces = [
        (j * n + i, j * n + i + 1, (j + 1) * n + i + 1, (j + 1) * n + i)
        for j in range(n - 1)
        for i in range(n - 1)
    ]
    me = bpy.data.meshes.new(name)
    me.from_pydata(verts, [], faces)
    me.update()
    return me


def _box(name: str, size: float = 1.0, location=(0.0, 0.0, 0.0)) -> bpy.types.Object:
    obj = bpy.data.objects.new(name, _box_mesh(name + "Mesh", size))
    obj.location = location
    return _link(obj)


def _wait_for_files(paths: list[Path], timeout: float = 30.0) -> bool:
    """Wait until all ``paths`` exist and their sizes stop changing (threaded bakes)."""
    import time

    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if all(p.exists() for p in paths):
            sizes = [p.stat().st_size for p in paths]
            if sizes == last:
                return True
            last = sizes
        time.sleep(0.1)
    print(f"gen_caches: warning: timed out waiting for {[str(p) for p in paths]}")
    return False


def _activate(obj: bpy.types.Object) -> None:
    view_layer = bpy.context.view_layer
    for other in view_layer.objects:
        other.select_set(False)
    view_layer.objects.active = obj
    obj.select_set(True)


def _override(obj: bpy.types.Object):
    """Context override for object operators that need an active object."""
    return bpy.context.temp_override(
        object=obj,
        active_object=obj,
        selected_objects=[obj],
        selected_editable_objects=[obj],
        scene=bpy.context.scene,
        view_layer=bpy.context.view_layer,
    )


def _frames(start: int, end: int) -> None:
    scene = bpy.context.scene
    scene.frame_start = start
    scene.frame_end = end
    scene.frame_set(start)


def _animate_location(obj: bpy.types.Object, keys: dict[int, tuple[float, float, float]]) -> None:
    for frame, loc in keys.items():
        obj.location = loc
        obj.keyframe_insert("location", frame=frame)


def _animate_shape(obj: bpy.types.Object, frames: tuple[int, int]) -> None:
    """Give the mesh a deforming animation (a shape key that goes 0 -> 1)."""
    obj.shape_key_add(name="Basis")
    key = obj.shape_key_add(name="Bulge")
    for i, point in enumerate(key.data):
        co = point.co
        point.co = (co.x * 1.5, co.y * 1.5, co.z + 0.2 * (i % 2))
    key.value = 0.0
    key.keyframe_insert("value", frame=frames[0])
    key.value = 1.0
    key.keyframe_insert("value", frame=frames[1])


# --------------------------------------------------------------------------- scenarios


def caches_alembic(root: Path) -> None:
    """Alembic export + Mesh Sequence Cache modifiers on a single file and a sequence."""
    _reset()
    blend = root / "alembic.blend"
    _frames(1, 3)
    src = _box("Source", 0.5)
    _animate_location(src, {1: (0, 0, 0), 3: (0, 0, 1)})
    _animate_shape(src, (1, 3))
    _first_save(blend)

    abc = root / "cache" / "anim.abc"
    abc.parent.mkdir(parents=True, exist_ok=True)
    _activate(src)
    bpy.ops.wm.alembic_export(filepath=str(abc), start=1, end=3, selected=True)

    seq_dir = root / "cache" / "seq"
    seq_dir.mkdir(parents=True, exist_ok=True)
    seq_files = []
    for frame in (1, 2, 3):
        path = seq_dir / f"anim_{frame:04d}.abc"
        bpy.ops.wm.alembic_export(filepath=str(path), start=frame, end=frame, selected=True)
        seq_files.append(path.relative_to(root).as_posix())

    # The exporting object is not needed any more: the cache readers replace it.
    bpy.data.objects.remove(src)

    before = set(bpy.data.objects)
    bpy.ops.wm.alembic_import(filepath=str(abc), relative_path=True, always_add_cache_reader=True)
    single = [ob for ob in bpy.data.objects if ob not in before]
    cache_single = bpy.data.cache_files[-1]
    cache_single.name = "AnimABC"
    for ob in single:
        ob.name = "FromAnimABC"

    before = set(bpy.data.objects)
    bpy.ops.wm.alembic_import(
        filepath=str(seq_dir / "anim_0001.abc"),
        relative_path=True,
        is_sequence=True,
        always_add_cache_reader=True,
    )
    seq_objs = [ob for ob in bpy.data.objects if ob not in before]
    cache_seq = next(cf for cf in bpy.data.cache_files if cf != cache_single)
    cache_seq.name = "SeqABC"
    cache_seq.is_sequence = True
    for ob in seq_objs:
        ob.name = "FromSeqABC"
        ob.location.x = 2.0

    # Paths are stored relative; make sure even if the importer wrote absolute ones.
    cache_single.filepath = "//cache/anim.abc"
    cache_seq.filepath = "//cache/seq/anim_0001.abc"

    # One more object whose Mesh Sequence Cache modifier is set up by hand, sharing
    # the single-file CacheFile datablock.
    manual = _box("ManualCacheReader", 0.5, (-2, 0, 0))
    mod = manual.modifiers.new("MeshSequenceCache", "MESH_SEQUENCE_CACHE")
    mod.cache_file = cache_single
    mod.object_path = _first_object_path(cache_single)

    save_fixture(
        blend,
        root,
        sequences={"cache/seq/anim_0001.abc": seq_files},
        notes=(
            "CacheFile 'AnimABC' -> cache/anim.abc (used by two Mesh Sequence Cache modifiers); "
            "CacheFile 'SeqABC' -> cache/seq/anim_0001.abc with is_sequence=True, which stands "
            "for anim_0001..0003.abc; Blender reports only the first file of the sequence."
        ),
    )


def _first_object_path(cache_file: bpy.types.CacheFile) -> str:
    paths = [p.path for p in cache_file.object_paths]
    meshes = [p for p in paths if "Mesh" in p.rsplit("/", 1)[-1]]
    return (meshes or paths or [""])[0]



def caches_usd(root: Path) -> None:
    """USD export + a Mesh Sequence Cache modifier reading it through a CacheFile."""
    _reset()
    blend = root / "usd.blend"
    _frames(1, 3)
    src = _box("Source", 0.5)
    _animate_shape(src, (1, 3))
    _first_save(blend)

    usd = root / "cache" / "scene.usdc"
    usd.parent.mkdir(parents=True, exist_ok=True)
    _activate(src)
    bpy.ops.wm.usd_export(
        filepath=str(usd),
        selected_objects_only=True,
        export_animation=True,
        export_shapekeys=False,  # time-sampled points, so the importer adds a cache reader
        export_materials=False,
    )
    bpy.data.objects.remove(src)

    before = set(bpy.data.objects)
    bpy.ops.wm.usd_import(filepath=str(usd), relative_path=True, import_blendshapes=False)
    imported = [ob for ob in bpy.data.objects if ob not in before]
    cache = bpy.data.cache_files[0]
    cache.name = "SceneUSD"
    cache.filepath = "//cache/scene.usdc"
    for ob in imported:
        ob.name = "FromSceneUSD"

    # A second reader set up by hand, sharing the same CacheFile.
    manual = _box("ManualUSDReader", 0.5, (-2, 0, 0))
    mod = manual.modifiers.new("MeshSequenceCache", "MESH_SEQUENCE_CACHE")
    mod.cache_file = cache
    mod.object_path = _first_object_path(cache)

    save_fixture(
        blend,
        root,
        compress=True,
        notes="CacheFile 'SceneUSD' -> cache/scene.usdc, read by two Mesh Sequence Cache modifiers.",
    )


def _write_fake_vdb(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # The OpenVDB magic number, then nothing useful: enough for a path reference.
    path.write_bytes(struct.pack("<i", 0x56444220) + b"fake vdb written by gen_caches.py\n")


def _new_geometry_tree(name: str) -> bpy.types.NodeTree:
    ng = bpy.data.node_groups.new(name, "GeometryNodeTree")
    ng.interface.new_socket("Geometry", in_out="INPUT", socket_type="NodeSocketGeometry")
    ng.interface.new_socket("Geometry", in_out="OUTPUT", socket_type="NodeSocketGeometry")
    return ng


def _new_bake_node(ng: bpy.types.NodeTree) -> bpy.types.Node:
    bake = ng.nodes.new("GeometryNodeBake")
    if len(bake.bake_items) == 0:  # 5.0 creates the node without items from Python
        bake.bake_items.new("GEOMETRY", "Geometry")
    return bake


def _set_disk_bake(mod: bpy.types.Modifier, directory: str) -> None:
    mod.bake_directory = directory
    if hasattr(mod, "bake_target"):  # 4.3+: bakes can also be packed into the blend
        mod.bake_target = "DISK"


def _bake_gn(obj: bpy.types.Object, mod: bpy.types.Modifier) -> None:
    _activate(obj)
    for bake in mod.bakes:
        with _override(obj):
            bpy.ops.object.geometry_node_bake_single(
                session_uid=obj.session_uid, modifier_name=mod.name, bake_id=bake.bake_id
            )


def _make_real_vdbs(tmp_root: Path, frames: int = 3) -> list[Path]:
    """Bake a Volume Cube with a Bake node to get real OpenVDB files, one per frame.

    (Mantaflow would be the natural source, but it cannot simulate in these bpy
    builds, see the ``fluid`` scenario.)
    """
    _reset()
    _frames(1, frames)
    _first_save(tmp_root / "vdb_source.blend")
    obj = _box("VolumeSource", 1.0)
    ng = _new_geometry_tree("MakeVolume")
    ng.nodes.new("NodeGroupInput")
    go = ng.nodes.new("NodeGroupOutput")
    cube = ng.nodes.new("GeometryNodeVolumeCube")  # a dense 4x4x4 "density" grid
    for axis in "XYZ":
        cube.inputs["Resolution " + axis].default_value = 4
    # Make the volume change over time, so each frame's grid differs.
    xform = ng.nodes.new("GeometryNodeTransform")
    scene_time = ng.nodes.new("GeometryNodeInputSceneTime")
    combine = ng.nodes.new("ShaderNodeCombineXYZ")
    ng.links.new(scene_time.outputs["Seconds"], combine.inputs["Z"])
    ng.links.new(cube.outputs[0], xform.inputs["Geometry"])
    ng.links.new(combine.outputs[0], xform.inputs["Translation"])
    bake = _new_bake_node(ng)
    ng.links.new(xform.outputs[0], bake.inputs[0])
    ng.links.new(bake.outputs[0], go.inputs[0])
    mod = obj.modifiers.new("MakeVolume", "NODES")
    mod.node_group = ng
    _set_disk_bake(mod, "//bake")
    mod.bakes[0].bake_mode = "ANIMATION"
    _bake_gn(obj, mod)
    return sorted((tmp_root / "bake").rglob("*.vdb"))


def volumes(root: Path) -> None:
    """Volume datablocks on a single OpenVDB file and on a VDB sequence."""
    import tempfile

    real = []
    with tempfile.TemporaryDirectory(prefix="bat_vdb_") as tmp:
        try:
            real = _make_real_vdbs(Path(tmp))
        except Exception as exc:  # pragma: no cover - depends on the Blender build
            print(f"gen_caches: could not bake real VDB files: {exc}")
        single = root / "vdb" / "smoke.vdb"
        seq = [root / "vdb" / "seq" / f"fluid_{frame:04d}.vdb" for frame in (1, 2, 3)]
        for target in [single, *seq]:
            target.parent.mkdir(parents=True, exist_ok=True)
        if len(real) >= 3:
            shutil.copyfile(real[-1], single)
            for src, target in zip(real, seq, strict=False):
                shutil.copyfile(src, target)
            origin = "real OpenVDB files (a 4x4x4 Volume Cube, baked by a throw-away Geometry Nodes Bake node)"
        else:
            for target in [single, *seq]:
                _write_fake_vdb(target)
            origin = "placeholder files (no VDB could be baked here)"

    _reset()
    blend = root / "volumes.blend"
    _frames(1, 3)
    _first_save(blend)

    vol = bpy.data.volumes.new("Smoke")
    vol.filepath = "//vdb/smoke.vdb"
    _link(bpy.data.objects.new("Smoke", vol))

    vseq = bpy.data.volumes.new("FluidSequence")
    vseq.filepath = "//vdb/seq/fluid_0001.vdb"
    vseq.is_sequence = True
    vseq.frame_start = 1
    vseq.frame_duration = 3
    vseq.sequence_mode = "CLIP"
    obj = bpy.data.objects.new("FluidSequence", vseq)
    obj.location = (3, 0, 0)
    _link(obj)

    save_fixture(
        blend,
        root,
        compress=True,
        sequences={"vdb/seq/fluid_0001.vdb": [p.relative_to(root).as_posix() for p in seq]},
        notes=(
            f"The .vdb files are {origin}. Volume 'Smoke' -> vdb/smoke.vdb; Volume "
            "'FluidSequence' -> vdb/seq/fluid_0001.vdb with is_sequence=True (frames 1-3), "
            "which stands for fluid_0001..0003.vdb; Blender reports only the first file."
        ),
    )


def _write_pc2(path: Path, frames: list[list[tuple[float, float, float]]], start: float = 1.0) -> None:
    """Point Cache 2 (little endian): signature, version, points, start, rate, samples, xyz."""
    n = len(frames[0])
    data = struct.pack("<12siiffi", b"POINTCACHE2\0", 1, n, start, 1.0, len(frames))
    for verts in frames:
        for co in verts:
            data += struct.pack("<3f", *co)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _write_mdd(path: Path, frames: list[list[tuple[float, float, float]]], fps: float = 24.0) -> None:
    """Lightwave MDD (big endian): frame count, point count, frame times, xyz per frame."""
    n = len(frames[0])
    data = struct.pack(">2i", len(frames), n)
    data += struct.pack(f">{len(frames)}f", *[i / fps for i in range(len(frames))])
    for verts in frames:
        for co in verts:
            data += struct.pack(">3f", *co)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def mesh_cache(root: Path) -> None:
    """Mesh Cache modifiers reading a .pc2 and a .mdd file."""
    _reset()
    blend = root / "mesh_cache.blend"
    _frames(1, 3)
    _first_save(blend)

    pc2_obj = _box("PC2Box", 1.0)
    rest = [tuple(v.co) for v in pc2_obj.data.vertices]
    frames = [[(x * (1 + 0.25 * f), y * (1 + 0.25 * f), z) for x, y, z in rest] for f in range(3)]
    _write_pc2(root / "cache" / "deform.pc2", frames)
    _write_mdd(root / "cache" / "deform.mdd", frames)

    mod = pc2_obj.modifiers.new("MeshCachePC2", "MESH_CACHE")
    mod.cache_format = "PC2"
    mod.filepath = "//cache/deform.pc2"

    mdd_obj = _box("MDDBox", 1.0, (3, 0, 0))
    mod = mdd_obj.modifiers.new("MeshCacheMDD", "MESH_CACHE")
    mod.cache_format = "MDD"
    mod.filepath = "//cache/deform.mdd"

    # Check that Blender can actually read both caches (vertex count matches).
    bpy.context.scene.frame_set(2)
    deps = bpy.context.evaluated_depsgraph_get()
    for ob in (pc2_obj, mdd_obj):
        ev = ob.evaluated_get(deps)
        moved = any((a.co - b.co).length > 1e-4 for a, b in zip(ev.data.vertices, ob.data.vertices, strict=True))
        if not moved:
            print(f"gen_caches: warning: Mesh Cache on {ob.name} did not deform the mesh")
    bpy.context.scene.frame_set(1)

    save_fixture(
        blend,
        root,
        notes=(
            "Mesh Cache modifiers: 'MeshCachePC2' -> cache/deform.pc2, 'MeshCacheMDD' -> "
            "cache/deform.mdd. The cache files are written by gen_caches.py with struct "
            "(Blender has no built-in PC2/MDD exporter); 8 points, 3 frames."
        ),
    )


def ocean(root: Path) -> None:
    """Ocean modifier baked to //ocean_cache/."""
    _reset()
    blend = root / "ocean.blend"
    _frames(1, 2)
    _first_save(blend)

    obj = _link(bpy.data.objects.new("Ocean", _grid_mesh("OceanMesh", 2)))
    mod = obj.modifiers.new("Ocean", "OCEAN")
    mod.resolution = 1
    if hasattr(mod, "viewport_resolution"):
        mod.viewport_resolution = 1
    mod.spatial_size = 10
    mod.frame_start = 1
    mod.frame_end = 2
    mod.use_foam = True
    mod.filepath = "//ocean_cache/"
    _activate(obj)
    with _override(obj):
        bpy.ops.object.ocean_bake(modifier=mod.name)
    # The bake runs as a job in a thread: wait for every frame's files.
    expected = [
        root / "ocean_cache" / f"{kind}_{frame:04d}.exr"
        for frame in (1, 2)
        for kind in ("disp", "foam") + (("normal",) if mod.use_normals else ())
    ]
    _wait_for_files(expected)

    baked = _files_under(root, "ocean_cache")
    save_fixture(
        blend,
        root,
        compress=True,
        baked=baked,
        notes=(
            "Ocean modifier with cache directory //ocean_cache/, baked for frames 1-2 "
            "(displacement and foam EXR files). Blender reports the directory, not the "
            "files in it; the files are listed as baked."
            + ("" if baked else " NOTE: baking produced no files on this build.")
        ),
    )

def _disk_cache(cache: bpy.types.PointCache, name: str, end: int) -> None:
    cache.use_disk_cache = True
    cache.name = name
    cache.frame_start = 1
    cache.frame_end = end


def point_caches(root: Path) -> None:
    """Particles, cloth, soft body and dynamic paint point caches baked to disk."""
    _reset()
    blend = root / "point_caches.blend"
    end = 3
    _frames(1, end)
    _first_save(blend)
    notes = []

    # Particles: the cache keeps an empty name, so its files are named after the
    # hex-encoded object name ("OB" + name), as Blender does for unnamed caches.
    emitter = _link(bpy.data.objects.new("Emitter", _grid_mesh("EmitterMesh", 2)))
    pmod = emitter.modifiers.new("Particles", "PARTICLE_SYSTEM")
    psys = pmod.particle_system
    pset = psys.settings
    pset.count = 4
    pset.frame_start = 1
    pset.frame_end = 2
    pset.lifetime = 10
    _disk_cache(psys.point_cache, "", end)

    # Cloth on a 3x3 grid, named cache.
    cloth = _link(bpy.data.objects.new("Cloth", _grid_mesh("ClothMesh", 3)))
    cloth.location = (3, 0, 1)
    cmod = cloth.modifiers.new("Cloth", "CLOTH")
    _disk_cache(cmod.point_cache, "ClothCache", end)

    # Soft body on a box, named cache.
    soft = _box("SoftBody", 0.5, (-3, 0, 1))
    smod = soft.modifiers.new("Softbody", "SOFT_BODY")
    _disk_cache(smod.point_cache, "SoftCache", end)

    # Dynamic paint: a vertex canvas (only vertex surfaces use a point cache) and a brush.
    canvas = _link(bpy.data.objects.new("Canvas", _grid_mesh("CanvasMesh", 3)))
    canvas.location = (0, 3, 0)
    dmod = canvas.modifiers.new("DynamicPaint", "DYNAMIC_PAINT")
    _activate(canvas)
    with _override(canvas):
        bpy.ops.dpaint.type_toggle(type="CANVAS")
    surface = dmod.canvas_settings.canvas_surfaces[0]
    surface.surface_format = "VERTEX"
    surface.frame_start = 1
    surface.frame_end = end
    _disk_cache(surface.point_cache, "PaintCache", end)
    brush = _box("Brush", 0.5, (0, 3, 0))
    brush.modifiers.new("DynamicPaint", "DYNAMIC_PAINT")
    _activate(brush)
    with _override(brush):
        bpy.ops.dpaint.type_toggle(type="BRUSH")

    # Rigid body world: its point cache cannot be stored on disk in Blender.
    rb_obj = _box("RigidBox", 0.5, (0, -3, 2))
    _activate(rb_obj)
    with _override(rb_obj):
        bpy.ops.rigidbody.world_add()
        bpy.ops.rigidbody.object_add()
    world = bpy.context.scene.rigidbody_world
    if world is not None:
        world.point_cache.frame_end = end
        notes.append(
            "The rigid body world's point cache is memory-only (Blender offers no disk "
            "cache for it), so it adds no files."
        )

    _bake_all_point_caches()
    cache_dir = root / f"blendcache_{blend.stem}"

    # An external point cache (use_external): a directory with ready-made cache files,
    # here copies of the particle bake renamed to '<name>_<frame>_<index>.bphys'.
    ext_dir = root / "external_cache"
    ext_dir.mkdir()
    hex_name = b"Emitter".hex().upper()  # unnamed cache: hex of the object name
    for src in sorted(cache_dir.glob(f"{hex_name}_*_00.bphys")):
        frame = src.name.split("_")[1]
        shutil.copyfile(src, ext_dir / f"ExtParticles_{frame}_00.bphys")
    ext = _link(bpy.data.objects.new("ExtEmitter", _grid_mesh("ExtEmitterMesh", 2)))
    ext.location = (0, 0, 3)
    emod = ext.modifiers.new("Particles", "PARTICLE_SYSTEM")
    emod.particle_system.settings = pset  # same settings: same particle count
    ext_cache = emod.particle_system.point_cache
    ext_cache.use_external = True
    ext_cache.filepath = "//external_cache/"
    ext_cache.name = "ExtParticles"
    ext_cache.index = 0

    baked = _files_under(root, cache_dir.name, ext_dir.name)
    save_fixture(
        blend,
        root,
        baked=baked,
        notes=" ".join(
            [
                f"Point caches baked to //blendcache_{blend.stem}/ (use_disk_cache=True, frames "
                f"1-{end}): particles on 'Emitter' (unnamed cache: files are named after the "
                "hex-encoded ID name), cloth 'ClothCache', soft body 'SoftCache', dynamic paint "
                "vertex canvas 'PaintCache'. Blender's blend_paths reports none of them; "
                "instead it reports one empty path ('.' here), the unused external-path field "
                "of the disk caches. 'ExtEmitter' has an external point cache (use_external) "
                "reading //external_cache/ExtParticles_<frame>_00.bphys: Blender reports the "
                "directory; its files are listed as baked.",
                *notes,
            ]
        ),
    )


def _bake_all_point_caches() -> None:
    scene = bpy.context.scene
    with bpy.context.temp_override(scene=scene, view_layer=bpy.context.view_layer):
        bpy.ops.ptcache.bake_all(bake=True)

def _smoke_domain(cache_dir: str, frames: tuple[int, int]) -> bpy.types.Object:
    """A tiny Mantaflow smoke domain (resolution 8) with a mesh inflow inside it.

    The domain modifier starts disabled in the viewport: evaluating it initialises
    Mantaflow, which in the PyPI ``bpy`` builds fails half-way and then aborts the
    whole process when the file is closed.
    """
    domain = _box("SmokeDomain", 2.0, (0, 0, 1))
    mod = domain.modifiers.new("Fluid", "FLUID")
    mod.show_viewport = False
    mod.fluid_type = "DOMAIN"
    ds = mod.domain_settings
    ds.domain_type = "GAS"
    ds.resolution_max = 8
    ds.cache_type = "ALL"
    ds.cache_frame_start, ds.cache_frame_end = frames
    ds.cache_data_format = "OPENVDB"
    ds.cache_directory = cache_dir

    flow = _box("SmokeFlow", 0.5, (0, 0, 0.5))
    fmod = flow.modifiers.new("Fluid", "FLUID")
    fmod.fluid_type = "FLOW"
    fs = fmod.flow_settings
    fs.flow_type = "SMOKE"
    fs.flow_behavior = "INFLOW"
    return domain


_FLUID_BAKE_SCRIPT = """
import sys
import bpy
blend = sys.argv[sys.argv.index("--") + 1]
bpy.ops.wm.open_mainfile(filepath=blend)
domain = bpy.data.objects["SmokeDomain"]
domain.modifiers["Fluid"].show_viewport = True
with bpy.context.temp_override(object=domain, active_object=domain,
                               selected_objects=[domain], selected_editable_objects=[domain]):
    result = bpy.ops.fluid.bake_all()
if "FINISHED" not in result:
    sys.exit(3)
bpy.ops.wm.save_mainfile(filepath=blend)
"""


def _bake_fluid_in_subprocess(blend: Path, timeout: float = 30.0) -> tuple[bool, str]:
    """Bake the saved file's smoke domain in a separate Blender process.

    Mantaflow can abort the whole process (it does in the PyPI ``bpy`` builds), so it
    must not run in the generator's own process.
    """
    import subprocess
    import sys

    if bpy.app.binary_path and os.path.basename(bpy.app.binary_path).startswith("blender"):
        cmd = [bpy.app.binary_path, "--background", "--factory-startup",
               "--python-expr", _FLUID_BAKE_SCRIPT, "--", str(blend)]
    else:  # Blender as a Python module: the interpreter that imported bpy
        cmd = [sys.executable, "-c", _FLUID_BAKE_SCRIPT, "--", str(blend)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return False, f"baking took longer than {timeout:.0f} s"
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip()]
        error = next((ln for ln in lines if "Error" in ln), lines[-1] if lines else "")
        return False, f"baking failed (exit code {proc.returncode}: {error.strip()})"
    return True, ""


def fluid(root: Path) -> None:
    """A Mantaflow smoke domain whose cache directory is //fluid_cache."""
    _reset()
    blend = root / "fluid.blend"
    _frames(1, 2)
    _smoke_domain("//fluid_cache", (1, 2))
    _first_save(blend)

    ok, why = _bake_fluid_in_subprocess(blend)
    cache = root / "fluid_cache"
    baked = _files_under(root, cache.name) if ok else []
    if ok and baked:
        # The baking process saved the file with the domain enabled in the viewport.
        bpy.ops.wm.open_mainfile(filepath=str(blend))
        note = (
            "Mantaflow smoke domain (resolution 8, frames 1-2) baked to //fluid_cache "
            "(cache_type ALL, OpenVDB data); the baked files are listed as baked."
        )
    else:
        shutil.rmtree(cache, ignore_errors=True)
        baked = []
        note = (
            "Mantaflow smoke domain (resolution 8, frames 1-2) with cache_directory "
            f"//fluid_cache, NOT baked: {why or 'the bake wrote no files'}. No cache files "
            "exist, so the directory Blender reports is missing. The domain's Fluid modifier "
            "is saved disabled in the viewport (show_viewport=False) because evaluating it "
            "makes this Blender build's Mantaflow abort the process."
        )
    save_fixture(blend, root, compress=True, baked=baked, notes=note)

def _png(name: str, path: Path, rel: str, color: tuple[float, float, float, float]) -> bpy.types.Image:
    """A 4x4 PNG written by Blender, its datablock pointing at it relatively."""
    img = bpy.data.images.new(name, 4, 4)
    img.pixels[:] = list(color) * 16
    path.parent.mkdir(parents=True, exist_ok=True)
    img.filepath_raw = str(path)
    img.file_format = "PNG"
    img.save()
    img.filepath = rel
    img.reload()
    return img


def _gn_socket(ng, name: str, socket_type: str, in_out: str = "INPUT"):
    return ng.interface.new_socket(name, in_out=in_out, socket_type=socket_type)


def _nested_bake_group() -> bpy.types.NodeTree:
    """'GNNested': a group with a Bake node inside (baked through the outer modifier)."""
    ng = _new_geometry_tree("GNNested")
    gi, go = ng.nodes.new("NodeGroupInput"), ng.nodes.new("NodeGroupOutput")
    bake = _new_bake_node(ng)
    bake.name = "NestedBake"
    ng.links.new(gi.outputs[0], bake.inputs[0])
    ng.links.new(bake.outputs[0], go.inputs[0])
    return ng


def _gn_main_group(nested: bpy.types.NodeTree) -> bpy.types.NodeTree:
    """'GNMain': ID inputs (Object, Collection, Image, Material), a simulation zone
    and the nested group with a Bake node."""
    ng = _new_geometry_tree("GNMain")
    sock_obj = _gn_socket(ng, "Target Object", "NodeSocketObject")
    sock_coll = _gn_socket(ng, "Extra Collection", "NodeSocketCollection")
    sock_img = _gn_socket(ng, "Color Image", "NodeSocketImage")
    sock_mat = _gn_socket(ng, "Material", "NodeSocketMaterial")
    nodes, links = ng.nodes, ng.links
    gi, go = nodes.new("NodeGroupInput"), nodes.new("NodeGroupOutput")

    obj_info = nodes.new("GeometryNodeObjectInfo")
    links.new(gi.outputs[sock_obj.name], obj_info.inputs["Object"])
    coll_info = nodes.new("GeometryNodeCollectionInfo")
    links.new(gi.outputs[sock_coll.name], coll_info.inputs["Collection"])
    join = nodes.new("GeometryNodeJoinGeometry")
    # Join inputs are multi-input sockets: link in reverse order of appearance.
    links.new(coll_info.outputs[0], join.inputs[0])
    links.new(obj_info.outputs["Geometry"], join.inputs[0])
    links.new(gi.outputs[0], join.inputs[0])

    # Sample the image: store its colour as a point attribute.
    tex = nodes.new("GeometryNodeImageTexture")
    links.new(gi.outputs[sock_img.name], tex.inputs["Image"])
    store = nodes.new("GeometryNodeStoreNamedAttribute")
    store.data_type = "FLOAT_COLOR"
    store.inputs["Name"].default_value = "gn_color"
    links.new(join.outputs[0], store.inputs["Geometry"])
    links.new(tex.outputs["Color"], store.inputs["Value"])

    set_mat = nodes.new("GeometryNodeSetMaterial")
    links.new(store.outputs[0], set_mat.inputs["Geometry"])
    links.new(gi.outputs[sock_mat.name], set_mat.inputs["Material"])

    group = nodes.new("GeometryNodeGroup")
    group.node_tree = nested
    links.new(set_mat.outputs[0], group.inputs[0])

    # Simulation zone after the baked group: move the geometry up a little every
    # frame.  (With a Bake node downstream of the zone, 5.0 bakes no simulation frames.)
    sim_in = nodes.new("GeometryNodeSimulationInput")
    sim_out = nodes.new("GeometryNodeSimulationOutput")
    sim_in.pair_with_output(sim_out)
    if len(sim_out.state_items) == 0:
        sim_out.state_items.new("GEOMETRY", "Geometry")
    links.new(group.outputs[0], sim_in.inputs[0])
    move = nodes.new("GeometryNodeTransform")
    links.new(sim_in.outputs["Geometry"], move.inputs["Geometry"])
    move.inputs["Translation"].default_value = (0, 0, 0.1)
    links.new(move.outputs[0], sim_out.inputs["Geometry"])
    links.new(sim_out.outputs["Geometry"], go.inputs[0])
    return ng


def geonodes(root: Path) -> None:
    """Geometry Nodes: simulation zone + nested Bake node baked to disk, ID inputs."""
    _reset()
    blend = root / "geonodes.blend"
    _frames(1, 2)
    _first_save(blend)

    target = _box("GNTarget", 0.25, (0, 0, 2))
    target.hide_render = True
    coll = bpy.data.collections.new("GNCollection")  # only used through the modifier
    coll.objects.link(bpy.data.objects.new("GNCollectionObject", _box_mesh("GNCollMesh", 0.25)))
    gn_only = _png("gn_only", root / "textures" / "gn_only.png", "//textures/gn_only.png",
                   (1.0, 0.5, 0.0, 1.0))
    gn_only.use_fake_user = False
    mat = bpy.data.materials.new("GNMaterial")
    mat.use_nodes = True
    mat_tex = _png("gn_material", root / "textures" / "gn_material.png",
                   "//textures/gn_material.png", (0.0, 0.5, 1.0, 1.0))
    tex_node = mat.node_tree.nodes.new("ShaderNodeTexImage")
    tex_node.image = mat_tex
    bsdf = next(n for n in mat.node_tree.nodes if n.type == "BSDF_PRINCIPLED")
    mat.node_tree.links.new(tex_node.outputs["Color"], bsdf.inputs["Base Color"])

    obj = _box("GNObject", 1.0)
    mod = obj.modifiers.new("GeometryNodes", "NODES")
    mod.node_group = _gn_main_group(_nested_bake_group())
    inputs = {item.name: item.identifier for item in mod.node_group.interface.items_tree
              if getattr(item, "in_out", "") == "INPUT"}
    mod[inputs["Target Object"]] = target
    mod[inputs["Extra Collection"]] = coll
    mod[inputs["Color Image"]] = gn_only
    mod[inputs["Material"]] = mat

    _set_disk_bake(mod, "//gn_bake")
    kinds = {}
    for bake in mod.bakes:
        node = bake.node
        if node is not None and node.bl_idname == "GeometryNodeSimulationOutput":
            kinds[bake.bake_id] = "simulation"
        else:  # the Bake node inside the nested group: its own directory
            kinds[bake.bake_id] = "bake node"
            bake.use_custom_path = True
            bake.directory = "//gn_bake_custom"
            if hasattr(bake, "bake_target"):
                bake.bake_target = "DISK"
    _bake_gn(obj, mod)

    baked = _files_under(root, "gn_bake", "gn_bake_custom")
    sims = [bid for bid, kind in kinds.items() if kind == "simulation"]
    notes = (
        "Geometry Nodes modifier 'GeometryNodes' on 'GNObject' (group 'GNMain' with nested group "
        "'GNNested'). Modifier inputs: Object 'GNTarget', Collection 'GNCollection' (not linked "
        "to the scene), Image 'gn_only' -> textures/gn_only.png (used ONLY through the modifier "
        "input's ID property), Material 'GNMaterial' (its node tree uses textures/gn_material.png). "
        f"Bakes (bake_target DISK): the simulation zone (bake id {sims[0] if sims else '?'}) "
        "under the modifier's bake_directory //gn_bake/<bake id>/{meta,blobs}/ for frames 1-2, "
        "and the Bake node inside 'GNNested' with a custom path //gn_bake_custom/{meta,blobs}/. "
        "The baked files are listed as baked."
    )
    if V < (4, 3):
        notes += " Blender 4.2 has no bake_target (bakes are always on disk)."
    save_fixture(blend, root, compress=True, baked=baked, notes=notes)

def multires(root: Path) -> None:
    """A Multires modifier whose displacement lives in an external .btx file."""
    _reset()
    blend = root / "multires.blend"
    _first_save(blend)

    obj = _box("Sculpt", 1.0)
    obj.modifiers.new("Multires", "MULTIRES")
    btx = root / "multires" / "sculpt_disp.btx"
    btx.parent.mkdir(parents=True, exist_ok=True)
    _activate(obj)
    with _override(obj):
        bpy.ops.object.multires_subdivide(modifier="Multires", mode="CATMULL_CLARK")
        bpy.ops.object.multires_external_save(
            filepath=str(btx), relative_path=True, modifier="Multires"
        )
    mod = obj.modifiers["Multires"]
    ok = mod.is_external and btx.exists()
    save_fixture(
        blend,
        root,
        compress=True,
        notes=(
            "Multires modifier (1 level) on 'Sculpt' with its displacement saved externally "
            "(multires_external_save) to //multires/sculpt_disp.btx; the path is stored in the "
            "mesh's face-corner CustomData 'external' block and Blender reports it."
            if ok
            else "NOTE: multires_external_save did not write the .btx file on this build."
        ),
    )
SCENARIOS: dict[str, Callable[[Path], None]] = {
    "caches_alembic": caches_alembic,
    "caches_usd": caches_usd,
    "volumes": volumes,
    "mesh_cache": mesh_cache,
    "ocean": ocean,
    "point_caches": point_caches,
    "fluid": fluid,
    "geonodes": geonodes,
    "multires": multires,
}
