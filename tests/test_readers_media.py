"""Media, sequencer, node and texture-slot readers: what each usage says, beyond the file sets.

The generic fixture test checks *which* files are found; these check that every
usage names the field its path is stored in (so a packer can rewrite it), that
packed, built-in and internal data are left out, that meta strips are walked,
and that the texture-slot expanders alone lead from a linked brush, particle
settings or line style to its images.  ``tests/data/media_extra`` (made by
``tests/data/gen_media_extra.py`` with Blender 5.0) adds what the shared
fixtures lack: nested meta strips, a missing strip element, packed sound and
font, node groups, lights and worlds with IES/OSL nodes, all partly linked.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import bat_core
from bat_core.blendfile import StructView, open_blend
from bat_core.bpathlib import BlendPath
from bat_core.plugins import Registry, get_registry
from bat_core.trace import BlendFileCache, BlockUsage, TraceContext, Tracer, trace
from bat_plugins.readers.expand import expand_id
from bat_plugins.readers.images import read_image
from bat_plugins.readers.media import c_string
from bat_plugins.readers.mtex import expand_texture_slots
from bat_plugins.readers.nodes import read_embedded_tree
from bat_plugins.readers.sequencer import join_dir, read_strip

from .conftest import BLENDFILES, VERSIONS, fixture

EXTRA = Path(__file__).parent / "data" / "media_extra"  # made by tests/data/gen_media_extra.py

KINDS = {
    "sound_sequencer/edit.blend": {"sound", "movieclip", "sequence-image", "sequence-movie", "sequence-sound"},
    "fonts_texts/texts.blend": {"font", "text"},
    "nodes/nodes.blend": {"ies", "osl-script"},
    "brush_texture/brush.blend": {"image"},
}
CASES = [(v, rel) for v in VERSIONS for rel in KINDS if (BLENDFILES / v / rel).exists()]
EXTRA_BLENDS = [EXTRA / "main.blend", EXTRA / "libs" / "lib.blend"]

_open_files = BlendFileCache()


@pytest.fixture(autouse=True)
def _close_traced_files() -> Iterator[None]:
    """Traced files stay open during a test so usages can be read back, as a packer does."""
    yield
    _open_files.close_all()


def _usages(blend: Path, plugins: tuple[object, ...] = ()) -> list[BlockUsage]:
    return list(trace(blend, cache=_open_files, plugins=plugins))


def _stored(u: BlockUsage) -> bytes:
    """What ``u.field`` holds: a char array, or a ``char *`` string (texts)."""
    assert isinstance(u.field, bytes)
    if u.block.dna_type.field(u.field).is_pointer:
        return c_string(u.block, u.field)
    value = u.block.get(u.field)
    assert isinstance(value, bytes)
    return value


def _rel(paths: list[Path], root: Path) -> list[str]:
    return sorted(p.relative_to(root.resolve()).as_posix() for p in paths)


def _check_field(u: BlockUsage) -> None:
    stored = _stored(u)
    assert isinstance(u.asset_path, BlendPath)
    if u.dir_only:
        # The directory is stored in the field, the file name in a StripElem.
        assert u.kind.startswith("sequence-")
        assert u.asset_path == join_dir(stored, Path(u.asset_path.decode()).name.encode())
    else:
        assert stored == u.asset_path


# --- every usage -------------------------------------------------------------------


@pytest.mark.parametrize(("version", "rel"), CASES, ids=[f"{v}/{r}" for v, r in CASES])
def test_fields_read_back_and_kinds(version: str, rel: str) -> None:
    usages = _usages(BLENDFILES / version / rel)
    kinds = KINDS[rel] - ({"sequence-sound"} if version == "v42" else set())  # no Audaspace in 4.2
    assert {u.kind for u in usages} == kinds
    for u in usages:
        _check_field(u)


@pytest.mark.parametrize("blend", EXTRA_BLENDS, ids=lambda p: p.name)
def test_extra_fixture_matches_blender(blend: Path) -> None:
    expected = json.loads(blend.with_name(blend.name + ".json").read_text())
    usages = _usages(blend)
    existing = {f for u in usages for f in _rel(u.files, EXTRA)}
    missing = {u.abspath.relative_to(EXTRA.resolve()).as_posix() for u in usages if not u.files}
    assert existing == set(expected["existing_files"])
    assert missing == set(expected["missing_files"])
    for u in usages:
        _check_field(u)


# --- media ---------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_movie_clips(version: str) -> None:
    fx = fixture(version, "sound_sequencer/edit.blend")
    clips = {u.block_name: u for u in _usages(fx.blend) if u.kind == "movieclip"}
    assert set(clips) == {b"MCclip_movie", b"MCclip_sequence"}
    seq = clips[b"MCclip_sequence"]
    assert seq.is_sequence and seq.field == b"name"
    assert _rel(seq.files, fx.root) == [f"footage/clip_000{i}.png" for i in (1, 2, 3)]
    movie = clips[b"MCclip_movie"]
    assert not movie.is_sequence and _rel(movie.files, fx.root) == ["footage/clip.mp4"]


@pytest.mark.parametrize("version", VERSIONS)
def test_builtin_font_and_internal_text_not_reported(version: str) -> None:
    fx = fixture(version, "fonts_texts/texts.blend")
    usages = sorted(_usages(fx.blend), key=lambda u: u.kind)
    assert [(u.kind, u.block_name, u.asset_path) for u in usages] == [
        ("font", b"VFNoto Sans Hebrew Regular", b"//fonts/NotoSansHebrew-Regular.woff2"),
        ("text", b"TXtool.py", b"//scripts/tool.py"),
    ]
    # Texts keep their path in a separate ``char *`` block, not a char array.
    text = usages[1]
    assert text.field == b"name" and text.block.dna_type.field(b"name").is_pointer


def test_packed_sound_and_font_not_reported() -> None:
    usages = _usages(EXTRA / "main.blend")
    assert not [u for u in usages if u.kind == "font"]
    assert [u.asset_path for u in usages if u.kind == "sound"] == [b"//audio/strip.wav"]
    with open_blend(EXTRA / "main.blend") as bf:  # the packed ones are there, with paths
        packed = bf.find_id(b"SO", b"packed.wav")
        assert packed is not None and packed.get(b"packedfile")
        assert {vf.get(b"name") for vf in bf.blocks_by_code(b"VF")} == {b"<builtin>", b"//fonts/packed.woff2"}


# --- sequencer -------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_image_strip_one_usage_per_element(version: str) -> None:
    fx = fixture(version, "sound_sequencer/edit.blend")
    strips = [u for u in _usages(fx.blend) if u.kind == "sequence-image"]
    assert [u.asset_path for u in strips] == [
        *(f"//strips/img_000{i}.png".encode() for i in (1, 2, 3, 4)),
        *(f"//strips/meta/meta_000{i}.png".encode() for i in (1, 2)),  # inside the meta strip
    ]
    for u in strips:
        assert u.dir_only and u.field == b"dir" and not u.is_sequence
        assert u.block.dna_type.name == b"Strip" and u.block_name == b"SCScene"
        assert len(u.files) == 1 and u.files[0].name == Path(u.asset_path.decode()).name
    # The elements of one strip share one directory field.
    assert len({u.block.offset for u in strips[:4]}) == 1


@pytest.mark.parametrize("version", VERSIONS)
def test_movie_and_sound_strips(version: str) -> None:
    fx = fixture(version, "sound_sequencer/edit.blend")
    usages = _usages(fx.blend)
    (movie,) = [u for u in usages if u.kind == "sequence-movie"]
    assert movie.asset_path == b"//strips/movie.mp4" and movie.dir_only
    assert _rel(movie.files, fx.root) == ["strips/movie.mp4"]
    sounds = [u for u in usages if u.kind == "sequence-sound"]
    if version == "v42":
        assert sounds == []  # the 4.2 fixture has no sound strip
    else:
        assert [u.asset_path for u in sounds] == [b"//audio/music.wav"]


def test_nested_meta_strips_and_missing_element() -> None:
    usages = [u for u in _usages(EXTRA / "main.blend") if u.kind.startswith("sequence-")]
    by_path = {bytes(u.asset_path): u for u in usages}
    assert set(by_path) == {b"//strips/deep_0001.png", b"//strips/deep_0002.png",  # meta in meta
                            b"//strips/gap_0001.png", b"//strips/gap_0002.png", b"//audio/strip.wav"}
    assert by_path[b"//strips/gap_0001.png"].exists
    assert not by_path[b"//strips/gap_0002.png"].exists  # reported on its own, by name


class StripCollector:
    """A third-party reader for the strip struct: it sees every strip, nested ones too."""

    def __init__(self) -> None:
        self.names: list[bytes] = []

    def read(self, strip: StructView, ctx: TraceContext) -> Iterator[BlockUsage]:
        self.names.append(strip.get(b"name"))
        yield from ()

    @bat_core.hookimpl
    def register_block_readers(self, register: Any) -> None:
        register("Sequence", self.read)


def test_strips_dispatched_by_struct_name() -> None:
    plugin = StripCollector()
    _usages(EXTRA / "main.blend", plugins=(plugin,))
    assert sorted(plugin.names) == [b"SQDeep", b"SQGap", b"SQInner", b"SQOuter", b"SQSoundStrip"]


def test_rewriting_strip_directory(tmp_path: Path) -> None:
    """What a packer does: set the directory field; the element names stay."""
    src = fixture("v50", "sound_sequencer/edit.blend").blend
    cache = BlendFileCache()
    with cache:
        usages = list(trace(src, cache=cache))
        for u in usages:
            if u.dir_only:
                assert u.field is not None
                u.block.set(u.field, b"//moved/")
        cache.open(src).save(tmp_path / "edit.blend")
    moved = {u.asset_path for u in trace(tmp_path / "edit.blend") if u.dir_only}
    assert moved == {b"//moved/" + n for n in (b"img_0001.png", b"img_0002.png", b"img_0003.png",
                                               b"img_0004.png", b"meta_0001.png", b"meta_0002.png",
                                               b"movie.mp4", b"music.wav")}


def test_odd_strips_do_not_crash() -> None:
    with open_blend(fixture("v50", "sound_sequencer/edit.blend").blend) as bf:
        ed = bf.blocks_by_code(b"SC")[0].get_pointer(b"ed")
        assert ed is not None
        strips = {s.get(b"name"): s for s in ed.iter_listbase(b"seqbase")}
        # A clip strip has no strip data file; a meta strip no elements of its own.
        assert list(read_strip(strips[b"SQClipStrip"], None)) == []  # type: ignore[arg-type]
        assert list(read_strip(strips[b"SQMetaStrip"], None)) == []  # type: ignore[arg-type]
        # The old-DNA ``Strip`` is the strip *data*: registered under that name, it is skipped.
        data = strips[b"SQImageStrip"].get_pointer(b"strip")
        assert data is not None and list(read_strip(data, None)) == []  # type: ignore[arg-type]


def test_join_dir() -> None:
    assert join_dir(b"//strips/", b"a.png") == b"//strips/a.png"
    assert join_dir(b"//strips", b"a.png") == b"//strips/a.png"
    assert join_dir(b"C:\\strips", b"a.png") == b"C:\\strips\\a.png"
    assert join_dir(b"", b"a.png") == b"a.png"


# --- nodes ---------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_ies_and_osl_in_material(version: str) -> None:
    fx = fixture(version, "nodes/nodes.blend")
    usages = {u.kind: u for u in _usages(fx.blend)}
    assert usages["ies"].block.dna_type.name == b"NodeShaderTexIES"
    assert usages["osl-script"].block.dna_type.name == b"NodeShaderScript"
    for u in usages.values():
        assert u.block_name == b"MANodesMat" and u.field == b"filepath"


def test_nodes_in_groups_lights_worlds_and_internal_mode() -> None:
    usages = [u for u in _usages(EXTRA / "libs" / "lib.blend") if u.kind in ("ies", "osl-script")]
    assert sorted((u.block_name, u.kind, u.asset_path) for u in usages) == [
        (b"LALibLight", "ies", b"//lights/light.ies"),
        (b"NTLibGroup", "ies", b"//lights/group.ies"),
        (b"WOLibWorld", "osl-script", b"//shaders/world.osl"),
    ]
    # The material's IES node is INTERNAL: its leftover path is not a dependency.
    with open_blend(EXTRA / "libs" / "lib.blend") as bf:
        paths = [b.get(b"filepath") for b in bf.blocks if b.code == b"DATA"
                 and b.dna_type.name == b"NodeShaderTexIES"]
        assert b"//lights/stale.ies" in paths


class ImageNodeStorage:
    """A third-party reader for another node storage struct (the image node's)."""

    @staticmethod
    def read(storage: StructView, ctx: TraceContext) -> Iterator[BlockUsage]:
        yield BlockUsage(storage, None, BlendPath(b"//image-node-storage"), "test-storage")

    @bat_core.hookimpl
    def register_block_readers(self, register: Any) -> None:
        register("NodeTexImage", self.read)


def test_node_storage_readers_from_plugins() -> None:
    fx = fixture("v50", "images/images.blend")
    extra = [u for u in _usages(fx.blend, plugins=(ImageNodeStorage(),)) if u.kind == "test-storage"]
    assert len(extra) == 9  # one per image node of the material
    assert {u.block_name for u in extra} == {b"MAImagesMat"}
    assert all(u.block.dna_type.name == b"NodeTexImage" for u in extra)


# --- texture slots ---------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_brush_texture_slot(version: str) -> None:
    with open_blend(fixture(version, "brush_texture/brush.blend").blend) as bf:
        (brush,) = bf.blocks_by_code(b"BR")
        assert [t.id_name for t in expand_texture_slots(brush)] == [b"TEBrushTex"]
        # Materials, lights and worlds of 4.2 and 5.0 have no slots: nothing, no error.
        for block in bf.blocks:
            if block.code in (b"MA", b"LA", b"WO", b"SC"):
                assert list(expand_texture_slots(block)) == []


def test_texture_slots_of_library_data() -> None:
    with open_blend(EXTRA / "libs" / "lib.blend") as bf:
        found = {b.id_name: [t.id_name for t in expand_texture_slots(b)]
                 for code in (b"BR", b"PA", b"LS") for b in bf.blocks_by_code(code)}
    assert found == {b"BRLibBrush": [b"TEBrushTex", b"TEMaskTex"],
                     b"PALibParticles": [b"TEPartTex"], b"LSLibStyle": [b"TEStyleTex"]}


def _trace_with(expanders: dict[bytes, list[Any]]) -> set[str]:
    registry = Registry(readers_by_code={b"IM": [read_image]}, expanders_by_code=expanders)
    with BlendFileCache() as cache:
        usages = list(Tracer(registry, cache=cache).trace(EXTRA / "main.blend"))
    return {f for u in usages for f in _rel(u.files, EXTRA)}


def test_linked_texture_slots_need_only_the_slot_expanders() -> None:
    """From linked brushes, particles and line styles to their images: the slot
    expanders lead to the Tex IDs, the generic expander from Tex to Image."""
    slots = {code: [expand_texture_slots] for code in (b"BR", b"PA", b"LS")}
    assert _trace_with({**slots, b"TE": [expand_id]}) == {
        "libs/textures/brush.png", "libs/textures/mask.png",
        "libs/textures/particle.png", "libs/textures/linestyle.png",
    }
    assert _trace_with({b"TE": [expand_id]}) == set()  # without them, nothing


def test_unknown_node_pointers_do_not_crash(caplog: pytest.LogCaptureFixture) -> None:
    """Storage and ``next`` pointers to nowhere end the walk with a warning."""
    with open_blend(fixture("v50", "nodes/nodes.blend").blend) as bf:
        (mat,) = bf.blocks_by_code(b"MA")
        ctx = TraceContext(Tracer(get_registry()), bf)
        assert {u.kind for u in read_embedded_tree(mat, ctx)} == {"ies", "osl-script"}
        tree = mat.get_pointer(b"nodetree")
        assert tree is not None
        node_st = bf.dna.struct_by_name[b"bNode"]
        fmt = bf.header.pointer_format
        for node in list(tree.iter_listbase(b"nodes")):
            struct.pack_into(fmt, bf.buf, node.offset + node_st.field(b"storage").offset, 0xBAD0)
        first = tree.get((b"nodes", b"first"))
        struct.pack_into(fmt, bf.buf, bf.block_at_addr(first).offset + node_st.field(b"next").offset, 0xBAD8)
        assert list(read_embedded_tree(mat, ctx)) == []
    assert "unknown address" in caplog.text
