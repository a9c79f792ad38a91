"""The blend-file reader and writer on real files written by Blender 5.0 and 4.2."""

from __future__ import annotations

import gzip
import hashlib
import shutil
from pathlib import Path

import pytest

from bat_core.blendfile import BlendFile, Compression, open_blend
from bat_core.errors import BlendFileError, UnknownPointerError

from .conftest import BLENDFILES, all_fixtures

BLENDS = sorted({f.blend for f in all_fixtures()} | set(BLENDFILES.rglob("*.blend")))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("path", BLENDS, ids=lambda p: p.relative_to(BLENDFILES).as_posix())
def test_every_fixture_opens(path: Path) -> None:
    with open_blend(path) as bf:
        assert bf.blocks, "no blocks"
        assert bf.header.pointer_size == 8
        scenes = bf.blocks_by_code(b"SC")
        assert scenes, "every saved file has a scene"
        assert scenes[0].id_name.startswith(b"SC")
        # Field offsets come from the DNA: the struct sizes must add up for every type.
        for st in bf.dna.structs:
            assert sum(f.size for f in st.fields) == st.size


@pytest.mark.parametrize("version,header,fmt", [("v50", b"BLENDER17-01v0500", 1), ("v42", b"BLENDER-v402", 0)])
def test_header_versions(version: str, header: bytes, fmt: int) -> None:
    with open_blend(BLENDFILES / version / "basic" / "basic.blend") as bf:
        assert bf.header.raw == header
        assert bf.header.format_version == fmt
        assert bf.compression is Compression.NONE
    with open_blend(BLENDFILES / version / "basic" / "basic-zstd.blend") as bf:
        assert bf.header.raw == header
        assert bf.compression is Compression.ZSTD


@pytest.mark.parametrize("version", ["v50", "v42"])
def test_compressed_and_plain_agree(version: str) -> None:
    base = BLENDFILES / version / "basic"
    with open_blend(base / "basic.blend") as plain, open_blend(base / "basic-zstd.blend") as packed:
        assert [b.code for b in plain.blocks] == [b.code for b in packed.blocks]
        ob_plain = {b.id_name: b.get(b"loc") for b in plain.blocks_by_code(b"OB")}
        ob_packed = {b.id_name: b.get(b"loc") for b in packed.blocks_by_code(b"OB")}
        assert ob_plain == ob_packed


def test_field_access_kinds() -> None:
    with open_blend(BLENDFILES / "v50" / "basic" / "basic.blend") as bf:
        cube = next(b for b in bf.blocks_by_code(b"OB") if b.get(b"type") == 1)  # OB_MESH
        assert cube.get((b"id", b"name")) == cube.id_name
        assert isinstance(cube.get(b"loc")[0], float)
        assert len(cube.get(b"parentinv")) == 4  # float[4][4] comes back as rows
        assert cube.get((b"parentinv", 0)) == cube.get(b"parentinv")[0]
        mesh = cube.get_pointer(b"data")
        assert mesh is not None and mesh.code == b"ME"
        scene = bf.blocks_by_code(b"SC")[0]
        assert isinstance(scene.get((b"r", b"cfra")), int)
        assert scene.get(b"no_such_field", None) is None
        with pytest.raises(KeyError):
            scene.get(b"no_such_field")
        # A ListBase of modifiers or a collection's objects: iterate without errors.
        coll = scene.get_pointer(b"master_collection")
        assert coll is not None
        objects = list(coll.iter_listbase(b"gobject"))
        assert all(b.dna_type_name == "CollectionObject" for b in objects)


@pytest.mark.parametrize("name", ["basic.blend", "basic-zstd.blend"])
@pytest.mark.parametrize("version", ["v50", "v42"])
def test_write_copy_reads_back_and_source_untouched(version: str, name: str, tmp_path: Path) -> None:
    src = BLENDFILES / version / "basic" / name
    before = sha256(src)
    out = tmp_path / name
    with open_blend(src) as bf:
        scene = bf.blocks_by_code(b"SC")[0]
        scene.set((b"r", b"pic"), b"//render/frame_")
        scene.set((b"r", b"cfra"), 42)
        scene.set((b"r", b"frs_sec_base"), 0.5)
        assert scene.get((b"r", b"pic")) == b"//render/frame_"  # visible before saving
        bf.save(out)
        compression = bf.compression
    assert sha256(src) == before
    with open_blend(out) as copy:
        assert copy.compression is compression
        scene = copy.blocks_by_code(b"SC")[0]
        assert scene.get((b"r", b"pic")) == b"//render/frame_"
        assert scene.get((b"r", b"cfra")) == 42
        assert scene.get((b"r", b"frs_sec_base")) == 0.5
    with open_blend(src) as again:
        assert again.blocks_by_code(b"SC")[0].get((b"r", b"pic")) != b"//render/frame_"


def test_set_rejects_what_does_not_fit() -> None:
    with open_blend(BLENDFILES / "v50" / "basic" / "basic.blend") as bf:
        scene = bf.blocks_by_code(b"SC")[0]
        with pytest.raises(ValueError):
            scene.set((b"r", b"pic"), b"x" * 5000)
        with pytest.raises(TypeError):
            scene.set(b"camera", 0)  # pointers are never written
        with pytest.raises(TypeError):
            scene.set((b"r", b"cfra"), b"12")


def test_save_refuses_to_overwrite_source(tmp_path: Path) -> None:
    src = tmp_path / "basic.blend"
    shutil.copy(BLENDFILES / "v50" / "basic" / "basic.blend", src)
    before = sha256(src)
    with open_blend(src) as bf:
        bf.blocks_by_code(b"SC")[0].set((b"r", b"cfra"), 7)
        with pytest.raises(BlendFileError, match="refusing"):
            bf.save(src)
    assert sha256(src) == before


def test_gzip_file_opens_and_saves_as_gzip(tmp_path: Path) -> None:
    """Blender 2.8-2.9 compressed with gzip; made here by gzipping a real file."""
    raw = (BLENDFILES / "v42" / "basic" / "basic.blend").read_bytes()
    gz = tmp_path / "gz.blend"
    gz.write_bytes(gzip.compress(raw))
    with open_blend(gz) as bf:
        assert bf.compression is Compression.GZIP
        bf.blocks_by_code(b"SC")[0].set((b"r", b"cfra"), 99)
        bf.save(tmp_path / "out.blend")
    assert (tmp_path / "out.blend").read_bytes()[:2] == b"\x1f\x8b"
    with open_blend(tmp_path / "out.blend") as bf:
        assert bf.blocks_by_code(b"SC")[0].get((b"r", b"cfra")) == 99


def test_save_with_other_compression(tmp_path: Path) -> None:
    with open_blend(BLENDFILES / "v50" / "basic" / "basic.blend") as bf:
        bf.save(tmp_path / "z.blend", compress=Compression.ZSTD)
        n = len(bf.blocks)
    with open_blend(tmp_path / "z.blend") as bf:
        assert bf.compression is Compression.ZSTD
        assert len(bf.blocks) == n


def test_unknown_pointer_warns_or_raises(caplog: pytest.LogCaptureFixture) -> None:
    path = BLENDFILES / "v50" / "basic" / "basic.blend"
    with open_blend(path) as bf:
        assert bf.dereference(0xDEADBEEF) is None
    assert "unknown address 0xdeadbeef" in caplog.text
    with open_blend(path, strict_pointers=True) as bf, pytest.raises(UnknownPointerError):
        bf.dereference(0xDEADBEEF)


def test_blendfile_is_context_manager_and_closes() -> None:
    bf = BlendFile(BLENDFILES / "v50" / "basic" / "basic.blend")
    with bf:
        assert bf.blocks
    assert bf.buf is None and not bf.blocks


@pytest.mark.parametrize("version", ["v50", "v42"])
def test_set_char_pointer_string_in_place(version: str, tmp_path: Path) -> None:
    """Texts keep their path in a separate string block (``char *name`` on disk)."""
    src = BLENDFILES / version / "fonts_texts" / "texts.blend"
    with open_blend(src) as bf:
        text = next(b for b in bf.blocks_by_code(b"TX") if b.get(b"name"))
        old = text.get_string(b"name")
        assert old.endswith(b"tool.py")
        text.set(b"name", b"//x.py")
        assert text.get_string(b"name") == b"//x.py"
        bf.save(tmp_path / "t.blend")
    with open_blend(tmp_path / "t.blend") as bf:
        text = next(b for b in bf.blocks_by_code(b"TX") if b.get(b"name"))
        assert text.get_string(b"name") == b"//x.py"


@pytest.mark.parametrize("version", ["v50", "v42"])
@pytest.mark.parametrize("name", ["nodes", "libraries"])
def test_lazy_index_agrees_with_the_full_block_list(version: str, name: str) -> None:
    """The address index, peeks and on-demand blocks say what the full list of blocks says."""
    blend = next((BLENDFILES / version / name).glob("*.blend"))
    with open_blend(blend) as bf:
        assert bf.block_count == len(bf.blocks) > 0
        by_addr = {b.addr_old: b for b in bf.blocks}  # the last block wins, as in the index
        for addr, blk in by_addr.items():
            assert bf.block_at_addr(addr) is blk  # one object per block
            code, sdna, offset, size, count = bf.peek_addr(addr)  # type: ignore[misc]
            assert (code, sdna, offset, size, count) == (blk.code, blk.sdna_index, blk.offset, blk.size, blk.count)
        assert bf.peek_addr(max(by_addr) + 8) is None and bf.block_at_addr(max(by_addr) + 8) is None
        ids = [b for b in bf.blocks if len(b.code) == 2 and b.code != b"ID"]
        assert bf.id_blocks() == ids
        assert bf.codes == {b.code for b in bf.blocks}
        for code in bf.codes:
            assert bf.blocks_by_code(code) == [b for b in bf.blocks if b.code == code]


def test_struct_field_probes_are_remembered() -> None:
    """A field a struct lacks is looked up once; later probes give the default without raising."""
    with open_blend(BLENDFILES / "v50" / "basic" / "basic.blend") as bf:
        scene = bf.blocks_by_code(b"SC")[0]
        assert scene.get(b"no_such_field", 42) == 42
        assert not scene.has(b"no_such_field")
        assert scene.dna_type._readers[b"no_such_field"] is None
        with pytest.raises(KeyError, match="no_such_field"):
            scene.get(b"no_such_field")
        assert scene.has((b"r", b"pic")) and scene.get((b"r", b"pic"), None) is not None
