"""The address index: every look-up gives what a dict filled in file order gives.

``BlendFile`` keeps its address index in arrays chained by bucket (about 21 bytes
a block instead of a dict's 100+).  These tests check it against a dict built by
the fuzzer's independent header parser, on every fixture, with the bucket table
as sized for real files, far too big, and far too small (one bucket: every
block in one chain, or rebuilt bigger after the scan).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bat_core.blendfile import file as blendfile_module
from bat_core.blendfile import open_blend

from .conftest import BLENDFILES
from .fuzz import harness
from .fuzz import mutators as m

FIXTURES = sorted([*BLENDFILES.glob("v*/**/*.blend"), *harness.SEEDS.glob("*.blend")])


def reference(data: bytes) -> tuple[dict[int, int], int]:
    """Old address -> header position, later blocks winning, and the header size."""
    lay = m.layout(data)
    assert lay is not None
    heads = m.blocks(data, lay, limit=10**7)
    assert heads[-1].code == b"ENDB"
    index: dict[int, int] = {}
    for h in heads[:-1]:
        index[h.old] = h.pos
    return index, lay.bhead.size


def check(path: Path, data: bytes) -> None:
    index, hsize = reference(data)
    with open_blend(path) as bf:
        assert bf.block_count == len(m.blocks(data, m.layout(data))) - 1  # type: ignore[arg-type]
        for addr, pos in index.items():
            peek = bf.peek_addr(addr)
            blk = bf.block_at_addr(addr)
            assert peek is not None and blk is not None, hex(addr)
            assert peek[2] == blk.offset == pos + hsize
            assert blk.addr_old == addr
        absent = [a for a in {addr + 1 for addr in index} | {addr + 8 for addr in index} | {0, 1 << 63}
                  if a not in index]
        assert absent
        for addr in absent:
            assert bf.peek_addr(addr) is None and bf.block_at_addr(addr) is None


@pytest.fixture(params=["as sized", "one bucket a byte", "one bucket, rebuilt", "one chain"])
def bucket_sizes(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "one bucket a byte":
        monkeypatch.setattr(blendfile_module, "_BYTES_PER_BUCKET", 1)
    elif request.param == "one bucket, rebuilt":
        monkeypatch.setattr(blendfile_module, "_BYTES_PER_BUCKET", 1 << 40)
    elif request.param == "one chain":
        monkeypatch.setattr(blendfile_module, "_BYTES_PER_BUCKET", 1 << 40)
        monkeypatch.setattr(blendfile_module, "_MAX_LOAD", 1 << 40)
    return str(request.param)


def test_fixtures_exist() -> None:
    assert len(FIXTURES) > 30
    assert any("v42" in p.parts for p in FIXTURES) and any("v50" in p.parts for p in FIXTURES)


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.relative_to(p.parents[2]).as_posix())
def test_every_address_found_as_a_dict_finds_it(path: Path, bucket_sizes: str) -> None:
    check(path, m.decompress(path.read_bytes())[0])


@pytest.mark.parametrize("seed", ["shot-v50.blend", "shot-v42.blend", "legacy279-doubly_linked.blend"])
def test_duplicate_addresses_the_last_block_wins(seed: str, bucket_sizes: str, tmp_path: Path) -> None:
    """Blender writes arrays it saved from one stack buffer at the same address;
    a dict filled in file order kept the last of them, and so does the index."""
    data = m.decompress((harness.SEEDS / seed).read_bytes())[0]
    lay = m.layout(data)
    assert lay is not None
    data_blocks = [h for h in m.blocks(data, lay) if h.code == b"DATA"]
    assert len(data_blocks) >= 6
    first, middle, last = data_blocks[1], data_blocks[len(data_blocks) // 2], data_blocks[-2]
    for h in (middle, last):  # three blocks at first's address; the headers keep their size
        data = m._set_header(data, lay, h, old=first.old)
    path = tmp_path / "dups.blend"
    path.write_bytes(data)
    check(path, data)
    with open_blend(path) as bf:
        blk = bf.block_at_addr(first.old)
        assert blk is not None and blk.offset == last.data
        assert [b.addr_old for b in bf.blocks].count(first.old) == 3
