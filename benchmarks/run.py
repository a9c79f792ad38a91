"""Build the benchmark scenes if missing, then run the benchmarks and summarise.

    python benchmarks/run.py [--blender-python PY ...] [--bat-python PY] [--runs 5] [--rebuild] [--only NAME]

Scenes are built by ``make_scene.py`` under each Blender Python given with
``--blender-python`` (repeatable), else those listed in ``$BAT_BENCH_BLENDER_PYTHON``
(separated by ``os.pathsep``), else ``/opt/bpy42/bin/python`` and
``/opt/bpy50/bin/python`` where they exist: ``work/<version>/`` and, for the
scaling benchmark, ``work/<version>-x4/`` (four times the scale options).  A
scene is rebuilt when it is missing, was built with other scale options or by
an older ``make_scene.py`` (``benchlib.SCENE_FORMAT``), or with ``--rebuild``.
The benchmarks run under this interpreter, which must have ``bat`` installed;
BAT 1.23 runs in-process when importable here, else under ``--bat-python``.

The output ends with one table of every issue-13 ("Speed") ratio against its
target: ``bat list`` against BAT 1.23, start-up against ``python -c pass``,
re-pack against ``bat list``, a fresh pack against ``bat list`` + ``cp -r``, the
4x scene against the 1x one and peak memory against the decompressed file.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import benchlib as bl

DEFAULT_BLENDER_PYTHONS = ["/opt/bpy42/bin/python", "/opt/bpy50/bin/python"]
#: The benchmarks, in the order they run (``--only`` choices).
ONLY = ["open", "trace", "startup", "pack", "scale", "s3", "shaman"]


def blender_pythons(given: list[str] | None) -> list[str]:
    if given:
        return given
    env = os.environ.get("BAT_BENCH_BLENDER_PYTHON")
    if env:
        return [p for p in env.split(os.pathsep) if p]
    found = [p for p in DEFAULT_BLENDER_PYTHONS if Path(p).is_file()]
    if not found:
        raise SystemExit("no Blender Python found: pass --blender-python or set BAT_BENCH_BLENDER_PYTHON")
    return found


def blender_version(python: str) -> str:
    out = subprocess.run([python, "-c", "import bpy; print(bpy.app.version_string)"],
                         check=True, capture_output=True, text=True).stdout
    return out.strip().splitlines()[-1].split(" ")[0]


def scene_line(scene: Path) -> str:
    """What scene.json says about a scene: blocks, libraries, objects, size."""
    rec = json.loads((scene / "scene.json").read_text())
    return (f"{rec.get('shot_blocks', 0):,} blocks, {rec.get('libraries', '?')} libraries, "
            f"{rec.get('shot_objects', '?')} objects (+{rec.get('linked_objects', '?')} linked), "
            f"{rec['shot_size'] / 1e6:.1f} MB, {len(rec['dependency_files'])} dependency files")


def ensure_scene(python: str, scale: dict[str, int], rebuild: bool, factor: int = 1) -> Path:
    """The scene directory for this Blender (``factor`` times ``scale``), built first when needed."""
    version = blender_version(python)
    scene = bl.WORK / version
    if factor != 1:
        scale = {k: v * factor for k, v in scale.items()}
        scene = bl.scaled_scene_dir(scene, factor)
    record = scene / "scene.json"
    if record.is_file() and not rebuild:
        rec = json.loads(record.read_text())
        options = rec["options"]
        if rec.get("format") == bl.SCENE_FORMAT and all(options.get(k) == v for k, v in scale.items()):
            print(f"Blender {version}: using {scene} ({scene_line(scene)})")
            return scene
    print(f"Blender {version}: building the scene in {scene} ...", flush=True)
    bl.WORK.mkdir(parents=True, exist_ok=True)
    log = bl.WORK / f"make_scene-{scene.name}.log"
    cmd = [python, str(bl.HERE / "make_scene.py"), "--out", str(scene)]
    for key, value in scale.items():
        cmd += [f"--{key}", str(value)]
    with open(log, "w") as fh:
        done = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT)
    if done.returncode:
        raise SystemExit(f"make_scene.py failed (exit {done.returncode}); see {log}")
    print("  " + log.read_text().strip().splitlines()[-1])
    return scene


def run_bench(script: str, files: list[Path], runs: int, extra: list[str]) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "results.json"
        cmd = [sys.executable, str(bl.HERE / script), *map(str, files), "--runs", str(runs),
               "--json", str(out), *extra]
        subprocess.run(cmd, check=True)
        results: list[dict[str, Any]] = json.loads(out.read_text())
        return results


def summary(opened: list[dict[str, Any]], traced: list[dict[str, Any]]) -> str:
    by_file: dict[str, dict[str, Any]] = {}
    for r in opened:
        by_file.setdefault(r["file"], {})["open"] = r
    for r in traced:
        by_file.setdefault(r["file"], {})["trace"] = r
    rows = []
    for name, r in by_file.items():
        o, t = r.get("open"), r.get("trace")
        rows.append([
            name,
            f"{o['open_over_baseline']:.1f}x" if o else "-",
            f"{t['bat_s'] * 1000:.0f} ms" if t else "-",
            f"{t['bat123_s'] * 1000:.0f} ms" if t else "-",
            f"{t['speedup']:.1f}x" if t else "-",
            f"{t['bat_over_baseline']:.1f}x" if t else "-",
            f"{t['files_bat']} / {t['files_bat123']}" if t else "-",
        ])
    return bl.table(rows, ["summary", "open/baseline", "bat list", "BAT 1.23", "BAT/bat (>=10x)",
                           "bat/baseline (<=3x)", "files bat / BAT"])


def pack_summary(packed: list[dict[str, Any]]) -> str:
    rows = [[r["file"], f"{r['bat_s'] * 1000:.0f} ms", f"{r['bat123_s'] * 1000:.0f} ms", f"{r['cp_s'] * 1000:.0f} ms",
             f"{r['speedup']:.1f}x", f"{r['bat_over_cp']:.2f}x", f"{r['repack_over_list']:.2f}x",
             str(r["repack"].get("copied", 0) + r["repack"].get("rewritten", 0))] for r in packed]
    return bl.table(rows, ["pack summary", "bat pack", "BAT 1.23", "cp -r", "BAT/bat (>=3x)",
                           "bat/cp (<=1.3x)", "re-pack/list (<=1x)", "re-pack transfers"])


def shaman_summary(results: list[dict[str, Any]]) -> str:
    rows = [[r["file"], api, f"{r[f'{api}_first_over_dir']:.2f}x", f"{r[f'{api}_repack_over_list']:.2f}x",
             str(r["facts"][api]["repack"]["uploaded_bytes"]), f"{r['concurrent']['eight_over_one']:.2f}x"]
            for r in results for api in ("v2", "v3")]
    return bl.table(rows, ["shaman summary", "api", "first/dir (<=1.5x)", "re-pack/list (<=1.5x)",
                           "re-pack bytes (0)", "8 clients / 1"])


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def issue13_summary(traced: list[dict[str, Any]], startup: list[dict[str, Any]], packed: list[dict[str, Any]],
                    scaled: list[dict[str, Any]]) -> str:
    """One table of every issue-13 ("Speed") ratio, each measured within this run."""
    import bench_pack
    import bench_scale
    import bench_startup
    import bench_trace

    rows: list[list[str]] = []

    def row(n: str, what: str, where: str, measured: str, ratio: float, target: str, ok: bool) -> None:
        rows.append([n, what, where, measured, f"{ratio:.2f}x", target, verdict(ok)])

    def info(n: str, what: str, where: str, measured: str, ratio: float) -> None:
        """A figure shown for what it tells, with no target of its own."""
        rows.append([n, what, where, measured, f"{ratio:.2f}x", "-", "(figure)"])

    for r in traced:
        row("1", "bat list: BAT 1.23 / bat", r["file"], f"{ms(r['bat123_s'])} / {ms(r['bat_s'])}",
            r["speedup"], f">= {bench_trace.TARGET_SPEEDUP:g}x", r["speedup"] >= bench_trace.TARGET_SPEEDUP)
        info("1", "the same, main file just saved (libraries remembered)", r["file"],
             f"{ms(r['bat123_s'])} / {ms(r['bat_saved_s'])}", r["speedup_saved"])
        row("1", "the same, no memos (first run)", r["file"], f"{ms(r['bat123_s'])} / {ms(r['bat_no_memos_s'])}",
            r["speedup_no_memos"], f">= {bench_trace.TARGET_SPEEDUP:g}x",
            r["speedup_no_memos"] >= bench_trace.TARGET_SPEEDUP)
    target = bench_startup.TARGET_OVER_PYTHON
    for r in startup:
        base = r["commands"]["python -c pass"]["wall_s"]
        for name in ("bat version", "bat --help"):
            c = r["commands"][name]
            row("2", f"{name} / python -c pass", f"median of {r['runs']}", f"{ms(c['wall_s'])} / {ms(base)}",
                c["over_python"], f"<= {target:g}x", c["over_python"] <= target)
    for r in packed:
        target = bench_pack.TARGET_REPACK_OVER_LIST
        row("3", "re-pack (unchanged) / bat list", r["file"], f"{ms(r['repack_s'])} / {ms(r['list_s'])}",
            r["repack_over_list"], f"<= {target:g}x", r["repack_over_list"] <= target)
        row("3", "the same as commands: bat pack / bat list --json", r["file"],
            f"{ms(r['repack_cli_s'])} / {ms(r['list_cli_s'])}",
            r["repack_over_list_cli"], f"<= {target:g}x", r["repack_over_list_cli"] <= target)
    for r in packed:
        target = bench_pack.TARGET_OVER_LIST_CP
        row("4", "fresh pack / (bat list + cp -r)", r["file"],
            f"{ms(r['bat_s'])} / ({ms(r['list_s'])} + {ms(r['cp_s'])})",
            r["bat_over_list_cp"], f"<= {target:g}x", r["bat_over_list_cp"] <= target)
    for r in scaled:
        target = bench_scale.TARGET_SCALE
        for name, key in (("shot.blend", "scale_plain"), ("shot-zstd.blend", "scale_zstd")):
            row("5", "bat list: 4x scene / 1x scene", f"{r['scaled']} / {r['scene']}: {name}",
                f"{ms(r['list_s'][f'4x/{name}'])} / {ms(r['list_s'][f'1x/{name}'])}",
                r[key], f"<= {target:g}x", r[key] <= target)
        m = r["memory"]["1x"]
        target = bench_scale.TARGET_PEAK_OVER_SIZE
        row("5", "bat list peak RSS / decompressed size", m["file"],
            f"{m['peak'] / 1e6:.0f} MB / {m['data_size'] / 1e6:.0f} MB "
            f"(import bat_core.cli alone: {r['import_peak'] / 1e6:.0f} MB)",
            m["peak_over_size"], f"<= {target:g}x", m["peak_over_size"] <= target)
    targets = [r for r in rows if r[-1] != "(figure)"]
    missed = sum(1 for r in targets if r[-1] != "ok")
    table = bl.table(rows, ["#", "issue 13 (Speed)", "scene / file", "measured", "ratio", "target", "verdict"])
    return (f"{table}\n{len(targets) - missed} of {len(targets)} ok, {missed} MISSED "
            "(all ratios measured in this run)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--blender-python", action="append", help="a Python with bpy (repeatable)")
    p.add_argument("--runs", type=int, default=5, help="timed runs per measurement (median)")
    p.add_argument("--startup-runs", type=int, default=20, help="runs of each start-up command (median)")
    p.add_argument("--rebuild", action="store_true", help="rebuild the scenes even if present")
    p.add_argument("--only", choices=ONLY, help="run one benchmark only")
    p.add_argument("--bat-python", help="BAT 1.23's interpreter, passed on to bench_trace.py and bench_pack.py")
    for key, default in bl.SCENE_DEFAULTS.items():
        p.add_argument(f"--{key}", type=int, default=default, help=f"scene scale (default {default})")
    args = p.parse_args(argv)
    bl.compile_bat()
    scale = {k: getattr(args, k) for k in bl.SCENE_DEFAULTS}
    wanted = {args.only} if args.only else set(ONLY)
    files: list[Path] = []
    scenes: list[Path] = []
    needs_scene = wanted - {"startup"}
    for python in blender_pythons(args.blender_python) if needs_scene else []:
        scene = ensure_scene(python, scale, args.rebuild)
        files += [scene / "shot.blend", scene / "shot-zstd.blend"]
        scenes.append(scene)
        if "scale" in wanted:
            ensure_scene(python, scale, args.rebuild, bl.SCALE_FACTOR)
    shots = [f for f in files if f.name == "shot.blend"]
    bat123 = ["--bat-python", args.bat_python] if args.bat_python else []
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in ONLY}
    for name, script, inputs, extra in (
        ("open", "bench_open.py", files, []),
        ("trace", "bench_trace.py", files, bat123),
        ("startup", "bench_startup.py", [], ["--runs", str(args.startup_runs)]),
        # Before the packs: they write (and then delete) gigabytes, whose writeback slows
        # what comes next, and the decompressed 4x file goes through the page cache.
        ("scale", "bench_scale.py", scenes, []),
        ("pack", "bench_pack.py", shots, bat123),
        ("s3", "bench_s3.py", shots, []),  # prints its own table (a local SeaweedFS: the test extra)
        ("shaman", "bench_shaman.py", shots, []),
    ):
        if name in wanted:
            print(flush=True)
            results[name] = run_bench(script, inputs, args.runs, extra)
    print()
    if results["open"] or results["trace"]:
        print(summary(results["open"], results["trace"]))
    if results["pack"]:
        print(pack_summary(results["pack"]))
    if results["shaman"]:
        print(shaman_summary(results["shaman"]))
    if any(results[k] for k in ("trace", "startup", "pack", "scale")):
        print()
        for scene in scenes:
            print(f"scene {bl.label(scene)}: {scene_line(scene)}")
            scaled = bl.scaled_scene_dir(scene)
            if results["scale"] and (scaled / "scene.json").is_file():
                print(f"scene {bl.label(scaled)}: {scene_line(scaled)}")
        print(issue13_summary(results["trace"], results["startup"], results["pack"], results["scale"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
