"""bat list output formats: text tree, --sha256, --timing, dot."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from .conftest import BLENDFILES

SHOT = BLENDFILES / "v50" / "libraries" / "shots" / "shot.blend"


def test_text_tree_groups_by_blend_file(run_bat) -> None:  # type: ignore[no-untyped-def]
    res = run_bat("list", str(SHOT))
    assert res.exit_code == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].endswith("shots/shot.blend")
    heads = [line for line in lines if not line.startswith("    ")]
    assert any(h.endswith("libs/char.blend") for h in heads)  # libraries head their own groups
    assert all(line.startswith("    ") for line in lines if "textures/" in line)


def test_sha256(run_bat) -> None:  # type: ignore[no-untyped-def]
    res = run_bat("list", "--sha256", str(SHOT))
    png = SHOT.parent / "textures" / "shot.png"
    digest = hashlib.sha256(png.read_bytes()).hexdigest()
    assert any(line.strip().endswith(digest) and "shot.png" in line for line in res.stdout.splitlines())
    data = json.loads(run_bat("list", "--json", "--sha256", str(SHOT)).stdout)
    assert data[str(SHOT.resolve())][str(png.resolve())] == digest


def test_timing_on_stderr(run_bat) -> None:  # type: ignore[no-untyped-def]
    res = run_bat("list", "--timing", str(SHOT))
    assert "listed" in res.stderr and " s" in res.stderr
    assert "listed" not in res.stdout


def test_dot_graph(run_bat) -> None:  # type: ignore[no-untyped-def]
    res = run_bat("list", "--format", "dot", str(BLENDFILES / "v50" / "images" / "images.blend"))
    assert res.exit_code == 3  # the fixture has missing images
    out = res.stdout
    assert out.startswith("digraph bat {") and out.rstrip().endswith("}")
    assert "color=red" in out  # missing files stand out
    assert out.count("->") >= 8
    assert str(Path(BLENDFILES / "v50" / "images" / "images.blend").resolve()) in out
