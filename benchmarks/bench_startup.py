"""Time ``bat``'s start-up against a bare Python start-up, as subprocesses.

    python benchmarks/bench_startup.py [--runs 20] [--json out.json]

Per round, one after another: ``python -c pass`` (the baseline: the same
interpreter, the same ``site``), ``bat version``, ``bat --help`` and, for
reference, ``python -m bat_core version`` and ``python -c "import bat_core.cli"``.
``bat`` is the console script next to this interpreter (``python -m bat_core``
when there is none).  Medians of ``--runs`` rounds after two warm-up rounds;
wall time (what a user waits) and the child's CPU time (user + system, less
sensitive to a busy machine).

Target: ``bat version`` and ``bat --help`` each <= 3x ``python -c pass``.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import benchlib as bl

TARGET_OVER_PYTHON = 3.0


def bat_command() -> list[str]:
    script = Path(os.path.normpath(os.path.abspath(sys.executable))).with_name("bat")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "bat_core"]


def commands() -> dict[str, list[str]]:
    bat = bat_command()
    return {
        "python -c pass": [sys.executable, "-c", "pass"],
        "bat version": [*bat, "version"],
        "bat --help": [*bat, "--help"],
        "python -m bat_core version": [sys.executable, "-m", "bat_core", "version"],
        "python -c 'import bat_core.cli'": [sys.executable, "-c", "import bat_core.cli"],
    }


def run_once(cmd: list[str]) -> tuple[float, float]:
    """(wall seconds, child CPU seconds) of one run of ``cmd``, its output discarded."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        raise SystemExit(f"{' '.join(cmd)}: exit status {done.returncode}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def bench(runs: int) -> dict[str, Any]:
    cmds = commands()
    wall: dict[str, list[float]] = {k: [] for k in cmds}
    cpu: dict[str, list[float]] = {k: [] for k in cmds}
    for i in range(runs + 2):
        for name, cmd in cmds.items():
            t_wall, t_cpu = run_once(cmd)
            if i >= 2:  # two warm-up rounds
                wall[name].append(t_wall)
                cpu[name].append(t_cpu)
    med = {k: bl.median(v) for k, v in wall.items()}
    med_cpu = {k: bl.median(v) for k, v in cpu.items()}
    base, base_cpu = med["python -c pass"], med_cpu["python -c pass"]
    return {
        "runs": runs, "bat": " ".join(bat_command()), "python": sys.executable,
        "commands": {name: {"wall_s": med[name], "cpu_s": med_cpu[name], "over_python": med[name] / base,
                            "cpu_over_python": med_cpu[name] / base_cpu if base_cpu else float("nan")}
                     for name in cmds},
        "version_over_python": med["bat version"] / base,
        "help_over_python": med["bat --help"] / base,
        "all_s": wall, "all_cpu_s": cpu,
    }


def report(r: dict[str, Any]) -> str:
    rows = []
    for name, c in r["commands"].items():
        target = ""
        if name in ("bat version", "bat --help"):
            ok = c["over_python"] <= TARGET_OVER_PYTHON
            target = f"<= {TARGET_OVER_PYTHON:g}x {'ok' if ok else 'MISSED'}"
        rows.append([name, bl.fmt_s(c["wall_s"]), f"{c['over_python']:.2f}x", target,
                     bl.fmt_s(c["cpu_s"]), f"{c['cpu_over_python']:.2f}x"])
    head = [f"start-up (median of {r['runs']} runs)", "wall", "/ python -c pass", "target", "CPU", "CPU / python"]
    return bl.table(rows, head) + f"\nbat = {r['bat']}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("files", nargs="*", help="ignored (run.py passes the scene files to every script)")
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args(argv)
    bl.compile_bat()
    r = bench(args.runs)
    print(report(r))
    bl.write_json(args.json, [r])
    return 0


if __name__ == "__main__":
    sys.exit(main())
