"""Point caches on disk: particles, cloth, soft body, dynamic paint (``.bphys`` files).

Blender names the files itself (``ptcache_path``/``ptcache_filepath`` in
``pointcache.cc``), so for a plain disk cache no path is stored at all:

* directory: ``blendcache_<blend file name without extension>/`` next to the
  blend file that holds the owner (a library's own file for linked objects);
* file: ``<prefix>_<frame:06d>_<index:02d>.bphys``, where the prefix is the
  cache's name or, when that is empty, the owner ID's name (without its
  two-letter code) in upper-case hex, and the index is the cache's stack index.

An external cache (``PTCACHE_EXTERNAL``) reads ``PointCache.path`` instead and is
always named after the cache, even an unnamed one (``<name>_<frame>_<index>.bphys``,
or ``<name>_<frame>.bphys`` when the index is negative).

Not modelled: ``PTCACHE_IGNORE_LIBPATH`` on a linked object's cache makes Blender
use the *main* file's ``blendcache_`` directory; bat looks next to the library.

Every owner (particle system, cloth, soft body, dynamic paint surface, 2.7x
smoke) goes through :func:`point_cache_usages`.  Rigid body world caches are not
read here: Blender keeps them in memory only.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator

from bat_core.blendfile import Block, StructView
from bat_core.bpathlib import BlendPath
from bat_core.trace import BlockUsage, TraceContext

# PointCache.flag (DNA_pointcache_types.h / DNA_object_force_types.h).
PTCACHE_DISK_CACHE = 1 << 6
PTCACHE_EXTERNAL = 1 << 9

PTCACHE_PATH = b"blendcache_"
PTCACHE_EXT = ".bphys"
PTCACHE_EXT_VDB = ".vdb"  # 2.7x smoke caches with cache_file_format OpenVDB

#: ``%06d`` of a frame number: six digits, or a minus sign and five.
_FRAME_GLOB = "[-0-9]" + "[0-9]" * 5


def dir_glob(ctx: TraceContext, path: BlendPath, pattern: str) -> str:
    """A usage ``pattern`` selecting ``pattern`` inside the directory ``path`` names.

    The tracer globs patterns relative to the resolved path's parent, so the
    directory's own name (as the tracer will resolve it) leads the pattern.
    """
    name = path.absolute(ctx.blendfile.path).name
    if not name:  # the file-system root is its own parent
        return pattern
    return f"{glob.escape(name)}/{pattern}"


def hex_id_name(id_name: bytes) -> str:
    """The file prefix of an unnamed cache: the ID name without its code, in hex.

    One ``%02X`` per byte (Blender builds with unsigned ``char``, so a UTF-8 name
    like ``Émi`` gives ``C3896D69``).
    """
    return id_name[2:].hex().upper()


def point_cache_usage(cache: StructView, ctx: TraceContext, ext: str = PTCACHE_EXT) -> Iterator[BlockUsage]:
    """The files of one PointCache, when it is cached on disk (nothing otherwise)."""
    flag = cache.get(b"flag", 0)
    if not flag & PTCACHE_DISK_CACHE:
        return
    name = cache.get(b"name", b"")
    index = cache.get(b"index", -1)
    if flag & PTCACHE_EXTERNAL:
        stored = cache.get(b"path", b"")
        if not stored:
            return
        path = BlendPath(stored)
        prefix = glob.escape(os.fsdecode(name))
        suffix = f"_{_FRAME_GLOB}_{index:02d}{ext}" if index >= 0 else f"_{_FRAME_GLOB}{ext}"
        field: bytes | None = b"path"
    else:
        stem = os.fsencode(ctx.blendfile.path.stem)
        path = BlendPath(b"//" + PTCACHE_PATH + stem + b"/")
        prefix = glob.escape(os.fsdecode(name)) if name else hex_id_name(ctx.id_name())
        # A negative index is assigned on first write; match whatever it became.
        suffix = f"_{_FRAME_GLOB}_{index:02d}{ext}" if index >= 0 else f"_{_FRAME_GLOB}_*{ext}"
        field = None
    # A cache in blendcache_<file>/ that was never baked is not missing: Blender
    # writes it itself and does not report it.  An external one is a directory
    # the user chose, which Blender reports (and misses) like any path.
    yield BlockUsage(cache, field, path, "point-cache", is_sequence=True, is_directory=True,
                     pattern=dir_glob(ctx, path, prefix + suffix), optional=field is None)


def point_cache_usages(owner: StructView, ctx: TraceContext, list_field: bytes | tuple[bytes, int] = b"ptcaches",
                       pointer_field: bytes | tuple[bytes, int] = b"pointcache",
                       ext: str = PTCACHE_EXT) -> Iterator[BlockUsage]:
    """Every disk cache of one owner: its cache stack, or the single cache of old files."""
    caches: list[Block] = []
    if owner.has(list_field):
        caches = list(owner.iter_listbase(list_field))
    if not caches:
        single = owner.get_pointer(pointer_field, None)
        if single is not None:
            caches = [single]
    for cache in caches:
        if cache.dna_type.name != b"PointCache":
            continue
        yield from point_cache_usage(cache, ctx, ext)


def read_particle_system(psys: StructView, ctx: TraceContext) -> Iterator[BlockUsage]:
    yield from point_cache_usages(psys, ctx)


def read_object(block: Block, ctx: TraceContext) -> Iterator[BlockUsage]:
    """Particle systems (dispatched by struct name) and the soft body of an object."""
    # Most objects have neither: test the pointers before building any view.
    if block.get((b"particlesystem", b"first"), 0):
        for psys in block.iter_listbase(b"particlesystem"):
            yield from ctx.read(psys)
    soft = block.get_pointer(b"soft", None) if block.get(b"soft", 0) else None
    if soft is not None:
        # 2.8+ keeps the caches in SoftBody_Shared (the copy in SoftBody is legacy).
        shared = soft.get_pointer(b"shared", None)
        yield from point_cache_usages(shared if shared is not None else soft, ctx)


READERS = {b"OB": read_object, "ParticleSystem": read_particle_system}
