"""Object modifiers that read files: caches, bakes and simulation point caches.

The Object reader walks ``Object.modifiers`` and hands every modifier to the
readers registered for its DNA struct (``ctx.read``), so plugins can add their
own modifier readers.  What Blender reads (``object_foreach_path`` in
``object.cc`` and each system's own path logic):

* Mesh Cache: ``filepath`` (.mdd/.pc2).
* Ocean: ``cachepath``, a directory of ``disp_/foam_/normal_/spray_####.exr``.
  Reported whether or not the modifier says it is baked, as Blender does
  (``cached`` is not reliably set by a bake).
* Fluid (Mantaflow) domains: ``domain->cache_directory``, a directory Mantaflow
  fills with its own subdirectories.  2.7x smoke domains: point caches; 2.7x
  Elbeem fluid domains: ``fss->surfdataPath`` (``fluidsurface_*`` files).
* Geometry Nodes: each bake is stored in ``bakes`` (``bakes_num`` items).  With a
  custom path the bake's own ``directory``; otherwise the modifier's bake
  directory plus a subdirectory named after the bake id.  Packed bakes are not
  files.  Both directories are ``char *`` strings: ``field`` names the pointer.
  A bake that was never made is not missing (``optional``), as for point caches.
* Cache directories are walked only where their program reads: Mantaflow's
  sub-directories, a bake's ``meta``/``blobs``.
* Cloth, dynamic paint canvas surfaces: point caches (see :mod:`.pointcache`).
* Mesh Sequence Cache: nothing here; its CacheFile ID is a datablock of its own.
"""

from __future__ import annotations

from collections.abc import Iterator

from bat_core.blendfile import Block, StructView
from bat_core.bpathlib import BlendPath
from bat_core.trace import BlockUsage, TraceContext

from .pointcache import PTCACHE_EXT, PTCACHE_EXT_VDB, dir_glob, point_cache_usages

# FluidModifierData.type
MOD_FLUID_TYPE_DOMAIN = 1 << 0
# FluidsimSettings.type (2.7x Elbeem)
OB_FLUIDSIM_DOMAIN = 1 << 1
# SmokeDomainSettings.cache_file_format (2.7x)
PTCACHE_FILE_OPENVDB = 1
# NodesModifierBake.flag
NODES_MODIFIER_BAKE_CUSTOM_PATH = 1 << 1
# NodesModifierBake.bake_target / NodesModifierData.bake_target
NODES_MODIFIER_BAKE_TARGET_INHERIT = 0
NODES_MODIFIER_BAKE_TARGET_PACKED = 1

#: The sub-directories Mantaflow keeps in a domain's cache directory (``FLUID_DOMAIN_DIR_*``).
MANTAFLOW_DIRS = ("config", "data", "noise", "mesh", "particles", "guiding", "script")
#: The sub-directories of a Geometry Nodes bake (``bke::bake::BakePath``).
BAKE_DIRS = ("meta", "blobs")

#: What ``BKE_image_path_from_imtype`` makes of an ocean cache frame (``disp_0001.exr``).
OCEAN_FILES = "*_[-0-9][0-9][0-9][0-9]*.exr"


def iter_modifiers(ob: Block) -> Iterator[Block]:
    """The blocks of ``Object.modifiers``; their links are in the nested ``modifier``."""
    addr = ob.get((b"modifiers", b"first"), 0)
    seen: set[int] = set()
    while addr and addr not in seen:
        seen.add(addr)
        modifier = ob.file.dereference(addr)
        if modifier is None:
            return
        yield modifier
        addr = modifier.get((b"modifier", b"next"), 0)


def read_object(block: Block, ctx: TraceContext) -> Iterator[BlockUsage]:
    """Dispatch every modifier of an object to the readers of its struct."""
    for modifier in iter_modifiers(block):
        if modifier.sdna_index:
            yield from ctx.read(modifier)


def read_mesh_cache(mod: StructView, ctx: TraceContext) -> Iterator[BlockUsage]:
    path = mod.get(b"filepath", b"")
    if path:
        yield BlockUsage(mod, b"filepath", BlendPath(path), "mesh-cache")


def read_ocean(mod: StructView, ctx: TraceContext) -> Iterator[BlockUsage]:
    stored = mod.get(b"cachepath", b"")
    if not stored:
        return
    path = BlendPath(stored)
    yield BlockUsage(mod, b"cachepath", path, "ocean-bake", is_sequence=True, is_directory=True,
                     pattern=dir_glob(ctx, path, OCEAN_FILES))


def read_fluid(mod: StructView, ctx: TraceContext) -> Iterator[BlockUsage]:
    if not mod.get(b"type", 0) & MOD_FLUID_TYPE_DOMAIN:
        return
    domain = mod.get_pointer(b"domain", None)
    if domain is None:
        return
    stored = domain.get(b"cache_directory", b"")
    if stored:
        yield BlockUsage(domain, b"cache_directory", BlendPath(stored), "fluid-cache", is_directory=True,
                         subdirs=MANTAFLOW_DIRS)


def read_smoke(mod: StructView, ctx: TraceContext) -> Iterator[BlockUsage]:
    """2.7x smoke domain: point cache 0 (cache 1 is the legacy high-resolution one)."""
    domain = mod.get_pointer(b"domain", None)
    if domain is None or not domain.has(b"ptcaches"):
        return
    ext = PTCACHE_EXT_VDB if domain.get(b"cache_file_format", 0) == PTCACHE_FILE_OPENVDB else PTCACHE_EXT
    yield from point_cache_usages(domain, ctx, (b"ptcaches", 0), (b"point_cache", 0), ext)


def read_fluidsim(mod: StructView, ctx: TraceContext) -> Iterator[BlockUsage]:
    """2.7x Elbeem fluid domain: its bake directory of ``fluidsurface_*`` files."""
    fss = mod.get_pointer(b"fss", None)
    if fss is None or not fss.get(b"type", 0) & OB_FLUIDSIM_DOMAIN:
        return
    stored = fss.get(b"surfdataPath", b"")
    if not stored:
        return
    path = BlendPath(stored)
    yield BlockUsage(fss, b"surfdataPath", path, "fluid-cache", is_sequence=True, is_directory=True,
                     pattern=dir_glob(ctx, path, "fluidsurface_*"))


def read_cloth(mod: StructView, ctx: TraceContext) -> Iterator[BlockUsage]:
    yield from point_cache_usages(mod, ctx, b"ptcaches", b"point_cache")


def read_dynamic_paint(mod: StructView, ctx: TraceContext) -> Iterator[BlockUsage]:
    """Canvas surfaces' point caches (image-sequence surfaces write outputs, not inputs)."""
    canvas = mod.get_pointer(b"canvas", None)
    if canvas is None or not canvas.has(b"surfaces"):
        return
    for surface in canvas.iter_listbase(b"surfaces"):
        yield from point_cache_usages(surface, ctx)


def c_string(view: StructView, field: bytes) -> bytes:
    """The text of a ``char *`` field: a separate data block, NUL-terminated."""
    blk = view.get_pointer(field, None)
    if blk is None:
        return b""
    return blk.raw_data().split(b"\0", 1)[0]


def _bakes(mod: StructView) -> Iterator[StructView]:
    count = mod.get(b"bakes_num", 0)
    blk = mod.get_pointer(b"bakes", None)
    if blk is None or count <= 0:
        return
    try:
        st = mod.file.dna.struct(b"NodesModifierBake")
    except KeyError:
        return
    for i in range(min(count, blk.size // st.size)):
        yield mod.file.struct_at(st, blk.offset + i * st.size)


def read_nodes(mod: StructView, ctx: TraceContext) -> Iterator[BlockUsage]:
    """Geometry Nodes bakes on disk (simulation zones and Bake nodes)."""
    mod_field = b"simulation_bake_directory"
    if not mod.has(mod_field):
        return
    mod_dir = c_string(mod, mod_field)
    if not mod.has(b"bakes"):
        # 3.6/4.0: one simulation bake directory for the whole modifier.
        if mod_dir:
            yield BlockUsage(mod, mod_field, BlendPath(mod_dir), "geonodes-bake", is_directory=True,
                             optional=True)
        return
    mod_target = mod.get(b"bake_target", None)
    for bake in _bakes(mod):
        target = bake.get(b"bake_target", None)
        if target == NODES_MODIFIER_BAKE_TARGET_INHERIT:
            target = mod_target
        if target == NODES_MODIFIER_BAKE_TARGET_PACKED or bake.get(b"packed", 0):
            continue
        if bake.get(b"flag", 0) & NODES_MODIFIER_BAKE_CUSTOM_PATH:
            custom = c_string(bake, b"directory")
            if custom:
                yield BlockUsage(bake, b"directory", BlendPath(custom), "geonodes-bake", is_directory=True,
                                 subdirs=BAKE_DIRS, optional=True)
        elif mod_dir:
            path = BlendPath(mod_dir)
            yield BlockUsage(mod, mod_field, path, "geonodes-bake", is_directory=True, optional=True,
                             pattern=dir_glob(ctx, path, f"{bake.get(b'id')}/**/*"))


READERS = {
    b"OB": read_object,
    "MeshCacheModifierData": read_mesh_cache,
    "OceanModifierData": read_ocean,
    "FluidModifierData": read_fluid,
    "SmokeModifierData": read_smoke,
    "FluidsimModifierData": read_fluidsim,
    "ClothModifierData": read_cloth,
    "DynamicPaintModifierData": read_dynamic_paint,
    "NodesModifierData": read_nodes,
}
