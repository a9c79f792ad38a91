"""Blend files whose paths are odd, hostile or lead to a missing-file report: made by Blender.

Run with Blender as a Python module (5.0; 4.2 for ``truthful``)::

    python tests/data/gen_paths.py                 # all scenarios -> tests/data/paths/v50/
    python tests/data/gen_paths.py truthful        # one scenario

Each scenario directory is wiped and made again.  Every blend file ``X.blend``
gets ``X.blend.json`` (``tests/blendfiles/fixturelib.save_fixture``) plus what
Blender itself says after re-opening it:

``blender_missing``
    the paths ``bpy.ops.file.report_missing_files`` reports (Blender's own
    missing-file report), relative to the scenario root when inside it;
``libraries_missing``
    libraries Blender could not load (``Library.is_missing``: absent, or not a
    blend file);
``loaded``
    per image: the stored path, whether Blender could read a file for it and
    the image's size (every candidate file has its own width, so the size says
    *which* file Blender read);

Scenarios:

* ``odd``: ``paths.blend`` with images stored as ``///abs/t.png``,
  ``//\\sub\\t.png``, ``//sub\\t2.png``, ``//sub/../abs/t.png`` (files
  ``abs/t.png`` 2 px wide, ``sub/t.png`` 3 px, ``sub/t2.png`` 4 px), and the
  foreign paths ``C:\\textures\\wood.png``, ``C:/textures/fwd.png``,
  ``\\\\server\\share\\tex.png``, ``\\\\?\\C:\\long\\x.png``, ``D:relative.png``
  and ``\\textures\\rooted.png``.
* ``truthful``: ``main.blend`` with a dynamic paint canvas whose disk cache was
  never baked; two texts saved to files that were then deleted (one loaded from
  its file, one written with ``Text.save``, which Blender keeps flagged as
  in-memory); an external point cache (second particle system of
  ``ExtEmitter``, directory ``//ext_cache`` without a trailing slash, name
  ``Sim``, index 1, files ``Sim_<frame>_01.bphys`` copied from a real bake;
  Blender reports the directory); a linked
  library ``libs/broken.blend`` overwritten with text after linking; one movie
  ``//footage/gone.mp4`` used by a movie clip, a movie strip and an image, then
  deleted.
* ``hostile``: ``proj/shot/main.blend`` (project ``proj``) whose images try to
  escape or to read what they must not: traversal to ``/etc/passwd``,
  ``/etc/hostname``, ``/proc/self/environ``, ``/dev/zero``, ``/dev/stdin``,
  ``/sys/kernel/mm/transparent_hugepage/enabled``, a name over 255 bytes, a
  ~900-byte deep path, control characters, two names differing only by case,
  a path left behind a NUL in its field, and cache directories (an ocean
  modifier at ``//cache_ocean/``, a fluid domain at ``//cache_fluid``) that the
  tests fill with FIFOs, sockets and links.  It links ``//../libs/a.blend``
  (which links ``b.blend``, which links ``a.blend`` back) and
  ``//../libs/self.blend``, a library that links itself.  The files the paths
  name are created by the tests (``hostile_files`` in the JSON lists them),
  since git cannot hold FIFOs and the names are awkward on some systems.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import struct
import sys
import tempfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import bpy

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "blendfiles"))
from fixturelib import reset, save_fixture  # noqa: E402

OUT = HERE / "paths" / f"v{bpy.app.version[0]}{bpy.app.version[1]}"
MOVIE = HERE.parent / "blendfiles" / "v50" / "images" / "textures" / "clip.mp4"


# --- helpers -------------------------------------------------------------------------


def png(path: Path, width: int, height: int = 1) -> Path:
    """A tiny valid PNG whose width tells which file Blender read."""
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = b"".join(b"\0" + b"\x80\x40\x20" * width for _ in range(height))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    return path


def save(blend: Path, compress: bool = False) -> None:
    bpy.ops.wm.save_as_mainfile(filepath=str(blend), compress=compress, relative_remap=False)


def image(name: str, stored: str) -> bpy.types.Image:
    """An image datablock that only names a file (fake user, so it is saved)."""
    img = bpy.data.images.new(name, 1, 1)
    img.source = "FILE"
    img.filepath = stored
    img.use_fake_user = True
    return img


def link_object(ob: bpy.types.Object) -> bpy.types.Object:
    bpy.context.scene.collection.objects.link(ob)
    return ob


def quad(name: str) -> bpy.types.Object:
    me = bpy.data.meshes.new(name + "Mesh")
    me.from_pydata([(0, 0, 0), (1, 0, 0), (0, 1, 0), (1, 1, 0)], [], [(0, 1, 3, 2)])
    return link_object(bpy.data.objects.new(name, me))


@contextlib.contextmanager
def captured_output() -> Iterator[list[str]]:
    """What Blender prints (C level, both streams) while the block runs."""
    lines: list[str] = []
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        sys.stdout.flush()
        sys.stderr.flush()
        saved = os.dup(1), os.dup(2)
        os.dup2(tmp.fileno(), 1)
        os.dup2(tmp.fileno(), 2)
        try:
            yield lines
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            tmp.seek(0)
            lines.extend(tmp.read().decode("utf-8", "replace").splitlines())


def _rel(path: str, root: Path) -> str:
    p = os.path.normpath(path)
    return Path(p).relative_to(root).as_posix() if Path(p).is_relative_to(root) else p


def record(blend: Path, root: Path, *, compress: bool = False, notes: str = "", **extra: object) -> dict:  # type: ignore[type-arg]
    """save_fixture, then Blender's own missing-file report and what it loads."""
    rec = save_fixture(blend, root, compress=compress, notes=notes)
    with captured_output() as lines:
        bpy.ops.file.report_missing_files()
    missing = sorted({_rel(m.group(1), root) for line in lines
                      if (m := re.search(r"Path '(.*)' not found", line))})
    loaded = {}
    for img in bpy.data.images:
        if img.library is None and img.source == "FILE" and not img.packed_file:
            img.reload()
            loaded[img.name] = {"stored": img.filepath, "loaded": bool(img.has_data), "size": list(img.size)}
    rec.update({
        "blender_missing": missing,
        "libraries_missing": sorted(lib.filepath for lib in bpy.data.libraries if lib.is_missing),
        "loaded": loaded,
        **extra,
    })
    blend.with_name(blend.name + ".json").write_text(json.dumps(rec, indent=2, ensure_ascii=False) + "\n")
    return rec


# --- scenarios -----------------------------------------------------------------------


def odd(root: Path) -> None:
    reset()
    blend = root / "paths.blend"
    save(blend)
    png(root / "abs" / "t.png", 2)
    png(root / "sub" / "t.png", 3)
    png(root / "sub" / "t2.png", 4)
    for name, stored in [("TripleSlash", "///abs/t.png"), ("BackslashRoot", "//\\sub\\t.png"),
                         ("Backslash", "//sub\\t2.png"), ("DotDot", "//sub/../abs/t.png"),
                         ("WinDrive", "C:\\textures\\wood.png"), ("WinDriveSlash", "C:/textures/fwd.png"),
                         ("WinUNC", "\\\\server\\share\\tex.png"), ("WinLong", "\\\\?\\C:\\long\\x.png"),
                         ("WinDriveRelative", "D:relative.png"), ("WinRooted", "\\textures\\rooted.png")]:
        image(name, stored)
    with tempfile.TemporaryDirectory() as cwd:  # Blender reads D:relative.png from its working directory
        old = os.getcwd()
        os.chdir(cwd)
        try:
            record(blend, root, notes="Blend-relative paths whose remainder starts with a separator, "
                   "backslashes, and paths of Windows (foreign on Linux). 'loaded' says which file Blender read "
                   "(by width: abs/t.png 2, sub/t.png 3, sub/t2.png 4).")
        finally:
            os.chdir(old)


def _bake_point_caches() -> None:
    with bpy.context.temp_override(scene=bpy.context.scene, view_layer=bpy.context.view_layer):
        bpy.ops.ptcache.bake_all(bake=True)


def _strips(owner):  # type: ignore[no-untyped-def]
    return owner.strips if hasattr(owner, "strips") else owner.sequences


def _dynamic_paint_canvas(name: str) -> None:
    ob = quad(name)
    mod = ob.modifiers.new("DynamicPaint", "DYNAMIC_PAINT")
    bpy.context.view_layer.objects.active = ob
    with bpy.context.temp_override(object=ob, active_object=ob):
        bpy.ops.dpaint.type_toggle(type="CANVAS")
    surface = mod.canvas_settings.canvas_surfaces[0]
    surface.surface_format = "VERTEX"
    surface.point_cache.use_disk_cache = True
    surface.point_cache.name = "NeverBaked"


def truthful(root: Path) -> None:
    # The library first: a real blend file, replaced by text once linked.
    reset()
    lib = root / "libs" / "broken.blend"
    lib.parent.mkdir(parents=True)
    quad("LibThing")
    save(lib)

    reset()
    scene = bpy.context.scene
    scene.frame_start, scene.frame_end = 1, 3
    blend = root / "main.blend"
    save(blend)
    _dynamic_paint_canvas("Canvas")

    # Texts saved to files that are then deleted.
    (root / "scripts").mkdir()
    (root / "scripts" / "loaded.py").write_text("print('loaded')\n")
    bpy.data.texts.load("//scripts/loaded.py")
    written = bpy.data.texts.new("written.py")
    written.write("print('written')\n")
    written.filepath = "//scripts/written.py"
    with bpy.context.temp_override(edit_text=written):
        bpy.ops.text.save()

    # External point cache: files copied from a real bake, named as Blender reads them.
    src = quad("Source")
    src.modifiers.new("Particles", "PARTICLE_SYSTEM")
    settings = src.particle_systems[0].settings
    settings.count, settings.frame_start, settings.frame_end = 4, 1, 2
    cache = src.particle_systems[0].point_cache
    cache.use_disk_cache, cache.name = True, "Baked"
    cache.frame_start, cache.frame_end = 1, 3
    save(blend)
    _bake_point_caches()
    ext = quad("ExtEmitter")
    for i in range(2):
        ext.modifiers.new(f"Particles{i}", "PARTICLE_SYSTEM")
        ext.particle_systems[i].settings = settings
    ext_cache = ext.particle_systems[1].point_cache
    ext_cache.use_external = True
    ext_cache.filepath = "//ext_cache"
    ext_cache.name = "Sim"
    ext_cache.index = 1  # "Index Number" in the external cache's panel
    # Turning "External" on in the panel also marks the cache as on disk (and baked);
    # set from Python, the update does not always run, so say it explicitly.
    ext_cache.use_disk_cache = True
    baked = root / "ext_src"
    shutil.move(root / "blendcache_main", baked)  # the source's own bake is not the point here
    src.particle_systems[0].point_cache.use_disk_cache = False
    index = ext_cache.index
    (root / "ext_cache").mkdir()
    for f in sorted(baked.glob("Baked_*_00.bphys")):
        frame = f.name.split("_")[1]
        shutil.copyfile(f, root / "ext_cache" / f"Sim_{frame}_{index:02d}.bphys")
    shutil.rmtree(baked)

    # One movie, three users.
    (root / "footage").mkdir()
    movie = root / "footage" / "gone.mp4"
    shutil.copyfile(MOVIE, movie)
    clip = bpy.data.movieclips.load(str(movie))
    clip.filepath = "//footage/gone.mp4"
    clip.use_fake_user = True
    ed = scene.sequence_editor_create()
    strip = _strips(ed).new_movie(name="GoneStrip", filepath=str(movie), channel=1, frame_start=1)
    strip.filepath = "//footage/gone.mp4"
    img = bpy.data.images.load(str(movie))
    img.filepath = "//footage/gone.mp4"
    img.use_fake_user = True

    with bpy.data.libraries.load(str(lib), link=True, relative=True) as (_src, dst):
        dst.objects = ["LibThing"]
    for ob in dst.objects:
        scene.collection.objects.link(ob)
    save(blend)

    os.remove(root / "scripts" / "loaded.py")
    os.remove(root / "scripts" / "written.py")
    os.remove(movie)
    lib.write_text("not a blend file\n")
    record(blend, root, notes="Nothing to pack for the never-baked canvas cache; two texts whose files are gone; "
           "an external point cache Blender reads (see point_caches); a library that is not a blend file; "
           "one missing movie used three times.")


HOSTILE_DEEP = "/".join(["deep"] * 170) + "/t.png"  # ~860 bytes
HOSTILE_LONG_NAME = "b" * 300 + ".png"
HOSTILE_CONTROL = "ctl\x01\x1b[31m\ttab.png"
#: stored path -> the file (relative to proj/shot/) the test creates, or None: a system path.
HOSTILE_IMAGES = {
    "Traversal": ("//../../../../../../../../../../../../etc/passwd", None),
    "EtcHostname": ("/etc/hostname", None),
    "ProcEnviron": ("/proc/self/environ", None),
    "DevZero": ("/dev/zero", None),
    "DevStdin": ("/dev/stdin", None),
    "SysFile": ("/sys/kernel/mm/transparent_hugepage/enabled", None),
    "LongName": ("//tex/" + HOSTILE_LONG_NAME, None),
    "Deep": ("//" + HOSTILE_DEEP, HOSTILE_DEEP),
    "Control": ("//tex/" + HOSTILE_CONTROL, "tex/" + HOSTILE_CONTROL),
    "CaseUpper": ("//tex/Case.png", "tex/Case.png"),
    "CaseLower": ("//tex/case.png", "tex/case.png"),
    "AfterNul": ("//tex/ok.png", "tex/ok.png"),
    "Fifo": ("//tex/fifo.png", None),
    "Loop": ("//loop/x.png", None),
    "NotDir": ("//tex/ok.png/x.png", None),
}


def _library(path: Path, thing: str, links: list[tuple[Path, str]] = ()) -> None:  # type: ignore[assignment]
    reset()
    save(path)
    quad(thing)
    for lib, name in links:
        with bpy.data.libraries.load(str(lib), link=True, relative=True) as (_s, dst):
            dst.objects = [name]
        for ob in dst.objects:
            bpy.context.scene.collection.objects.link(ob)
    save(path)


def hostile(root: Path) -> None:
    libs = root / "proj" / "libs"
    libs.mkdir(parents=True)
    # a.blend <-> b.blend: b links a's object, then a links b's.
    _library(libs / "a.blend", "AThing")
    _library(libs / "b.blend", "BThing", [(libs / "a.blend", "AThing")])
    _library(libs / "a.blend", "AThing", [(libs / "b.blend", "BThing")])
    # self.blend links itself: made as other.blend linking //self.blend, then copied over it.
    _library(libs / "self.blend", "SelfThing")
    _library(libs / "other.blend", "OtherThing", [(libs / "self.blend", "SelfThing")])
    shutil.copyfile(libs / "other.blend", libs / "self.blend")
    os.remove(libs / "other.blend")

    reset()
    blend = root / "proj" / "shot" / "main.blend"
    blend.parent.mkdir(parents=True)
    save(blend)
    for name, (stored, _file) in HOSTILE_IMAGES.items():
        img = image(name, stored)
        if name == "AfterNul":
            # Blender copies strings with their terminating NUL and leaves what was
            # after it: the field keeps a longer, older path behind the NUL.
            img.filepath = "//tex/" + "x" * 200 + "/../../../../../../../../etc/passwd"
            img.filepath = stored
    ocean = quad("Ocean").modifiers.new("Ocean", "OCEAN")
    ocean.resolution = 1
    ocean.filepath = "//cache_ocean/"
    domain = quad("FluidDomain")
    fluid = domain.modifiers.new("Fluid", "FLUID")
    fluid.show_viewport = False
    fluid.fluid_type = "DOMAIN"
    fluid.domain_settings.cache_directory = "//cache_fluid"
    for lib, thing in ((libs / "a.blend", "AThing"), (libs / "self.blend", "OtherThing")):
        with bpy.data.libraries.load(str(lib), link=True, relative=True) as (_s, dst):
            dst.objects = [thing]
        for ob in dst.objects:
            bpy.context.scene.collection.objects.link(ob)
    record(blend, root / "proj", notes="Hostile paths; the tests create the files (hostile_files).",
           hostile_files=sorted(f for _s, f in HOSTILE_IMAGES.values() if f))


SCENARIOS: dict[str, Callable[[Path], None]] = {"odd": odd, "truthful": truthful, "hostile": hostile}


def main(argv: list[str]) -> int:
    names = argv or list(SCENARIOS)
    for name in names:
        root = OUT / name
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        SCENARIOS[name](root)
        bpy.ops.wm.read_factory_settings(use_empty=True)
        print(f"{name}: {sorted(str(p.relative_to(root)) for p in root.rglob('*') if p.is_file())[:20]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
