"""Blend file memos: a library's walks are worked out once, and never trusted for other bytes."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from bat_core.blendfile import memo as memo_module
from bat_core.blendfile import open_blend
from bat_core.trace import trace
from bat_plugins.readers import expand

from .conftest import BLENDFILES


@pytest.fixture
def walks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The files whose IDs were walked (not answered from a memo), one entry per walk."""
    seen: list[str] = []
    real = expand._walk

    def counting(block):  # type: ignore[no-untyped-def]
        seen.append(block.file.path.name)
        return real(block)

    monkeypatch.setattr(expand, "_walk", counting)
    return seen


def _answer(blend: Path) -> list[tuple[str, str, str]]:
    return sorted((str(u.blendfile), u.block_name.decode(), str(u.abspath)) for u in trace(blend))


def _memos() -> list[Path]:
    return sorted((memo_module.cache_dir() / memo_module.DIRECTORY).glob("*.memo"))


@pytest.fixture
def scenario(tmp_path: Path) -> Path:
    root = tmp_path / "libraries"
    shutil.copytree(BLENDFILES / "v50" / "libraries", root)
    return root / "shots" / "shot.blend"


def test_second_trace_walks_nothing_and_finds_the_same(scenario: Path, walks: list[str]) -> None:
    first = _answer(scenario)
    assert walks and _memos()
    walked = len(walks)
    walks.clear()
    assert _answer(scenario) == first
    assert walks == [], f"walked again: {walks} (of {walked})"


def test_a_changed_library_is_walked_again(scenario: Path, walks: list[str]) -> None:
    """Other bytes, same size and modification time: the change time still tells."""
    first = _answer(scenario)
    lib = scenario.parent.parent / "libs" / "char.blend"
    st = lib.stat()
    data = bytearray(lib.read_bytes())
    time.sleep(0.01)
    lib.write_bytes(bytes(data))  # the same bytes written again: a new change time
    os.utime(lib, ns=(st.st_atime_ns, st.st_mtime_ns))
    walks.clear()
    assert _answer(scenario) == first
    assert "char.blend" in walks
    walks.clear()
    _answer(scenario)
    assert "char.blend" not in walks  # remembered again, for the new version


@pytest.mark.parametrize("damage", ["flip", "truncate", "garbage", "other-file"])
def test_a_damaged_memo_is_ignored(scenario: Path, walks: list[str], damage: str) -> None:
    first = _answer(scenario)
    memos = _memos()
    assert memos
    for path in memos:
        raw = bytearray(path.read_bytes())
        if damage == "flip":
            raw[-1] ^= 0xFF
        elif damage == "truncate":
            del raw[len(raw) // 2 :]
        elif damage == "garbage":
            raw = bytearray(os.urandom(len(raw)))
        path.write_bytes(bytes(raw))
    if damage == "other-file":  # each memo under another file's name
        datas = [p.read_bytes() for p in memos]
        for path, data in zip(memos, datas[1:] + datas[:1], strict=True):
            path.write_bytes(data)
    walks.clear()
    assert _answer(scenario) == first
    assert walks


def test_memos_can_be_turned_off(scenario: Path, walks: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(memo_module.NO_MEMO_ENV, "1")
    first = _answer(scenario)
    assert not _memos()
    walks.clear()
    assert _answer(scenario) == first
    assert walks


def test_no_memo_for_a_file_changed_while_open(scenario: Path) -> None:
    lib = scenario.parent.parent / "libs" / "char.blend"
    bf = open_blend(lib)
    try:
        memo = bf.memo
        assert memo is not None
        memo.put("test", "1", b"learnt from the old bytes")
        time.sleep(0.01)
        lib.write_bytes(lib.read_bytes())  # replaced in place while open
    finally:
        bf.close()
    assert not memo.file("test").exists()


def test_memo_round_trip_and_versions(tmp_path: Path) -> None:
    blend = BLENDFILES / "v50" / "basic" / "basic.blend"
    with open_blend(blend) as bf:
        assert bf.memo is not None
        bf.memo.put("a", "v1", b"\x00" * 100)
        bf.memo.put("b", "v1", b"")
    with open_blend(blend) as bf:
        assert bf.memo is not None
        assert bf.memo.get("a", "v1") == b"\x00" * 100
        assert bf.memo.get("b", "v1") == b""
        assert bf.memo.get("a", "v2") is None  # made by other code
        assert bf.memo.get("c", "v1") is None
    assert oct(_memos()[0].stat().st_mode & 0o777) == "0o600"


def test_walk_answers_decode_only_when_whole() -> None:
    found = {1: (2, 3), 7: (), 0xFFFF_FFFF_FFFF_FFFF: (5,)}
    data = expand._encode(found)
    assert expand._decode(data) == found
    assert expand._decode(data[:-8]) == {}
    assert expand._decode(data + b"\x01" * 8) == {}


def test_old_memos_are_pruned(tmp_path: Path) -> None:
    old, fresh = tmp_path / "old.memo", tmp_path / "fresh.memo"
    old.write_bytes(b"x")
    fresh.write_bytes(b"x")
    os.utime(old, (1, 1))
    assert memo_module.prune(tmp_path) == 1
    assert not old.exists() and fresh.exists()


def test_a_memo_others_may_write_is_not_believed(scenario: Path, walks: list[str]) -> None:
    first = _answer(scenario)
    for path in _memos():
        path.chmod(0o666)
    walks.clear()
    assert _answer(scenario) == first
    assert walks


# --- the block index -------------------------------------------------------------------

from bat_core.blendfile import file as file_module  # noqa: E402
from bat_core.blendfile import index_memo  # noqa: E402

from .conftest import all_fixtures  # noqa: E402

BLENDS = sorted({f.blend for f in all_fixtures()})


@pytest.fixture
def scans(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every fixture gets an index memo (they are small), and each header scan is counted."""
    monkeypatch.setattr(index_memo, "MIN_BLOCKS", 1)
    seen: list[str] = []
    real = file_module.BlendFile._index_blocks

    def counting(self):  # type: ignore[no-untyped-def]
        seen.append(self.path.name)
        return real(self)

    monkeypatch.setattr(file_module.BlendFile, "_index_blocks", counting)
    return seen


def _blocks(path: Path) -> list[tuple[bytes, int, int, int, int, int]]:
    with open_blend(path) as bf:
        out = [(b.code, b.addr_old, b.offset, b.size, b.sdna_index, b.count) for b in bf.blocks]
        # Every address finds the block it finds with a scanned index (the last at that address).
        found = [(a, (bf.block_at_addr(a) or b).offset) for a, b in ((b.addr_old, b) for b in bf.blocks)]
        return out + [(b"@", a, o, 0, 0, 0) for a, o in found]


@pytest.mark.parametrize("blend", BLENDS, ids=[str(b.relative_to(BLENDFILES)) for b in BLENDS])
def test_a_remembered_index_is_the_scanned_one(blend: Path, scans: list[str]) -> None:
    scanned = _blocks(blend)
    assert scans == [blend.name]
    remembered = _blocks(blend)
    assert scans == [blend.name], "scanned again"
    assert remembered == scanned


def test_a_trace_with_remembered_indexes_is_the_same(scenario: Path, scans: list[str]) -> None:
    first = _answer(scenario)
    assert len(scans) > 3
    scans.clear()
    assert _answer(scenario) == first
    assert scans == []


@pytest.mark.parametrize("lie", ["end", "address", "size", "position"])
def test_an_index_that_does_not_fit_the_bytes_is_scanned_again(lie: str, scans: list[str],
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    blend = BLENDFILES / "v50" / "images" / "images.blend"
    scanned = _blocks(blend)
    real = index_memo.decode

    def lying(data: bytes, buf, header):  # type: ignore[no-untyped-def]
        index = real(data, buf, header)
        assert index is not None
        n = len(index.addrs)
        if lie == "end":
            data = data[: index_memo._HEAD.size - 16] + (index.end_pos + 8).to_bytes(8, "little") \
                + data[index_memo._HEAD.size - 8 :]
        elif lie == "address":
            addrs = index.addrs[:]
            step = max(1, n // index_memo._SAMPLES)
            addrs[n // 2 // step * step] ^= 0x10  # a sampled block: the check reads only those
            data = data[: index_memo._HEAD.size] + addrs.tobytes() + data[index_memo._HEAD.size + 8 * n :]
        elif lie == "size":
            data = data[:-8]
        else:
            pos = index.pos[:]
            pos[0] += 1
            at = index_memo._HEAD.size + 8 * n
            data = data[:at] + pos.tobytes() + data[at + pos.itemsize * n :]
        return real(data, buf, header)

    monkeypatch.setattr(index_memo, "decode", lying)
    scans.clear()
    assert _blocks(blend) == scanned
    assert scans == [blend.name]


# --- the readers' answers -------------------------------------------------------------

from bat_core.trace import tracer as tracer_module  # noqa: E402

DATA_BLENDS = [Path(__file__).parent / "data" / d / "main.blend" for d in ("caches_extra", "media_extra")]


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The blocks handed to readers (not answered from a memo); expanders are not readers."""
    from bat_core.plugins import get_registry

    seen: list[str] = []
    real = tracer_module.guarded
    registry = get_registry()
    expanders = {id(h) for table in (registry.expanders_by_code, registry.expanders_by_struct)
                 for hs in table.values() for h in hs}

    def counting(handler, block, ctx):  # type: ignore[no-untyped-def]
        if id(handler) not in expanders:
            seen.append(f"{block.file.path.name}:{block.offset}")
        return real(handler, block, ctx)

    monkeypatch.setattr(tracer_module, "guarded", counting)
    return seen


def _full(blend: Path, **kwargs) -> list[tuple]:  # type: ignore[type-arg, no-untyped-def]
    """Everything about every usage: what the readers found and what the tracer resolved."""
    out = []
    for u in trace(blend, **kwargs):
        out.append((str(u.blendfile), type(u.block).__name__, u.block.offset, u.block.dna_type_name, repr(u.field),
                    bytes(u.asset_path), u.kind, u.block_name, u.is_sequence, u.is_directory, u.pattern,
                    u.dir_only, u.optional, u.subdirs, str(u.abspath), [str(f) for f in u.files], u.problem,
                    [(str(a), b) for a, b in u.skipped]))
    return out


@pytest.mark.parametrize("blend", [*BLENDS, *DATA_BLENDS],
                         ids=[str(b.relative_to(BLENDFILES.parent)) for b in [*BLENDS, *DATA_BLENDS]])
def test_remembered_readers_give_every_usage_as_read(blend: Path, reads: list[str], scans: list[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(memo_module.NO_MEMO_ENV, "1")
    cold = _full(blend)
    monkeypatch.setenv(memo_module.NO_MEMO_ENV, "0")
    assert _full(blend) == cold  # works out and writes the memos
    reads.clear()
    scans.clear()
    assert _full(blend) == cold  # from the memos
    assert reads == [] and scans == []


def test_a_plugin_reader_turns_remembering_off(scenario: Path, reads: list[str]) -> None:
    """A reader of a plugin's own may depend on anything: every reader runs every time."""
    from bat_core.hookspecs import hookimpl

    class Plugin:
        @hookimpl
        def register_block_readers(self, register):  # type: ignore[no-untyped-def]
            def read_images(block, ctx):  # type: ignore[no-untyped-def]
                return iter(())

            register(b"IM", read_images)

    first = _full(scenario, plugins=[Plugin()])
    reads.clear()
    assert _full(scenario, plugins=[Plugin()]) == first
    assert reads
    reads.clear()
    _full(scenario)  # bat's own readers alone: remembered from now on
    reads.clear()
    _full(scenario)
    assert reads == []


def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and ".bat-pack" not in p.parts}


@pytest.mark.parametrize("compress", [False, True])
def test_packs_made_with_memos_are_the_packs_made_without(scenario: Path, scans: list[str], walks: list[str],
                                                          reads: list[str], tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch, compress: bool) -> None:
    """Rewrites land on the same bytes whether the index and walks were worked out or remembered."""
    from bat_core.pack import pack

    project = scenario.parent  # the libraries go under _outside_project: their paths are rewritten
    monkeypatch.setenv(memo_module.NO_MEMO_ENV, "1")
    pack(scenario, str(tmp_path / "cold"), project=project, compress=compress)
    monkeypatch.setenv(memo_module.NO_MEMO_ENV, "0")
    _answer(scenario)  # writes the memos
    scans.clear()
    walks.clear()
    reads.clear()
    result = pack(scenario, str(tmp_path / "warm"), project=project, compress=compress)
    assert scans == [] and walks == [] and reads == []  # nothing of the sources scanned, walked or read again
    assert any(f.action == "rewritten" for f in result.files)
    assert _tree_bytes(tmp_path / "warm") == _tree_bytes(tmp_path / "cold")


def test_a_file_changed_in_memory_is_read_again(scenario: Path, reads: list[str]) -> None:
    """After ``set`` (the packer's rewrites), a trace of the open file reads what is in memory now."""
    from bat_core.trace import BlendFileCache

    _answer(scenario)
    with BlendFileCache() as cache:
        usages = list(trace(scenario, cache=cache))
        image = next(u for u in usages if u.kind == "image" and u.blendfile == scenario)
        assert image.field is not None
        image.block.set(image.field, b"//elsewhere/other.png")
        reads.clear()
        again = [u for u in trace(scenario, cache=cache) if u.kind == "image" and u.blendfile == scenario]
        assert reads
        assert b"//elsewhere/other.png" in {bytes(u.asset_path) for u in again}
