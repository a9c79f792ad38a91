"""Proof by Blender: every fixture is packed, then Blender opens the packed file.

Each path Blender reports for the packed file (libraries included) must name
the same content as the path it reports in the same place for the source
(``tests/packcheck.py``), inside the pack; a path missing in the source stays
missing.  With ``-r``, absolute paths stay exactly as they were.

Besides the fixtures as Blender wrote them, two kinds of copies are packed:
``@absolute`` stores every existing dependency by absolute path (bat's writer,
checked by Blender first), and ``@outside`` also moves each of the main file's
dependencies to a directory beside the project, so that packing must rewrite
every kind of path field with a longer path (``//_outside_project/...``),
``char *`` strings included.  The packs are made once per module; one Blender
process checks all of them.
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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bat_core.blendfile import open_blend
from bat_core.cli import main as bat_main
from bat_core.pack import OUTSIDE_PROJECT, PackResult, pack
from bat_core.trace import BlendFileCache, trace

from .conftest import BLENDFILES, Fixture, all_fixtures, fixture_at
from .packcheck import assert_same_files, content, inside

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
    #: ... and the main file's dependencies moved out of the project (``@outside``).
    relocate: bool = False
    # Filled in when packed:
    #: The kinds of the paths that were made absolute, one entry per path.
    absolutized: list[str] = field(default_factory=list)
    #: The blend file the case was copied from (absolutized cases).
    original: Path = Path()
    #: Where the moved dependencies are (``@outside``).
    elsewhere: Path | None = None
    root: Path = Path()
    packed_blend: Path = Path()
    result: PackResult | None = None


def _expected(fx: Fixture) -> list[str]:
    return [*fx.expected["existing_files"], *fx.expected["baked_files"]]


#: Fixtures that store no path to an existing file: nothing to make absolute or move.
NOTHING_TO_REWRITE = {"basic/basic.blend", "basic/basic-zstd.blend", "fluid/fluid.blend"}
#: Moving their dependencies changes the scene: each links the other, and a moved copy of
#: the one links back to a moved copy of this file, not to this file (a chain, not a cycle).
CYCLES = {"libraries/libs/cycle_a.blend", "libraries/libs/cycle_b.blend"}
#: Every kind of path the ``@outside`` cases must rewrite, each with a path that grows.
REWRITTEN_KINDS = {
    "image", "library", "sound", "movieclip", "font", "text", "cachefile", "volume", "point-cache",
    "geonodes-bake", "sequence-image", "sequence-movie", "sequence-sound", "ies", "osl-script",
    "mesh-cache", "multires", "ocean-bake",
}


def _cases() -> list[Case]:
    cases = []
    for fx in FIXTURES:
        cases.append(Case(f"{fx.id}@root", fx.blend, fx.root, expected=_expected(fx), scenario=fx.root))
        cases.append(Case(f"{fx.id}@zip", fx.blend, None, kind="zip", expected=_expected(fx), scenario=fx.root))
    extra = fixture_at(EXTRA / "main.blend", EXTRA)
    cases.append(Case("caches_extra@root", extra.blend, EXTRA, expected=_expected(extra), scenario=EXTRA))
    cases.append(Case("caches_extra@compress", extra.blend, None, compress=True, expected=_expected(extra),
                      scenario=EXTRA))
    shot = BLENDFILES / "v50" / "libraries" / "shots" / "shot.blend"
    fx_shot = next(f for f in FIXTURES if f.blend == shot)
    cases.append(Case("v50/libraries/shots@outside-project", shot, None, expected=_expected(fx_shot),
                      scenario=fx_shot.root))
    cases.append(Case("v50/libraries/shots@compress", shot, fx_shot.root, compress=True,
                      expected=_expected(fx_shot), scenario=fx_shot.root))
    for fx in FIXTURES:
        if fx.id.split("/", 1)[1] in NOTHING_TO_REWRITE:
            continue
        if fx.blend.parent == fx.root:
            cases.append(Case(f"{fx.id}@absolute", fx.blend, fx.root, expected=_expected(fx), scenario=fx.root,
                              absolutize=True))
        if fx.id.split("/", 1)[1] not in CYCLES:
            cases.append(Case(f"{fx.id}@outside", fx.blend, fx.root, expected=_expected(fx), scenario=fx.root,
                              absolutize=True, relocate=True))
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


def absolutize(blend: Path, relocate: Callable[[Path], Path] | None = None) -> list[str]:
    """Store every existing dependency of ``blend`` (and of its libraries) by absolute path.

    With ``relocate``, only the main file's paths change, each to
    ``relocate(its file)``.  Every such path must be written (a ``char *`` string
    grows; a fixed array has room for these paths): nothing is skipped.  Returns
    the kinds of the paths changed, one entry per path.
    """
    kinds: list[str] = []
    with BlendFileCache() as cache:
        usages = list(trace(blend, cache=cache))  # all read before anything changes
        files = set()
        for usage in usages:
            if usage.field is None or not usage.files or usage.asset_path.is_absolute:
                continue
            if relocate is not None and usage.blendfile != blend:
                continue
            where = usage.abspath if relocate is None else relocate(usage.abspath)
            old = usage.block.get_string(usage.field)
            if usage.dir_only:
                new = os.fsencode(where.parent) + b"/"
            else:
                new = os.fsencode(where) + (b"/" if old.endswith(b"/") else b"")
            usage.block.set(usage.field, new)
            assert usage.block.get_string(usage.field) == new
            kinds.append(usage.kind)
            files.add(usage.block.file)
        for bf in files:
            tmp = bf.path.with_name(bf.path.name + ".tmp")
            bf.save(tmp)
            os.replace(tmp, bf.path)
    return kinds


#: Where ``@outside`` cases move the dependencies: beside the project, under a long name.
ELSEWHERE = "shared-studio-library-outside-the-project"


def _absolute_copy(case: Case, base: Path) -> None:
    """Point the case at its own copy of its scenario, with absolute (and maybe moved) paths."""
    assert case.scenario is not None and case.project is not None
    top = base / "absolutized" / case.id.replace("/", "_").replace("@", "-")
    copy = top / "project"
    shutil.copytree(case.scenario, copy)
    relocate = None
    if case.relocate:
        elsewhere = top / ELSEWHERE
        shutil.copytree(case.scenario, elsewhere)
        case.elsewhere = elsewhere

        def relocate(path: Path) -> Path:
            return elsewhere / path.relative_to(copy)

    case.original = case.blend
    blend = copy / case.blend.relative_to(case.scenario)
    case.absolutized = absolutize(blend, relocate)
    assert case.absolutized, f"{case.id}: no path was made absolute"
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
    return content(path) is not None


def _where(case: Case, rel: str) -> list[Path]:
    """Where a scenario file may be in the pack (``@outside``: from the project or from beside it)."""
    assert case.scenario is not None
    project = case.project or case.blend.parent
    out = []
    for top in (case.scenario, case.elsewhere):
        if top is None:
            continue
        src = Path(os.path.normpath(top / rel))
        if src.is_relative_to(project):
            out.append(case.root / src.relative_to(project))
        else:
            out.append(case.root / OUTSIDE_PROJECT / src.relative_to("/"))
    return out


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_expected_files_are_packed(case: Case, packed: dict[str, Any]) -> None:
    assert case.expected or case.id.split("@")[0].endswith(tuple(NOTHING_TO_REWRITE)), case.id
    missing = [rel for rel in case.expected if not any(p.is_file() for p in _where(case, rel))]
    assert not missing
    if case.result is not None:
        assert all(f.action in ("copied", "rewritten", "excluded") for f in case.result.files)
        packed_files = [f for f in case.result.files if f.action in ("copied", "rewritten")]
        # Each file once: the scenario's files, the blend file itself and bat's pack-info.txt
        # (unless the project has a file of that name at the top of the pack: it wins).
        assert len(packed_files) == len({(f.source, f.own) for f in packed_files})
        project_info = any(f.relpath == "pack-info.txt" and not f.own for f in packed_files)
        assert project_info == ("pack-info.txt" in case.expected and not case.relocate)
        own = 0 if project_info else 1
        assert [f.relpath for f in packed_files if f.own] == ["pack-info.txt"] * own
        assert len(packed_files) == len(set(case.expected)) + 1 + own, sorted(f.relpath or "" for f in packed_files)


def _reports(packed: dict[str, Any]) -> dict[str, Any]:
    reports = packed["reports"]
    if isinstance(reports, str):
        pytest.skip(reports)
    return reports  # type: ignore[no-any-return]


@needs_bpy
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_blender_loads_the_same_files_from_the_pack(case: Case, packed: dict[str, Any]) -> None:
    """Entry by entry, what Blender loads from the pack is what it loads from the source."""
    assert_same_files(_reports(packed), case.blend, case.packed_blend, case.root)


ABSOLUTIZED = [c for c in CASES if c.absolutize]


@needs_bpy
@pytest.mark.parametrize("case", ABSOLUTIZED, ids=[c.id for c in ABSOLUTIZED])
def test_absolutized_copies_load_what_the_fixtures_load(case: Case, packed: dict[str, Any]) -> None:
    """bat's writer (paths made absolute, ``char *`` strings grown) is checked by Blender first."""
    reports = _reports(packed)
    assert_same_files(reports, case.original, case.blend, None)
    if case.relocate:
        assert case.elsewhere is not None
        moved = [p for p in reports[str(case.blend)] if inside(p, case.elsewhere)]
        assert len(moved) >= 1, reports[str(case.blend)]


def test_absolute_paths_were_rewritten(packed: dict[str, Any]) -> None:
    cases = [c for c in CASES if c.absolutize]
    assert len(cases) > 40
    for case in cases:
        assert case.result is not None
        main = next(f for f in case.result.files if Path(f.source) == case.blend)
        assert main.action == "rewritten", case.id


def test_outside_cases_rewrite_every_kind_of_path(packed: dict[str, Any]) -> None:
    """Each kind of path field is moved out of the project in some case, so its packed path grows."""
    kinds = {kind for c in CASES if c.relocate for kind in c.absolutized}
    assert kinds >= REWRITTEN_KINDS, REWRITTEN_KINDS - kinds
    for case in (c for c in CASES if c.relocate):
        assert case.result is not None
        outside = [f for f in case.result.files if f.relpath and f.relpath.startswith(OUTSIDE_PROJECT + "/")]
        assert outside, f"{case.id}: nothing was packed from outside the project"


@needs_bpy
def test_outside_project_files_land_in_outside_project(packed: dict[str, Any]) -> None:
    case = next(c for c in CASES if c.id == "v50/libraries/shots@outside-project")
    report = _reports(packed)[str(case.packed_blend)]
    outside = [p for p in report if "/libs/" in p or p.endswith("set.blend") or p.endswith("set.png")]
    assert outside
    for path in outside:
        assert inside(path, case.root / OUTSIDE_PROJECT), path
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
        assert _exists(path) and inside(path, case.root), path
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
            assert not inside(path, case.root)
        elif any(Path(path).is_relative_to(lib) for lib in kept_libraries):
            assert _exists(path)
        else:
            assert _exists(path) and inside(path, case.root), path
    packed_names = {Path(f.source).name for f in case.result.files if f.action in ("copied", "rewritten")}
    assert "ext.png" not in packed_names and "char.png" not in packed_names
    excluded = [f for f in case.result.files if f.action == "excluded"]
    assert {Path(f.source).name for f in excluded} >= {"ext.png", "char.png"}
    assert not (case.root / OUTSIDE_PROJECT).exists()
