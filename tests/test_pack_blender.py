"""Proof by Blender: every fixture is packed, then Blender opens the packed file.

Every path Blender reports for the packed file (libraries included) must
exist inside the pack, except paths that were already missing in the source
and, with ``-r``, absolute paths, which must stay exactly as they were.  The
packs are made once per module; one Blender process checks all of them.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bat_core.blendfile import open_blend
from bat_core.cli import main as bat_main
from bat_core.pack import OUTSIDE_PROJECT, PackResult, pack
from bat_core.trace import BlendFileCache, trace

from .conftest import BLENDFILES, Fixture, all_fixtures

NO_BPY = ("bpy (Blender as a Python module) is not importable in this Python; "
          "the pack tests open packed files with it (pip install bpy==5.0.1, Python 3.11 only)")
needs_bpy = pytest.mark.skipif(importlib.util.find_spec("bpy") is None, reason=NO_BPY)

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "examples" / "demo"
EXTRA = Path(__file__).resolve().parent / "data" / "caches_extra"
FIXTURES = all_fixtures()

#: Run inside Blender: open each file, write what ``blend_paths`` reports.
BLENDER_SCRIPT = r"""
import json, sys
import bpy
files = json.load(open(sys.argv[1]))
out = {}
for f in files:
    try:
        bpy.ops.wm.open_mainfile(filepath=f, load_ui=False)
        out[f] = bpy.utils.blend_paths(absolute=True, packed=False, local=False)
    except Exception as exc:
        out[f] = {"error": str(exc)}
json.dump(out, open(sys.argv[2], "w"))
"""


@dataclass
class Case:
    """One pack to make and check."""

    id: str
    blend: Path
    project: Path | None  # None: the blend file's directory (the default)
    kind: str = "dir"  # dir, zip, cli
    relative_only: bool = False
    compress: bool = False
    #: Files (relative to the scenario root) that must be in the pack.
    expected: list[str] = field(default_factory=list)
    scenario: Path | None = None
    #: Pack a copy of the scenario in which every stored path was made absolute.
    absolutize: bool = False
    # Filled in when packed:
    absolutized: int = 0
    root: Path = Path()
    packed_blend: Path = Path()
    result: PackResult | None = None


def _expected(fx: Fixture) -> list[str]:
    return [*fx.expected["existing_files"], *fx.expected["baked_files"]]


def _cases() -> list[Case]:
    cases = []
    for fx in FIXTURES:
        cases.append(Case(f"{fx.id}@root", fx.blend, fx.root, expected=_expected(fx), scenario=fx.root))
        cases.append(Case(f"{fx.id}@zip", fx.blend, None, kind="zip", expected=_expected(fx), scenario=fx.root))
    extra = [p.relative_to(EXTRA).as_posix() for p in EXTRA.rglob("*") if p.is_file()]
    cases.append(Case("caches_extra@root", EXTRA / "main.blend", EXTRA, expected=extra, scenario=EXTRA))
    cases.append(Case("caches_extra@compress", EXTRA / "main.blend", None, compress=True, expected=extra,
                      scenario=EXTRA))
    shot = BLENDFILES / "v50" / "libraries" / "shots" / "shot.blend"
    fx_shot = next(f for f in FIXTURES if f.blend == shot)
    cases.append(Case("v50/libraries/shots@outside", shot, None, expected=_expected(fx_shot),
                      scenario=fx_shot.root))
    cases.append(Case("v50/libraries/shots@compress", shot, fx_shot.root, compress=True,
                      expected=_expected(fx_shot), scenario=fx_shot.root))
    for fx in FIXTURES:
        if fx.blend.parent == fx.root:
            cases.append(Case(f"{fx.id}@absolute", fx.blend, fx.root, expected=_expected(fx), scenario=fx.root,
                              absolutize=True))
    demo = [p.relative_to(DEMO).as_posix() for p in DEMO.rglob("*") if p.is_file() and p.suffix != ".json"]
    cases.append(Case("demo@cli", DEMO / "shot.blend", None, kind="cli", expected=demo, scenario=DEMO))
    cases.append(Case("demo@cli-zip", DEMO / "shot.blend", None, kind="cli-zip", expected=demo, scenario=DEMO))
    return cases


CASES = _cases()


def tree_hashes(*roots: Path) -> dict[str, str]:
    out = {}
    for root in roots:
        for p in sorted(root.rglob("*")):
            if p.is_file():
                out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def run_blender(files: list[Path], workdir: Path) -> dict[str, Any] | str:
    """Open every file in one Blender process; path -> reported paths, or why bpy cannot run."""
    listing = workdir / "blender-files.json"
    report = workdir / "blender-report.json"
    listing.write_text(json.dumps([str(f) for f in files]))
    proc = subprocess.run([sys.executable, "-c", BLENDER_SCRIPT, str(listing), str(report)],
                          capture_output=True, text=True, timeout=300)
    if proc.returncode != 0 and "import bpy" in proc.stderr and "Error" in proc.stderr:
        return f"{NO_BPY}: {proc.stderr.strip().splitlines()[-1]}"  # found, but does not load
    assert proc.returncode == 0 and report.exists(), proc.stderr[-3000:]
    return json.loads(report.read_text())  # type: ignore[no-any-return]


def absolutize(blend: Path) -> int:
    """Store every existing dependency of ``blend`` (and its libraries) by absolute path.

    Fields too small for the absolute path are left alone.  Returns how many
    paths were changed.
    """
    changed = 0
    with BlendFileCache() as cache:
        files = set()
        for usage in trace(blend, cache=cache):
            if usage.field is None or not usage.files or usage.asset_path.is_absolute:
                continue
            old = usage.block.get_string(usage.field)
            if usage.dir_only:
                new = os.fsencode(usage.abspath.parent) + b"/"
            else:
                new = os.fsencode(usage.abspath) + (b"/" if old.endswith(b"/") else b"")
            try:
                usage.block.set(usage.field, new)
            except ValueError:
                continue
            changed += 1
            files.add(usage.block.file)
        for bf in files:
            tmp = bf.path.with_name(bf.path.name + ".tmp")
            bf.save(tmp)
            os.replace(tmp, bf.path)
    return changed


def _absolute_copy(case: Case, base: Path) -> None:
    """Point the case at a copy of its scenario with absolute paths."""
    assert case.scenario is not None and case.project is not None
    copy = base / "absolutized" / case.scenario.relative_to(BLENDFILES)
    if not copy.exists():
        shutil.copytree(case.scenario, copy)
    blend = copy / case.blend.relative_to(case.scenario)
    case.absolutized = absolutize(blend)
    case.blend, case.project, case.scenario = blend, copy, copy


def _make(case: Case, base: Path) -> None:
    out = base / case.id.replace("/", "_").replace("@", "-")
    if case.absolutize:
        _absolute_copy(case, base)
    if case.kind in ("dir",):
        case.root = out
        case.result = pack(case.blend, str(out), project=case.project, relative_only=case.relative_only,
                           compress=case.compress)
    elif case.kind == "zip":
        zpath = out.with_suffix(".zip")
        case.result = pack(case.blend, str(zpath), project=case.project, relative_only=case.relative_only,
                           compress=case.compress)
        with zipfile.ZipFile(zpath) as zf:
            for name in zf.namelist():
                assert not name.startswith("/") and ".." not in name.split("/"), name
            zf.extractall(out)
        case.root = out
    else:
        target = out.with_suffix(".zip") if case.kind == "cli-zip" else out
        try:
            code = bat_main(["pack", "--progress", "none", str(case.blend), str(target)])
        except SystemExit as exc:
            code = exc.code
        assert code in (0, None), code
        if case.kind == "cli-zip":
            with zipfile.ZipFile(target) as zf:
                zf.extractall(out)
        case.root = out
    project = case.project or case.blend.parent
    case.packed_blend = case.root / case.blend.relative_to(project)


def make_absolute_scenario(base: Path) -> tuple[Path, Path, list[str]]:
    """The v50 libraries scenario with absolute paths, written with bat's own writer.

    ``shots/shot.blend``'s image points, by absolute path, at a copy outside the
    project (``elsewhere/ext.png``).  In the library ``libs/char.blend``, its
    texture and its own link to ``sub/prop.blend`` become absolute, so packing
    must rewrite a library's paths, LI paths included.  Returns the scenario
    root, the shot, and the absolute paths stored.
    """
    root = base / "absolute" / "project"
    shutil.copytree(BLENDFILES / "v50" / "libraries", root)
    elsewhere = base / "absolute" / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(root / "shots" / "textures" / "shot.png", elsewhere / "ext.png")
    shot = root / "shots" / "shot.blend"
    stored: list[str] = []
    with BlendFileCache() as cache:
        changed = set()
        for usage in trace(shot, cache=cache):
            name = usage.abspath.name
            if usage.blendfile == shot and name == "shot.png":
                new = elsewhere / "ext.png"
            elif usage.blendfile.name == "char.blend" and name in ("char.png", "prop.blend"):
                new = usage.abspath
            else:
                continue
            assert usage.field is not None
            usage.block.set(usage.field, os.fsencode(new))
            stored.append(str(new))
            changed.add(usage.block.file)
        for bf in changed:
            tmp = bf.path.with_suffix(".tmp")
            bf.save(tmp)
            os.replace(tmp, bf.path)
    assert len(stored) == 3
    return root, shot, stored


@pytest.fixture(scope="module")
def packed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("packs")
    before = tree_hashes(BLENDFILES, EXTRA, DEMO)
    for case in CASES:
        _make(case, base)
    root, shot, stored = make_absolute_scenario(base)
    abs_before = tree_hashes(root)
    absolute = {
        "plain": Case("absolute", shot, root),
        "relative_only": Case("absolute-r", shot, root, relative_only=True),
    }
    for case in absolute.values():
        _make(case, base)
    after = tree_hashes(BLENDFILES, EXTRA, DEMO)
    reports: dict[str, Any] | str = NO_BPY
    all_cases = [*CASES, *absolute.values()]
    if importlib.util.find_spec("bpy") is not None:
        files = sorted({c.blend for c in all_cases} | {c.packed_blend for c in all_cases})
        reports = run_blender(files, base)
    return {"before": before, "after": after, "reports": reports, "absolute": absolute,
            "stored": stored, "abs_unchanged": abs_before == tree_hashes(root)}


def test_sources_untouched(packed: dict[str, Any]) -> None:
    assert packed["before"] == packed["after"]


def _exists(path: str) -> bool:
    p = Path(path)
    if "<UDIM>" in p.name or "<UVTILE>" in p.name:
        prefix = p.name.split("<", 1)[0]
        return p.parent.is_dir() and any(c.name.startswith(prefix) for c in p.parent.iterdir())
    return p.exists()


def _inside(path: str, root: Path) -> bool:
    real = os.path.realpath(path)
    top = os.path.realpath(root)
    return real == top or real.startswith(top + os.sep)


def _where(case: Case, rel: str) -> Path:
    """Where a scenario file must be in the pack."""
    assert case.scenario is not None
    src = Path(os.path.normpath(case.scenario / rel))
    project = case.project or case.blend.parent
    if src.is_relative_to(project):
        return case.root / src.relative_to(project)
    return case.root / OUTSIDE_PROJECT / src.relative_to("/")


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_expected_files_are_packed(case: Case, packed: dict[str, Any]) -> None:
    missing = [rel for rel in case.expected if not _where(case, rel).exists()]
    assert not missing
    if case.result is not None:
        assert all(f.action in ("copied", "rewritten", "excluded") for f in case.result.files)


def _reports(packed: dict[str, Any]) -> dict[str, Any]:
    reports = packed["reports"]
    if isinstance(reports, str):
        pytest.skip(reports)
    return reports  # type: ignore[no-any-return]


@needs_bpy
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_blender_finds_everything_inside_the_pack(case: Case, packed: dict[str, Any]) -> None:
    source = _reports(packed)[str(case.blend)]
    report = _reports(packed)[str(case.packed_blend)]
    assert isinstance(report, list), report
    assert len(report) == len(source)
    was_missing = {Path(p).name for p in source if not _exists(p)}
    for path in report:
        if path == "":
            continue  # an unused path field (point caches report one); Blender resolves nothing
        if not _exists(path):
            assert Path(path).name in was_missing, f"{path} is missing in the pack but not in the source"
            continue
        assert _inside(path, case.root), f"{path} is outside the pack {case.root}"


def test_absolute_paths_were_rewritten(packed: dict[str, Any]) -> None:
    cases = [c for c in CASES if c.absolutize and c.absolutized]
    assert len(cases) > 10
    for case in cases:
        assert case.result is not None
        main = next(f for f in case.result.files if Path(f.source) == case.blend)
        assert main.action == "rewritten", case.id


@needs_bpy
def test_outside_project_files_land_in_outside_project(packed: dict[str, Any]) -> None:
    case = next(c for c in CASES if c.id == "v50/libraries/shots@outside")
    report = _reports(packed)[str(case.packed_blend)]
    outside = [p for p in report if "/libs/" in p or p.endswith("set.blend") or p.endswith("set.png")]
    assert outside
    for path in outside:
        assert _inside(path, case.root / OUTSIDE_PROJECT), path
    assert (case.root / "textures" / "shot.png").exists()


def test_compressed_blend_files_are_zstd(packed: dict[str, Any]) -> None:
    for case in CASES:
        if not case.compress:
            continue
        blends = [p for p in case.root.rglob("*.blend")]
        assert blends
        for path in blends:
            with open_blend(path) as bf:
                assert bf.compression.value == "zstd", path


@needs_bpy
def test_absolute_paths_become_relative_in_the_pack(packed: dict[str, Any]) -> None:
    """Absolute paths, in the main file and in a library (its LI path too), point into the pack."""
    case = packed["absolute"]["plain"]
    report = _reports(packed)[str(case.packed_blend)]
    source = _reports(packed)[str(case.blend)]
    assert len(report) == len(source)
    for stored in packed["stored"]:
        assert stored in source
    for path in report:
        assert _exists(path) and _inside(path, case.root), path
    assert (case.root / OUTSIDE_PROJECT).is_dir()
    ext = next(p for p in packed["stored"] if p.endswith("ext.png"))
    assert str(case.root / OUTSIDE_PROJECT / Path(ext).relative_to("/")) in report
    rewritten = {Path(f.relpath or "").name for f in case.result.files if f.action == "rewritten"}
    assert {"shot.blend", "char.blend"} <= rewritten
    assert packed["abs_unchanged"]


@needs_bpy
def test_relative_only_leaves_absolute_paths_alone(packed: dict[str, Any]) -> None:
    case = packed["absolute"]["relative_only"]
    report = _reports(packed)[str(case.packed_blend)]
    stored = set(packed["stored"])
    for path in stored:
        assert path in report, f"{path} should stay as it is with -r"
    # What an absolutely linked library uses is seen through that library, where it is.
    kept_libraries = [Path(p).parent for p in stored if p.endswith(".blend")]
    for path in report:
        if path in stored:
            assert not _inside(path, case.root)
        elif any(Path(path).is_relative_to(lib) for lib in kept_libraries):
            assert _exists(path)
        else:
            assert _exists(path) and _inside(path, case.root), path
    packed_names = {Path(f.source).name for f in case.result.files if f.action in ("copied", "rewritten")}
    assert "ext.png" not in packed_names and "char.png" not in packed_names
    excluded = [f for f in case.result.files if f.action == "excluded"]
    assert {Path(f.source).name for f in excluded} >= {"ext.png", "char.png"}
    assert not (case.root / OUTSIDE_PROJECT).exists()
