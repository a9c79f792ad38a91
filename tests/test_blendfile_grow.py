"""``char *`` strings that grow: a rewritten copy gives a data block more bytes.

Texts' file paths and Geometry Nodes bake directories are ``char *`` strings,
each in a data block sized to the string Blender wrote.  Blender sets no limit
on them, so a packed path that is longer than the old one must still be
written: the block gets new contents and its header a new length when the copy
is saved.  The end-to-end tests pack Blender-made files
(``tests/data/gen_grow_paths.py``) and let Blender open the packs.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bat_core.blendfile import BlendFile, Compression, open_blend
from bat_core.blendfile.compression import _frames
from bat_core.blendfile.header import parse_header
from bat_core.pack import OUTSIDE_PROJECT, fields, pack
from bat_core.trace import trace

from .conftest import BLENDFILES

GROW = Path(__file__).resolve().parent / "data" / "grow_paths"
needs_bpy = pytest.mark.skipif(importlib.util.find_spec("bpy") is None,
                               reason="bpy (Blender as a Python module) is not importable in this Python")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _text(bf: BlendFile):  # type: ignore[no-untyped-def]
    return next(b for b in bf.blocks_by_code(b"TX") if b.get(b"name"))


def _blocks(bf: BlendFile) -> list[tuple[bytes, int, int, int, bytes]]:
    return [(b.code, b.addr_old, b.sdna_index, b.count, b.raw_data()) for b in bf.blocks]


@pytest.mark.parametrize("compress", [None, Compression.NONE, Compression.GZIP, Compression.ZSTD])
@pytest.mark.parametrize("version", ["v50", "v42"])
def test_text_path_grows_in_the_copy(version: str, compress: Compression | None, tmp_path: Path) -> None:
    src = BLENDFILES / version / "fonts_texts" / "texts.blend"
    before = sha256(src)
    new = b"//" + b"/".join([b"a-much-longer-directory-name"] * 20) + b"/tool.py"  # 590 bytes
    with open_blend(src) as bf:
        text = _text(bf)
        string_block = bf.dereference(text.get(b"name"))
        assert string_block is not None and string_block.size < 30
        old_blocks = _blocks(bf)
        text.set(b"name", new)
        assert text.get_string(b"name") == new  # visible before saving
        assert bf.modified and bf.is_replaced(string_block)
        bf.save(tmp_path / "t.blend", compress=compress)
        assert sha256(src) == before
        assert bytes(bf.buf[string_block.offset : string_block.offset + 4]) == b"//sc"  # source bytes kept
    with open_blend(tmp_path / "t.blend") as copy:
        assert copy.compression is (compress or Compression.NONE)
        assert _text(copy).get_string(b"name") == new
        grown = copy.dereference(_text(copy).get(b"name"))
        assert grown is not None
        # 5.0 sizes a string block exactly; 4.x keeps every block a multiple of 4 bytes.
        assert grown.size == (len(new) + 1 if version == "v50" else (len(new) + 4) // 4 * 4)
        assert grown.raw_data().rstrip(b"\0") == new
        # Everything else is as it was: same blocks, same order, same bytes.
        new_blocks = _blocks(copy)
        assert len(new_blocks) == len(old_blocks)
        changed = [i for i, (a, b) in enumerate(zip(old_blocks, new_blocks, strict=True)) if a != b]
        assert len(changed) == 1 and new_blocks[changed[0]][1] == string_block.addr_old
    assert sha256(src) == before


@pytest.mark.parametrize("version", ["v50", "v42"])
def test_geonodes_bake_directory_grows_in_a_zstd_file(version: str, tmp_path: Path) -> None:
    src = BLENDFILES / version / "geonodes" / "geonodes.blend"
    with open_blend(src) as bf:
        assert bf.compression is Compression.ZSTD
        mod = next(m for ob in bf.blocks_by_code(b"OB") for m in ob.iter_listbase(b"modifiers")
                   if m.dna_type_name == "NodesModifierData")
        field = b"simulation_bake_directory"
        old = mod.get_string(field)
        new = b"//" + b"x" * 3000 + b"/gn_bake"
        fields.write_stored(mod, field, new)
        assert fields.read_stored(mod, field) == new
        bf.save(tmp_path / "g.blend")
    with open_blend(tmp_path / "g.blend") as copy:
        assert copy.compression is Compression.ZSTD
        mod = next(m for ob in copy.blocks_by_code(b"OB") for m in ob.iter_listbase(b"modifiers")
                   if m.dna_type_name == "NodesModifierData")
        assert mod.get_string(field) == new != old


def test_string_block_grows_shrinks_and_grows_again(tmp_path: Path) -> None:
    with open_blend(BLENDFILES / "v50" / "fonts_texts" / "texts.blend") as bf:
        text = _text(bf)
        blk = bf.dereference(text.get(b"name"))
        assert blk is not None
        text.set(b"name", b"//short.py")  # fits: written in place
        assert not bf.is_replaced(blk) and text.get_string(b"name") == b"//short.py"
        text.set(b"name", b"//" + b"y" * 100 + b".py")
        assert bf.is_replaced(blk) and blk.size == 106
        text.set(b"name", b"//z.py")  # once replaced, the replacement is what changes
        assert text.get_string(b"name") == b"//z.py" and blk.size == 7
        text.set(b"name", b"//" + b"w" * 200 + b".py")
        bf.save(tmp_path / "t.blend")
    with open_blend(tmp_path / "t.blend") as copy:
        assert _text(copy).get_string(b"name") == b"//" + b"w" * 200 + b".py"


def test_only_raw_data_blocks_get_new_contents() -> None:
    with open_blend(BLENDFILES / "v50" / "fonts_texts" / "texts.blend") as bf:
        text = _text(bf)
        with pytest.raises(ValueError, match="not raw data"):
            bf.replace_block_data(text, b"x" * 10000)
        with pytest.raises(ValueError, match="NUL"):
            text.set(b"name", b"//a\0b")
        with pytest.raises(ValueError, match="do not fit"):  # a char[N] array does not grow
            text.set((b"id", b"name"), b"TX" + b"n" * 300)


@pytest.mark.parametrize("version,limit", [("v50", (1 << 63) - 5), ("v42", (1 << 31) - 5)])
def test_capacity_limits_only_fixed_arrays(version: str, limit: int) -> None:
    with open_blend(BLENDFILES / version / "fonts_texts" / "texts.blend") as bf:
        text = _text(bf)
        assert fields.capacity(text, b"name") == limit
        id_name_size = text.dna_type.locate((b"id", b"name"))[2]  # char name[66] or [258]
        assert fields.capacity(text, (b"id", b"name")) == id_name_size - 1


@pytest.mark.parametrize("magic", [b"BLENDER-v402", b"BLENDER_v279", b"BLENDER-V402", b"BLENDER_V402",
                                   b"BLENDER17-01v0500"])
def test_header_length_rewritten_for_every_layout(magic: bytes) -> None:
    """12- and 17-byte headers, 4- and 8-byte pointers, both endiannesses."""
    header = parse_header(magic + bytes(8))
    layout = header.block_header_struct
    old_addr = 0x1234_5678 if header.pointer_size == 4 else 0x7FFF_1234_5678_9ABC
    if header.format_version == 1:
        raw = layout.pack(b"DATA", 0, old_addr, 21, 1)
    else:
        raw = layout.pack(b"DATA", 21, old_addr, 0, 1)
    new = header.with_length(raw, 5000)
    assert len(new) == len(raw)
    fields_ = layout.unpack(new)
    if header.format_version == 1:
        assert fields_ == (b"DATA", 0, old_addr, 5000, 1)
    else:
        assert fields_ == (b"DATA", 5000, old_addr, 0, 1)
    # The index scan reads the length where the header now has it.
    scanned = header.scan_struct.unpack_from(new)
    assert 5000 in scanned and scanned[0] == b"DATA"


@pytest.mark.parametrize("sizes", [[10], [3, 3, 3, 3], [0, 7, 0, 1, 25], [4, 4, 4], [13]])
def test_zstd_frames_recut_pieces_without_losing_bytes(sizes: list[int]) -> None:
    data = bytes(range(256)) * 2
    pieces, pos = [], 0
    for n in sizes:
        pieces.append(memoryview(data[pos : pos + n]))
        pos += n
    frames = [bytes(f) for f in _frames(pieces, 4)]
    assert b"".join(frames) == data[:pos]
    assert all(len(f) == 4 for f in frames[:-1]) and 0 < len(frames[-1]) <= 4


# --- packing, checked by Blender ---------------------------------------------------------

#: Run by Blender: what the packed file's texts and bakes point at.
BLENDER_SCRIPT = r"""
import hashlib, json, os, sys
import bpy
out = {}
for f in json.load(open(sys.argv[1])):
    bpy.ops.wm.open_mainfile(filepath=f, load_ui=False)
    mods = [m for ob in bpy.data.objects for m in ob.modifiers if m.type == "NODES"]
    images = {}
    for im in bpy.data.images:
        path = bpy.path.abspath(im.filepath)
        im.reload()
        images[im.name] = {"path": path, "size": list(im.size),
                           "sha256": hashlib.sha256(open(path, "rb").read()).hexdigest()
                           if os.path.isfile(path) else None}
    out[f] = {
        "texts": {t.name: bpy.path.abspath(t.filepath) for t in bpy.data.texts},
        "images": images,
        "bake_dirs": [bpy.path.abspath(m.bake_directory) for m in mods],
        "custom_bake_dirs": [bpy.path.abspath(b.directory) for m in mods for b in m.bakes if b.use_custom_path],
        "text_body": {t.name: t.as_string() for t in bpy.data.texts},
    }
json.dump(out, open(sys.argv[2], "w"))
"""


def _blender(files: list[Path], tmp: Path) -> dict:  # type: ignore[type-arg]
    (tmp / "files.json").write_text(json.dumps([str(f) for f in files]))
    (tmp / "script.py").write_text(BLENDER_SCRIPT)
    proc = subprocess.run([sys.executable, str(tmp / "script.py"), str(tmp / "files.json"), str(tmp / "out.json")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads((tmp / "out.json").read_text())  # type: ignore[no-any-return]


def _inside(path: str, root: Path) -> bool:
    return Path(path).resolve().is_relative_to(root.resolve())


def _tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): sha256(p) for p in sorted(root.rglob("*")) if p.is_file()}


def _grow_fixture(version: str) -> tuple[Path, dict]:  # type: ignore[type-arg]
    blend = GROW / version / "proj" / "shot.blend"
    return blend, json.loads(blend.with_name("shot.blend.json").read_text())


@pytest.mark.parametrize("version", ["v50", "v42"])
def test_grow_fixture_trace_matches_blender(version: str) -> None:
    blend, expected = _grow_fixture(version)
    root = GROW / version
    found = [f.relative_to(root).as_posix() for u in trace(blend) for f in u.files]
    assert sorted(found) == sorted(expected["existing_files"] + expected["baked_files"])


@needs_bpy
def test_packed_char_pointer_paths_grow_and_blender_follows_them(tmp_path: Path) -> None:
    """A text, an image and two bakes outside the project, each with a long path that grows.

    Blender opens every pack and finds each file inside it, with the bytes of the
    source: the script's text, the image's pixels (loaded), the bakes' files.
    """
    packs: list[tuple[str, Path, Path]] = []
    sources = {}
    for version in ("v50", "v42"):
        blend, _ = _grow_fixture(version)
        sources[blend] = sha256(blend)
        with open_blend(blend) as bf:
            old_text = _text(bf).get_string(b"name")
            old_block = bf.dereference(_text(bf).get(b"name"))
            assert old_block is not None
            mod = next(m for ob in bf.blocks_by_code(b"OB") for m in ob.iter_listbase(b"modifiers")
                       if m.dna_type_name == "NodesModifierData")
            old_dir = mod.get_string(b"bake_directory" if mod.has(b"bake_directory")
                                     else b"simulation_bake_directory")
            assert old_dir.startswith(b"//../outside/studio-pipeline/") and old_dir.endswith(b"/gn_bake")
        for compress in (False, True):
            target = tmp_path / f"{version}-{'zstd' if compress else 'same'}"
            result = pack(blend, str(target), compress=compress)
            assert not result.missing
            packs.append((version, target, target / "shot.blend"))
            with open_blend(target / "shot.blend") as packed:
                text = _text(packed).get_string(b"name")
                assert text.startswith(b"//" + OUTSIDE_PROJECT.encode() + b"/")
                assert len(text) + 1 > old_block.size > len(old_text)  # it had to grow its block
    for blend, digest in sources.items():
        assert sha256(blend) == digest
    report = _blender([p for _, _, p in packs], tmp_path)
    for version, target, packed in packs:
        seen = report[str(packed)]
        outside = GROW / version / "outside"
        script = seen["texts"]["tool.py"]
        assert _inside(script, target) and Path(script).is_file(), script
        studio = next(outside.glob("studio-pipeline/shared-*"))
        assert seen["text_body"]["tool.py"] == (studio / "scripts" / "tool.py").read_text()
        image = seen["images"]["rig_mask.png"]
        assert _inside(image["path"], target), image
        assert image["sha256"] == sha256(studio / "textures" / "rig_mask.png") and image["size"] == [4, 4]
        assert len(seen["bake_dirs"]) == 1 and len(seen["custom_bake_dirs"]) == 1
        caches = next(outside.glob("studio-pipeline/simulation-*"))
        for directory, source in ((seen["bake_dirs"][0], caches / "gn_bake"),
                                  (seen["custom_bake_dirs"][0], caches / "gn_bake_custom")):
            assert _inside(directory, target), directory
            assert list(Path(directory).rglob("*.json")), f"no bake meta files under {directory}"
            assert _tree(Path(directory)) == _tree(source), directory


@needs_bpy
def test_grown_text_path_of_a_4_2_file_opens_in_blender(tmp_path: Path) -> None:
    """The existing 4.2 fixture, rewritten with a path longer than its block."""
    src = BLENDFILES / "v42" / "fonts_texts"
    shutil.copytree(src, tmp_path / "proj")
    deep = tmp_path / "proj" / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    shutil.copy(src / "scripts" / "tool.py", deep / "tool.py")
    new = ("//" + deep.relative_to(tmp_path / "proj").as_posix() + "/tool.py").encode()
    with open_blend(tmp_path / "proj" / "texts.blend") as bf:
        assert bf.header.format_version == 0
        _text(bf).set(b"name", new)
        bf.save(tmp_path / "proj" / "grown.blend")
    report = _blender([tmp_path / "proj" / "grown.blend"], tmp_path)
    script = report[str(tmp_path / "proj" / "grown.blend")]["texts"]["tool.py"]
    assert Path(script) == deep / "tool.py"


def test_cli_packs_a_grown_path(tmp_path: Path, run_bat) -> None:  # type: ignore[no-untyped-def]
    blend = GROW / "v50" / "proj" / "shot.blend"
    res = run_bat("pack", str(blend), str(tmp_path / "out"))
    assert res.exit_code == 0, res.stderr
    with open_blend(tmp_path / "out" / "shot.blend") as bf:
        stored = _text(bf).get_string(b"name")
    resolved = (tmp_path / "out" / stored[2:].decode()).resolve()
    assert resolved.is_file() and resolved.is_relative_to((tmp_path / "out").resolve())
