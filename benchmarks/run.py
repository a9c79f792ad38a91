"""Build the benchmark scenes if missing, then run the benchmarks and summarise.

    /opt/batdev/bin/python benchmarks/run.py [--blender-python PY ...] [--runs 5] [--rebuild]

Scenes are built by ``make_scene.py`` under each Blender Python given with
``--blender-python`` (repeatable), else those listed in ``$BAT_BENCH_BLENDER_PYTHON``
(separated by ``os.pathsep``), else ``/opt/bpy42/bin/python`` and
``/opt/bpy50/bin/python`` where they exist.  A scene is rebuilt when it is
missing, was built with other scale options, or with ``--rebuild``.  The
benchmarks run under this interpreter, which must have ``bat`` installed.
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


def ensure_scene(python: str, scale: dict[str, int], rebuild: bool) -> Path:
    """The scene directory for this Blender, built first when needed."""
    version = blender_version(python)
    scene = bl.WORK / version
    record = scene / "scene.json"
    if record.is_file() and not rebuild:
        options = json.loads(record.read_text())["options"]
        if all(options.get(k) == v for k, v in scale.items()):
            print(f"Blender {version}: using {scene}")
            return scene
    print(f"Blender {version}: building the scene in {scene} ...", flush=True)
    bl.WORK.mkdir(parents=True, exist_ok=True)
    log = bl.WORK / f"make_scene-{version}.log"
    cmd = [python, str(bl.HERE / "make_scene.py")]
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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--blender-python", action="append", help="a Python with bpy (repeatable)")
    p.add_argument("--runs", type=int, default=5, help="timed runs per measurement (median)")
    p.add_argument("--rebuild", action="store_true", help="rebuild the scenes even if present")
    p.add_argument("--only", choices=["open", "trace", "pack", "s3", "shaman"], help="run one benchmark only")
    p.add_argument("--bat-python", help="passed on to bench_trace.py")
    for key, default in bl.SCENE_DEFAULTS.items():
        p.add_argument(f"--{key}", type=int, default=default, help=f"scene scale (default {default})")
    args = p.parse_args(argv)
    scale = {k: getattr(args, k) for k in bl.SCENE_DEFAULTS}
    files: list[Path] = []
    for python in blender_pythons(args.blender_python):
        scene = ensure_scene(python, scale, args.rebuild)
        files += [scene / "shot.blend", scene / "shot-zstd.blend"]
    opened: list[dict[str, Any]] = []
    traced: list[dict[str, Any]] = []
    if args.only in (None, "open"):
        print()
        opened = run_bench("bench_open.py", files, args.runs, [])
    if args.only in (None, "trace"):
        print()
        extra = ["--bat-python", args.bat_python] if args.bat_python else []
        traced = run_bench("bench_trace.py", files, args.runs, extra)
    packed: list[dict[str, Any]] = []
    if args.only in (None, "pack"):
        print()
        extra = ["--bat-python", args.bat_python] if args.bat_python else []
        packed = run_bench("bench_pack.py", [f for f in files if f.name == "shot.blend"], args.runs, extra)
    if args.only in (None, "s3"):  # bench_s3.py prints its own table (a local SeaweedFS: the test extra)
        print()
        run_bench("bench_s3.py", [f for f in files if f.name == "shot.blend"], args.runs, [])
    shaman: list[dict[str, Any]] = []
    if args.only in (None, "shaman"):
        print()
        shaman = run_bench("bench_shaman.py", [f for f in files if f.name == "shot.blend"], args.runs, [])
    print()
    if opened or traced:
        print(summary(opened, traced))
    if packed:
        print(pack_summary(packed))
    if shaman:
        print(shaman_summary(shaman))
    return 0


if __name__ == "__main__":
    sys.exit(main())
