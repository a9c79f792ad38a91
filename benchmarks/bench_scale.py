"""How ``bat list`` scales: a scene 4x the benchmark's, and peak memory against the file's size.

    python benchmarks/bench_scale.py [SCENE_DIR ...] [--runs 5] [--json out.json]

Without arguments, every default-size scene ``work/<version>/`` that has its
4x twin ``work/<version>-x4/`` (``run.py`` builds it: ``make_scene.py`` with
``--objects``, ``--materials``, ``--images`` and ``--libraries`` times four).

* Time: ``bat_core.trace.trace`` (every usage and its files, as in
  ``bench_trace.py``) of ``shot.blend`` and of ``shot-zstd.blend`` of both scenes,
  interleaved; medians of ``--runs`` runs after one warm-up.  Target: 4x scene /
  1x scene <= 4.4x.
* Memory: the peak resident set (``VmHWM``) of a ``bat list`` subprocess on
  ``shot-zstd.blend``, read by the child itself from ``/proc/self/status`` at exit
  (``ru_maxrss`` from ``wait4`` would report the parent's peak when that is
  higher: Linux carries it across ``exec``), over the file's decompressed size.
  Reference: the peak of ``python -c "import bat_core.cli"``.  Target <= 1.3x.
  The decompressed data lives in an unlinked temporary file's page cache, of
  which the child counts only the pages it has mapped (see README.md, "Peak
  memory"): run with ``TMPDIR`` on a disk, not a tmpfs.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import benchlib as bl
from bench_trace import run_bat

TARGET_SCALE = 4.4
TARGET_PEAK_OVER_SIZE = 1.3

#: Run in the child: record VmHWM at exit into argv[1], then run what follows.
_CHILD = """\
import atexit, sys
def _peak(out=sys.argv[1]):
    with open('/proc/self/status') as fh:
        kb = next(line.split()[1] for line in fh if line.startswith('VmHWM:'))
    with open(out, 'w') as fh:
        fh.write(kb)
atexit.register(_peak)
import bat_core.cli
if len(sys.argv) > 2:
    sys.exit(bat_core.cli.main(sys.argv[2:]))
"""


def peak_rss(args: list[str]) -> int:
    """Peak resident bytes of a Python child that imports ``bat_core.cli`` and runs ``bat args``."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "vmhwm"
        done = subprocess.run([sys.executable, "-c", _CHILD, str(out), *args],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False)
        if done.returncode or not out.is_file():
            raise SystemExit(f"bat {' '.join(args)}: exit status {done.returncode}\n{done.stderr}")
        return int(out.read_text()) * 1024


def scene_facts(scene: Path) -> dict[str, Any]:
    record = json.loads((scene / "scene.json").read_text())
    return {"blocks": record.get("shot_blocks"), "libraries": record.get("libraries"),
            "objects": record.get("shot_objects"), "dependency_files": len(record["dependency_files"]),
            "shot_size": record["shot_size"]}


def bench_scene(scene: Path, scaled: Path, runs: int) -> dict[str, Any]:
    files = {(size, name): d / name for size, d in (("1x", scene), ("4x", scaled))
             for name in ("shot.blend", "shot-zstd.blend")}
    times: dict[tuple[str, str], list[float]] = {k: [] for k in files}
    found: dict[tuple[str, str], int] = {}
    for i in range(runs + 1):
        for key, path in files.items():
            t, deps = bl.timed(lambda path=path: run_bat(path))
            found[key] = len(deps)
            if i:  # the first run warms caches up
                times[key].append(t)
    med = {k: bl.median(v) for k, v in times.items()}
    memory = {}
    reference = min(peak_rss([]) for _ in range(3))
    for size, d in (("1x", scene), ("4x", scaled)):
        zstd = d / "shot-zstd.blend"
        data_size = len(bl.read_and_decompress(zstd))
        peak = min(peak_rss(["list", str(zstd)]) for _ in range(3))
        memory[size] = {"file": bl.label(zstd), "file_size": zstd.stat().st_size, "data_size": data_size,
                        "peak": peak, "peak_over_size": peak / data_size,
                        "above_import_over_size": (peak - reference) / data_size}
    return {
        "scene": bl.label(scene), "scaled": bl.label(scaled), "runs": runs,
        "facts": {"1x": scene_facts(scene), "4x": scene_facts(scaled)},
        "list_s": {f"{size}/{name}": v for (size, name), v in med.items()},
        "files_found": {f"{size}/{name}": v for (size, name), v in found.items()},
        "scale_plain": med[("4x", "shot.blend")] / med[("1x", "shot.blend")],
        "scale_zstd": med[("4x", "shot-zstd.blend")] / med[("1x", "shot-zstd.blend")],
        "import_peak": reference, "memory": memory,
        "all_s": {f"{size}/{name}": v for (size, name), v in times.items()},
    }


def report(results: list[dict[str, Any]], runs: int) -> str:
    rows = []
    for r in results:
        f1, f4 = r["facts"]["1x"], r["facts"]["4x"]
        blocks = f"{f4['blocks'] / f1['blocks']:.2f}x" if f1["blocks"] and f4["blocks"] else "?"
        for name, key in (("shot.blend", "scale_plain"), ("shot-zstd.blend", "scale_zstd")):
            ratio = r[key]
            rows.append([
                f"{r['scaled']} vs {r['scene']}: {name}", blocks,
                bl.fmt_s(r["list_s"][f"1x/{name}"]), bl.fmt_s(r["list_s"][f"4x/{name}"]),
                f"{ratio:.2f}x {'ok' if ratio <= TARGET_SCALE else 'MISSED'}",
                f"{r['files_found'][f'1x/{name}']} / {f1['dependency_files']}, "
                f"{r['files_found'][f'4x/{name}']} / {f4['dependency_files']}",
            ])
    out = [bl.table(rows, [f"scale (median of {runs} runs)", "blocks 4x/1x", "bat list 1x", "bat list 4x",
                           f"4x / 1x (<={TARGET_SCALE:g}x)", "files found / on disk: 1x, 4x"])]
    rows = []
    for r in results:
        for m in r["memory"].values():
            ok = m["peak_over_size"] <= TARGET_PEAK_OVER_SIZE
            rows.append([m["file"], f"{m['file_size'] / 1e6:.1f} MB", f"{m['data_size'] / 1e6:.1f} MB",
                         f"{m['peak'] / 1e6:.1f} MB", f"{r['import_peak'] / 1e6:.1f} MB",
                         f"{m['peak_over_size']:.2f}x {'ok' if ok else 'MISSED'}",
                         f"{m['above_import_over_size']:.2f}x"])
    out.append(bl.table(rows, ["peak memory of `bat list` (VmHWM, least of 3)", "file", "decompressed",
                               "bat list peak", "import bat_core.cli peak",
                               f"peak / decompressed (<={TARGET_PEAK_OVER_SIZE:g}x)",
                               "(peak - import) / decompressed"]))
    return "\n".join(out)


def default_scenes() -> list[Path]:
    return [p.parent for p in sorted(bl.WORK.glob("*/scene.json"))
            if not bl.is_scaled_scene(p.parent) and (bl.scaled_scene_dir(p.parent) / "scene.json").is_file()]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("scenes", nargs="*", type=Path,
                   help="default-size scene directories, or their shot files (the 4x twin is <dir>-x4)")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args(argv)
    logging.disable(logging.WARNING)
    scenes = sorted({(s if s.is_dir() else s.parent).resolve() for s in args.scenes}) or default_scenes()
    if not scenes:
        raise SystemExit(f"no scene with a 4x twin in {bl.WORK}: run benchmarks/run.py --only scale first")
    results = []
    for scene in scenes:
        scaled = bl.scaled_scene_dir(scene)
        if not (scaled / "scene.json").is_file():
            raise SystemExit(f"{scaled}: no 4x scene (run.py --only scale builds it)")
        r = bench_scene(scene, scaled, args.runs)
        results.append(r)
        print(f"{r['scaled']}: {r['scale_plain']:.2f}x / {r['scale_zstd']:.2f}x the list time of {r['scene']}",
              file=sys.stderr)
    print(report(results, args.runs))
    bl.write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
