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


IMAGES = BLENDFILES / "v50" / "images" / "images.blend"


def test_sha256_lines_in_bat1_places(run_bat, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """`path sha256`, one space, on the blend file lines as on the dependency lines."""
    monkeypatch.chdir(SHOT.parent.parent)
    lines = run_bat("list", "-s", str(SHOT)).stdout.splitlines()
    assert lines[0] == f"shots/shot.blend {hashlib.sha256(SHOT.read_bytes()).hexdigest()}"
    png = SHOT.parent / "textures" / "shot.png"
    assert f"    shots/textures/shot.png {hashlib.sha256(png.read_bytes()).hexdigest()}" in lines


def test_text_lists_only_existing_files(run_bat) -> None:  # type: ignore[no-untyped-def]
    res = run_bat("list", str(IMAGES))
    assert res.exit_code == 3
    listed = [line.strip() for line in res.stdout.splitlines()[1:]]
    assert listed and all((Path.cwd() / p).exists() for p in listed)
    missing = [line for line in res.stderr.splitlines() if line.startswith("missing: ")]
    assert len(missing) == 3 and any("textures/missing.png (used by IMmissing in images.blend)" in m
                                     for m in missing)


def test_json_full_marks_every_reference(run_bat) -> None:  # type: ignore[no-untyped-def]
    res = run_bat("list", "--format", "json-full", str(IMAGES))
    assert res.exit_code == 3
    report = json.loads(res.stdout)
    assert report["blendfile"] == str(IMAGES)
    deps = report["dependencies"]
    assert {d["kind"] for d in deps} >= {"image"}
    for d in deps:
        assert set(d) == {"kind", "exists", "problem", "blendfile", "block", "struct", "field", "stored_path",
                          "path", "sequence", "directory", "files"}
        assert bool(d["problem"]) == (not d["exists"])
        assert d["exists"] == bool(d["files"]) and all(Path(f).is_file() for f in d["files"])
    by_block = {d["block"]: d for d in deps}
    assert by_block["IMmissing"]["exists"] is False
    assert by_block["IMmissing"]["stored_path"] == "//textures/missing.png"
    assert by_block["IMmissing"]["field"] in ("name", "filepath") and by_block["IMmissing"]["struct"] == "Image"
    udim = next(d for d in deps if "<UDIM>" in d["stored_path"])
    assert udim["sequence"] and len(udim["files"]) == 3
    assert len(report["missing"]) == 3 == len({d["path"] for d in deps if not d["exists"]})
    only = json.loads(run_bat("list", "--format", "json-full", "--missing", str(IMAGES)).stdout)
    assert [d["block"] for d in only["dependencies"]] == [d["block"] for d in deps if not d["exists"]]
    hashed = json.loads(run_bat("list", "--format", "json-full", "-s", str(IMAGES)).stdout)
    single = next(d for d in hashed["dependencies"] if d["block"] == "IMsingle")
    (path,) = single["files"]
    assert single["sha256"] == {path: hashlib.sha256(Path(path).read_bytes()).hexdigest()}
