"""Tracing goes on past broken libraries, odd paths and bad pointers, and says so."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import pytest

from bat_core.blendfile import open_blend
from bat_core.trace import trace


def _libs(root: Path) -> Path:
    return root / "shots" / "shot.blend"


def _files(blend: Path) -> set[str]:
    return {p.name for u in trace(blend) for p in u.files}


@pytest.mark.parametrize("version", ["v50", "v42"])
def test_library_not_a_blend_file(version: str, copy_scenario, run_bat, caplog) -> None:  # type: ignore[no-untyped-def]
    root = copy_scenario(version, "libraries")
    (root / "set.blend").write_text("not a blend file")
    found = _files(_libs(root))
    assert "set.png" not in found  # nothing traced inside the broken library...
    assert "char.png" in found and "prop.png" in found  # ...and the rest goes on
    broken = [u for u in trace(_libs(root)) if u.problem]
    assert [u.abspath.name for u in broken] == ["set.blend"]
    assert broken[0].problem.startswith("not a blend file")
    res = run_bat("list", str(_libs(root)))
    assert res.exit_code == 3  # a broken library is a failure, not a warning
    assert "set.blend" in res.stderr and "not a blend file" in res.stderr  # stdout: what exists


def test_truncated_library(copy_scenario, caplog) -> None:  # type: ignore[no-untyped-def]
    root = copy_scenario("v50", "libraries")
    char = root / "libs" / "char.blend"
    char.write_bytes(char.read_bytes()[:5000])
    found = _files(_libs(root))
    assert "char.png" not in found and "set.png" in found
    broken = [u for u in trace(_libs(root)) if u.problem]
    assert {u.abspath.name for u in broken} == {"char.blend"}
    assert all("truncated" in u.problem for u in broken)


def test_dangling_library_is_missing(copy_scenario, run_bat) -> None:  # type: ignore[no-untyped-def]
    root = copy_scenario("v42", "libraries")
    os.remove(root / "set.blend")
    res = run_bat("list", "--missing", "--format", "json", str(_libs(root)))
    assert res.exit_code == 3
    missing = json.loads(res.stdout)
    assert [Path(m["path"]).name for m in missing] == ["set.blend"]
    assert missing[0]["referenced_by"][0]["kind"] == "library"


def test_library_cycle_terminates() -> None:
    from .conftest import BLENDFILES

    usages = list(trace(BLENDFILES / "v50" / "libraries" / "libs" / "cycle_a.blend"))
    assert {u.abspath.name for u in usages} == {"cycle_b.blend", "cycle.png"}


def _patch_placeholder_lib(blend: Path, out: Path) -> None:
    """Point one linked-ID placeholder's library pointer at an address no block has."""
    with open_blend(blend) as bf:
        ph = next(b for b in bf.blocks if b.code == b"ID")
        off, _field, _n = ph.dna_type.locate(b"lib")
        struct.pack_into("<Q", bf.buf, ph.offset + off, 0xDEADBEEF)
        bf.save(out)


def test_pointer_to_missing_block(copy_scenario, run_bat) -> None:  # type: ignore[no-untyped-def]
    root = copy_scenario("v50", "libraries")
    shot = _libs(root)
    broken = shot.with_name("broken.blend")
    _patch_placeholder_lib(shot, broken)
    res = run_bat("list", str(broken))
    assert res.exit_code == 0
    assert "unknown address 0xdeadbeef" in res.stderr
    strict = run_bat("-S", "list", str(broken))
    assert strict.exit_code == 1
    assert strict.stderr.strip().startswith(f"bat: error: {broken}: pointer to unknown address 0xdeadbeef")


def test_invalid_utf8_path(copy_scenario) -> None:  # type: ignore[no-untyped-def]
    root = copy_scenario("v50", "images")
    raw_name = b"caf\xe9.png"  # Latin-1, not UTF-8
    (root / "textures").joinpath(os.fsdecode(raw_name)).write_bytes(b"\x89PNG fake")
    src = root / "images.blend"
    out = root / "latin1.blend"
    with open_blend(src) as bf:
        img = next(b for b in bf.blocks_by_code(b"IM") if b.id_name == b"IMsingle")
        img.set(b"name", b"//textures/" + raw_name)  # Image.name holds the path
        bf.save(out)
    usage = next(u for u in trace(out) if u.block_name == b"IMsingle")
    assert usage.asset_path == b"//textures/" + raw_name
    assert usage.files and os.fsencode(usage.files[0].name) == raw_name
