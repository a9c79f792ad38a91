"""Cache, bake and point-cache readers: what each usage says, beyond the file sets.

The generic fixture test checks *which* files are found; these check that every
usage names the field its path is stored in (so a packer can rewrite it), has a
sensible kind, and that sequences, patterns and flags are honoured.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from bat_core.blendfile import open_blend
from bat_core.bpathlib import BlendPath
from bat_core.trace import BlendFileCache, BlockUsage, trace
from bat_plugins.readers.modifiers import c_string
from bat_plugins.readers.pointcache import PTCACHE_DISK_CACHE, hex_id_name

from .conftest import BLENDFILES, VERSIONS, Fixture, fixture

CACHE_FIXTURES = {
    "caches_alembic/alembic.blend": {"cachefile"},
    "caches_usd/usd.blend": {"cachefile"},
    "volumes/volumes.blend": {"volume"},
    "mesh_cache/mesh_cache.blend": {"mesh-cache"},
    "ocean/ocean.blend": {"ocean-bake"},
    "point_caches/point_caches.blend": {"point-cache"},
    "fluid/fluid.blend": {"fluid-cache"},
    "geonodes/geonodes.blend": {"geonodes-bake", "image"},
    "multires/multires.blend": {"multires"},
}
CASES = [(v, rel) for v in VERSIONS for rel in CACHE_FIXTURES if (BLENDFILES / v / rel).exists()]


_open_files = BlendFileCache()


@pytest.fixture(autouse=True)
def _close_traced_files() -> Iterator[None]:
    """Traced files stay open during a test so usages can be read back, as a packer does."""
    yield
    _open_files.close_all()


def _usages(blend: Path) -> list[BlockUsage]:
    return list(trace(blend, cache=_open_files))


def _stored(u: BlockUsage) -> bytes:
    """What ``u.field`` holds; Geometry Nodes bake directories are ``char *`` strings."""
    assert u.field is not None
    if isinstance(u.field, bytes) and u.block.dna_type.field(u.field).is_pointer:
        return c_string(u.block, u.field)
    value = u.block.get(u.field)
    assert isinstance(value, bytes)
    return value


def _rel(paths: list[Path], root: Path) -> list[str]:
    return sorted(p.relative_to(root.resolve()).as_posix() for p in paths)


def _by_block(usages: list[BlockUsage], name: bytes) -> list[BlockUsage]:
    return [u for u in usages if u.block_name == name]


@pytest.mark.parametrize(("version", "rel"), CASES, ids=[f"{v}/{r}" for v, r in CASES])
def test_fields_read_back_and_kinds(version: str, rel: str) -> None:
    usages = _usages(BLENDFILES / version / rel)
    assert {u.kind for u in usages} == CACHE_FIXTURES[rel]
    for u in usages:
        if u.field is None:
            # Only plain disk point caches are implied: blendcache_<blend name>/.
            assert u.kind == "point-cache"
            assert u.asset_path == b"//blendcache_" + Path(rel).stem.encode() + b"/"
        else:
            assert _stored(u) == u.asset_path
        assert isinstance(u.asset_path, BlendPath)


@pytest.mark.parametrize("version", VERSIONS)
def test_cachefile_sequence_expands(version: str) -> None:
    fx = fixture(version, "caches_alembic/alembic.blend")
    usages = _usages(fx.blend)
    seq = _by_block(usages, b"CFSeqABC")
    assert len(seq) == 1 and seq[0].is_sequence
    assert _rel(seq[0].files, fx.root) == [f"cache/seq/anim_000{i}.abc" for i in (1, 2, 3)]
    single = _by_block(usages, b"CFAnimABC")
    assert len(single) == 1 and not single[0].is_sequence
    assert _rel(single[0].files, fx.root) == ["cache/anim.abc"]


@pytest.mark.parametrize("version", VERSIONS)
def test_volume_sequence_expands(version: str) -> None:
    fx = fixture(version, "volumes/volumes.blend")
    usages = _usages(fx.blend)
    (seq,) = _by_block(usages, b"VOFluidSequence")
    assert seq.is_sequence and seq.field == b"filepath"
    assert _rel(seq.files, fx.root) == [f"vdb/seq/fluid_000{i}.vdb" for i in (1, 2, 3)]
    (smoke,) = _by_block(usages, b"VOSmoke")
    assert _rel(smoke.files, fx.root) == ["vdb/smoke.vdb"]


@pytest.mark.parametrize("version", VERSIONS)
def test_point_cache_file_names(version: str) -> None:
    fx = fixture(version, "point_caches/point_caches.blend")
    usages = _usages(fx.blend)
    by_owner = {u.block_name: u for u in usages}
    assert set(by_owner) == {b"OBEmitter", b"OBExtEmitter", b"OBCloth", b"OBSoftBody", b"OBCanvas"}
    frames = (1, 2, 3)
    expected = {
        # Unnamed cache: the object's name in hex; particles also write frame 0.
        b"OBEmitter": [f"blendcache_point_caches/456D6974746572_00000{i}_00.bphys" for i in (0, *frames)],
        b"OBCloth": [f"blendcache_point_caches/ClothCache_00000{i}_00.bphys" for i in frames],
        b"OBSoftBody": [f"blendcache_point_caches/SoftCache_00000{i}_00.bphys" for i in frames],
        b"OBCanvas": [f"blendcache_point_caches/PaintCache_00000{i}_00.bphys" for i in frames],
        b"OBExtEmitter": [f"external_cache/ExtParticles_00000{i}_00.bphys" for i in (0, *frames)],
    }
    for owner, files in expected.items():
        assert _rel(by_owner[owner].files, fx.root) == files, owner
        assert by_owner[owner].block.dna_type.name == b"PointCache"
    ext = by_owner[b"OBExtEmitter"]
    assert ext.field == b"path" and ext.asset_path == b"//external_cache/" and ext.is_directory


def test_hex_prefix_of_unnamed_cache() -> None:
    assert hex_id_name(b"OBEmitter") == "456D6974746572"
    # Checked against Blender 5.0: object "Émi" bakes C3896D69_000001_00.bphys.
    assert hex_id_name("OBÉmi".encode()) == "C3896D69"


def test_point_cache_without_disk_cache_not_reported(tmp_path: Path) -> None:
    src = BLENDFILES / "v50" / "point_caches"
    shutil.copytree(src / "blendcache_point_caches", tmp_path / "blendcache_point_caches")
    out = tmp_path / "point_caches.blend"
    with open_blend(src / "point_caches.blend") as bf:
        cloth = bf.find_id(b"OB", b"Cloth")
        assert cloth is not None
        mod = next(cloth.iter_listbase(b"modifiers"))
        cache = mod.get_pointer(b"point_cache")
        cache.set(b"flag", cache.get(b"flag") & ~PTCACHE_DISK_CACHE)
        bf.save(out)
    owners = {u.block_name for u in _usages(out)}
    assert b"OBCloth" not in owners
    assert {b"OBEmitter", b"OBSoftBody", b"OBCanvas"} <= owners
    # The cloth's files are still there, merely no longer used.
    assert (tmp_path / "blendcache_point_caches" / "ClothCache_000001_00.bphys").exists()


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("rel", ["ocean/ocean.blend", "point_caches/point_caches.blend"])
def test_reported_directories_stand_for_their_files(version: str, rel: str) -> None:
    """Blender reports a cache directory (and, for disk caches, an empty path); bat
    lists the files Blender reads from it and no missing path."""
    fx = fixture(version, rel)
    usages = _usages(fx.blend)
    assert all(u.files for u in usages)
    found = {p for u in usages for p in _rel(u.files, fx.root)}
    dirs_as_files = {e for e in fx.expected["existing_files"] if not (fx.root / e).is_dir()}
    assert found == dirs_as_files | set(fx.expected["baked_files"])


@pytest.mark.parametrize("version", VERSIONS)
def test_ocean_pattern_takes_only_baked_frames(version: str, copy_scenario) -> None:  # type: ignore[no-untyped-def]
    root = copy_scenario(version, "ocean")
    (root / "ocean_cache" / "notes.txt").write_text("not a bake")
    (root / "ocean_cache" / "disp_preview.exr").write_bytes(b"")
    (usage,) = _usages(root / "ocean.blend")
    assert usage.kind == "ocean-bake" and usage.field == b"cachepath"
    assert _rel(usage.files, root) == [f"ocean_cache/{k}_000{i}.exr" for k in ("disp", "foam") for i in (1, 2)]


@pytest.mark.parametrize("version", VERSIONS)
def test_fluid_cache_directory_missing(version: str) -> None:
    fx = fixture(version, "fluid/fluid.blend")
    (usage,) = _usages(fx.blend)  # the flow object's Fluid modifier is not a domain
    assert usage.kind == "fluid-cache" and usage.is_directory
    assert usage.field == b"cache_directory" and usage.block.dna_type.name == b"FluidDomainSettings"
    assert usage.files == [] and usage.abspath == (fx.root / "fluid_cache").resolve()


def _geonodes(fx: Fixture) -> tuple[BlockUsage, BlockUsage]:
    bakes = [u for u in _usages(fx.blend) if u.kind == "geonodes-bake"]
    assert len(bakes) == 2
    (sim,) = [u for u in bakes if u.block.dna_type.name == b"NodesModifierData"]
    (custom,) = [u for u in bakes if u.block.dna_type.name == b"NodesModifierBake"]
    return sim, custom


@pytest.mark.parametrize("version", VERSIONS)
def test_geonodes_bake_directories(version: str) -> None:
    fx = fixture(version, "geonodes/geonodes.blend")
    sim, custom = _geonodes(fx)
    assert sim.field == b"simulation_bake_directory" and sim.asset_path == b"//gn_bake"
    assert custom.field == b"directory" and custom.asset_path == b"//gn_bake_custom"
    assert custom.is_directory
    # Without a custom path a bake lives in <modifier bake directory>/<bake id>/.
    bake_ids = {p.split("/")[1] for p in _rel(sim.files, fx.root)}
    assert len(bake_ids) == 1 and bake_ids.pop().isdigit()
    assert {p.split("/", 2)[2] for p in _rel(sim.files, fx.root)} == {
        "meta/00001_00000.json", "meta/00002_00000.json", "blobs/00001_00000.blob", "blobs/00002_00000.blob"}
    assert _rel(custom.files, fx.root) == ["gn_bake_custom/blobs/00001_00000.blob",
                                           "gn_bake_custom/meta/00001_00000.json"]


def test_geonodes_packed_bakes_are_not_files(tmp_path: Path) -> None:
    """Modifier bake target PACKED: bakes that inherit it are inside the blend file."""
    src = BLENDFILES / "v50" / "geonodes"
    out = tmp_path / "geonodes.blend"
    with open_blend(src / "geonodes.blend") as bf:
        obj = bf.find_id(b"OB", b"GNObject")
        assert obj is not None
        mod = next(obj.iter_listbase(b"modifiers"))
        mod.set(b"bake_target", 1)
        mod.set(b"bakes_num", 1000)  # nonsense count: clamped to the stored items
        bf.save(out)
    bakes = [u for u in _usages(out) if u.kind == "geonodes-bake"]
    assert [u.asset_path for u in bakes] == [b"//gn_bake_custom"]  # its own target is DISK


@pytest.mark.parametrize("version", VERSIONS)
def test_mesh_cache_and_multires_fields(version: str) -> None:
    fx = fixture(version, "mesh_cache/mesh_cache.blend")
    paths = {u.block_name: (u.field, u.asset_path) for u in _usages(fx.blend)}
    assert paths == {b"OBMDDBox": (b"filepath", b"//cache/deform.mdd"),
                     b"OBPC2Box": (b"filepath", b"//cache/deform.pc2")}
    fx = fixture(version, "multires/multires.blend")
    (usage,) = _usages(fx.blend)
    assert usage.block_name == b"MESculptMesh" and usage.block.dna_type.name == b"CustomDataExternal"
    assert usage.field == b"filename" and usage.asset_path == b"//multires/sculpt_disp.btx"


EXTRA = Path(__file__).parent / "data" / "caches_extra"  # made by tests/data/gen_caches_extra.py


def test_every_modifier_of_an_object_and_linked_caches() -> None:
    """Several modifiers on one object; caches of linked objects live next to the library."""
    found = {(u.block_name, u.kind): _rel(u.files, EXTRA) for u in _usages(EXTRA / "main.blend")}
    frames = ("000001", "000002")
    assert found == {
        (b"LIlib.blend", "library"): ["libs/lib.blend"],
        # Local object: Mesh Cache, then Cloth with a named disk cache.
        (b"OBLocal", "mesh-cache"): ["cache/local.pc2"],
        (b"OBLocal", "point-cache"): [f"blendcache_main/LocalCloth_{f}_00.bphys" for f in frames],
        # Linked object: Cloth (unnamed cache: hex of "Flag"), then Mesh Cache.
        (b"OBFlag", "point-cache"): [f"libs/blendcache_lib/466C6167_{f}_00.bphys" for f in frames],
        (b"OBFlag", "mesh-cache"): ["libs/cache/flag.pc2"],
        # Linked object with a non-ASCII name: hex of its UTF-8 bytes.
        ("OBÉmi".encode(), "point-cache"): [f"libs/blendcache_lib/C3896D69_{f}_00.bphys"
                                            for f in ("000000", *frames)],
    }
