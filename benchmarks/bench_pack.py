"""Time ``bat pack`` to a directory against BAT 1.23's pack and ``cp -r`` of the same bytes.

    /opt/batdev/bin/python benchmarks/bench_pack.py [FILE ...] [--runs 5] [--json out.json]

Without files, every ``benchmarks/work/*/shot.blend``.  Each file is packed
with its scene directory as the project.  Per run, each into a new directory
under ``work/pack-tmp/`` (same file system as the scene; nothing is deleted
until the timings are done, see :func:`fresh`):

* ``bat``: ``bat_core.pack.pack`` (trace, rewrite the blend files, copy);
* ``BAT 1.23``: its ``Packer`` (``strategise`` + ``execute``), in-process when
  ``blender_asset_tracer`` is importable, else in ``--bat-python``;
* ``cp -r``: a pack bat made before the timings, copied with ``cp -r`` (the
  same files and bytes that bat writes); it runs before ``bat`` in every other
  run, after it in the rest;
* ``re-pack``: ``bat_core.pack.pack`` into a directory that already holds the
  pack, which must transfer nothing;
* ``bat list``: ``bat_core.trace.trace`` on the same file, the yardstick of a re-pack;
* the same two as commands, each in its own process: ``bat pack`` into the
  unchanged pack and ``bat list --json`` (what a user or a farm submitter runs).

Targets: BAT / bat >= 3x; bat / cp <= 1.3x; bat / (bat list + cp -r) <= 1.1x
(a pack should cost little more than finding the files plus copying them);
re-pack transfers nothing and re-pack / bat list <= 1x.  Medians of ``--runs``
runs after one warm-up run; ratios of medians.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
from functools import partial
from pathlib import Path
from typing import Any

import benchlib as bl
from bench_trace import forget_parsed_dna, have_bat123

TARGET_SPEEDUP = 3.0
TARGET_OVER_CP = 1.3
TARGET_OVER_LIST_CP = 1.1
TARGET_REPACK_OVER_LIST = 1.0
DEFAULT_BAT_PYTHON = os.environ.get("BAT_BENCH_BAT123_PYTHON", "/opt/bat123/bin/python")
SCRATCH = bl.WORK / "pack-tmp"


def fresh(name: str) -> Path:
    """A new directory name under the scratch directory: nothing is deleted here.

    When ext4 makes a file it looks past every inode freed in the last minute
    (five, while the inode table is not yet written back), and that search
    lands on whichever command runs next after a deletion; so every run packs
    and copies into its own new directory, and the scratch directory is
    removed only after the timings.
    """
    SCRATCH.mkdir(parents=True, exist_ok=True)
    for n in range(1, 10_000):
        path = SCRATCH / f"{name}-{n}"
        if not path.exists():
            return path
    raise SystemExit(f"{SCRATCH} is full of old runs: remove it")


def tree_size(root: Path) -> tuple[int, int]:
    """(files, bytes) under ``root``."""
    files = size = 0
    for dirpath, _, names in os.walk(root):
        for name in names:
            files += 1
            size += os.path.getsize(os.path.join(dirpath, name))
    return files, size


def run_bat_pack(path: Path, target: Path) -> dict[str, int]:
    from bat_core.pack import pack

    forget_parsed_dna()
    result = pack(path, str(target), project=path.parent)
    if result.error or result.aborted or result.missing:
        raise SystemExit(f"bat pack of {path} did not complete: {result.error or result.abort_reason} "
                         f"({len(result.missing)} missing)")
    return {action: result.count(action) for action in ("copied", "rewritten", "skipped")}


def run_bat_list(path: Path) -> int:
    from bat_core.trace import trace

    forget_parsed_dna()
    return sum(len(u.files) for u in trace(path))


def run_bat123_pack(path: Path, target: Path) -> None:
    from blender_asset_tracer import blendfile
    from blender_asset_tracer.pack import Packer

    try:
        with Packer(path, path.parent, str(target)) as packer:
            packer.strategise()
            packer.execute()
    finally:
        blendfile.close_all_cached()


def bat123_worker(path: Path, runs: int) -> None:
    """In BAT's interpreter: time ``runs + 1`` packs into fresh directories, print JSON."""
    logging.disable(logging.WARNING)
    times = []
    for _ in range(runs + 1):
        target = fresh("bat123")
        t, _ = bl.timed(partial(run_bat123_pack, path, target))
        times.append(t)
    print(json.dumps({"times": times[1:], "tree": tree_size(target)}))


def bat123_subprocess(python: str, path: Path, runs: int) -> tuple[list[float], tuple[int, int]]:
    out = subprocess.run([python, __file__, "--bat-worker", str(path), "--runs", str(runs)],
                         check=True, capture_output=True, text=True).stdout
    data = json.loads(out.strip().splitlines()[-1])
    return data["times"], tuple(data["tree"])  # type: ignore[return-value]


def cp_r(source: Path, target: Path) -> None:
    subprocess.run(["cp", "-r", str(source), str(target)], check=True)


def run_cli(*args: str) -> None:
    """``bat ARGS`` as a user runs it: its own process, output thrown away."""
    subprocess.run([sys.executable, "-m", "bat_core", *args], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def bench_file(path: Path, runs: int, bat_python: str | None) -> dict[str, Any]:
    times: dict[str, list[float]] = {k: [] for k in ("bat", "bat123", "cp", "repack", "list",
                                                     "repack_cli", "list_cli")}
    repack_actions: dict[str, int] = {}
    tree_123 = (0, 0)
    shutil.rmtree(SCRATCH, ignore_errors=True)
    source = fresh("source")  # what cp -r copies: bat's pack, made before the timings
    run_bat_pack(path, source)
    for i in range(runs + 1):
        packed, copy = fresh("bat"), fresh("cp")
        if i % 2:  # the order alternates: neither always runs on the other's warm caches
            t_cp, _ = bl.timed(partial(cp_r, source, copy))
            t_bat, actions = bl.timed(partial(run_bat_pack, path, packed))
        else:
            t_bat, actions = bl.timed(partial(run_bat_pack, path, packed))
            t_cp, _ = bl.timed(partial(cp_r, source, copy))
        t_repack, repack_actions = bl.timed(partial(run_bat_pack, path, packed))
        t_list, _ = bl.timed(lambda: run_bat_list(path))
        t_repack_cli, _ = bl.timed(partial(run_cli, "pack", "--progress", "none", str(path), str(packed)))
        t_list_cli, _ = bl.timed(partial(run_cli, "list", "--json", str(path)))
        if bat_python is None:
            target = fresh("bat123")
            t_123, _ = bl.timed(partial(run_bat123_pack, path, target))
            tree_123 = tree_size(target)
        if i:  # the first run warms caches up
            times["bat"].append(t_bat)
            times["cp"].append(t_cp)
            times["repack"].append(t_repack)
            times["list"].append(t_list)
            times["repack_cli"].append(t_repack_cli)
            times["list_cli"].append(t_list_cli)
            if bat_python is None:
                times["bat123"].append(t_123)
    tree_bat = tree_size(packed)
    if bat_python is not None:
        times["bat123"], tree_123 = bat123_subprocess(bat_python, path, runs)
    shutil.rmtree(SCRATCH, ignore_errors=True)
    med = {k: bl.median(v) for k, v in times.items()}
    return {
        "file": bl.label(path), "runs": runs,
        "bat123_where": "in-process" if bat_python is None else bat_python,
        "files_bat": tree_bat[0], "bytes_bat": tree_bat[1],
        "files_bat123": tree_123[0], "bytes_bat123": tree_123[1],
        "first_pack": actions, "repack": repack_actions,
        **{f"{k}_s": v for k, v in med.items()},
        "speedup": med["bat123"] / med["bat"], "bat_over_cp": med["bat"] / med["cp"],
        "bat_over_list_cp": med["bat"] / (med["list"] + med["cp"]),
        "repack_over_list": med["repack"] / med["list"],
        "repack_over_list_cli": med["repack_cli"] / med["list_cli"],
        "all_s": times,
    }


def report(results: list[dict[str, Any]], runs: int) -> str:
    rows = []
    for r in results:
        def verdict(ok: bool) -> str:
            return "ok" if ok else "MISSED"

        moved = r["repack"].get("copied", 0) + r["repack"].get("rewritten", 0)
        rows.append([
            r["file"], f"{r['files_bat']} / {r['bytes_bat'] / 1e6:.1f} MB",
            bl.fmt_s(r["bat_s"]), bl.fmt_s(r["bat123_s"]), bl.fmt_s(r["cp_s"]),
            f"{r['speedup']:.1f}x {verdict(r['speedup'] >= TARGET_SPEEDUP)}",
            f"{r['bat_over_cp']:.2f}x {verdict(r['bat_over_cp'] <= TARGET_OVER_CP)}",
            f"{r['bat_over_list_cp']:.2f}x {verdict(r['bat_over_list_cp'] <= TARGET_OVER_LIST_CP)}",
            f"{bl.fmt_s(r['repack_s']).strip()} / {bl.fmt_s(r['list_s']).strip()} = "
            f"{r['repack_over_list']:.2f}x {verdict(r['repack_over_list'] <= TARGET_REPACK_OVER_LIST)}",
            f"{bl.fmt_s(r['repack_cli_s']).strip()} / {bl.fmt_s(r['list_cli_s']).strip()} = "
            f"{r['repack_over_list_cli']:.2f}x {verdict(r['repack_over_list_cli'] <= TARGET_REPACK_OVER_LIST)}",
            f"{moved} {verdict(moved == 0)}",
        ])
    head = [f"pack (median of {runs} runs)", "packed files / bytes", "bat pack", "BAT 1.23", "cp -r",
            f"BAT/bat (>={TARGET_SPEEDUP:g}x)", f"bat/cp (<={TARGET_OVER_CP:g}x)",
            f"bat/(list+cp) (<={TARGET_OVER_LIST_CP:g}x)",
            "re-pack / bat list (<=1x)", "bat pack / bat list --json, commands (<=1x)", "re-pack transfers (0)"]
    notes = [f"{r['file']}: BAT 1.23 packed {r['files_bat123']} files, {r['bytes_bat123'] / 1e6:.1f} MB"
             for r in results]
    return bl.table(rows, head) + "\n" + "\n".join(notes)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("files", nargs="*")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--json", type=Path, help="also write the results here")
    p.add_argument("--bat-python", default=None,
                   help="run BAT 1.23 with this interpreter even if it is importable here "
                        f"(default when it is not: {DEFAULT_BAT_PYTHON})")
    p.add_argument("--bat-worker", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.bat_worker:
        bat123_worker(args.bat_worker, args.runs)
        return 0
    bl.compile_bat()
    logging.disable(logging.WARNING)
    bat_python = args.bat_python
    if bat_python is None and not have_bat123():
        bat_python = DEFAULT_BAT_PYTHON
        print(f"blender_asset_tracer is not importable here; running BAT 1.23 with {bat_python}",
              file=sys.stderr)
    files = [Path(a).resolve() for a in args.files] or [
        f for f in bl.default_files() if f.name == "shot.blend"]
    if not files:
        raise SystemExit(f"no benchmark scene in {bl.WORK}: run benchmarks/run.py or make_scene.py first")
    results = []
    for path in files:
        r = bench_file(path, args.runs, bat_python)
        results.append(r)
        print(f"{r['file']}: bat {r['bat_s']:.3f} s, BAT {r['bat123_s']:.3f} s, cp {r['cp_s']:.3f} s",
              file=sys.stderr)
    print(report(results, args.runs))
    bl.write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
