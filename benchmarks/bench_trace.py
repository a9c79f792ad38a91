"""Time ``bat list`` (``bat_core.trace.trace``) against BAT 1.23 on the same files.

    /opt/batdev/bin/python benchmarks/bench_trace.py [FILE ...] [--runs 5] [--json out.json]

Without files, every ``benchmarks/work/*/shot.blend`` and ``shot-zstd.blend``.
Per file, in one run of this script and interleaved: the baseline (read the
file, zstd-decompress it if compressed), ``bat`` (consume every usage and its
``files``) and BAT 1.23 (``trace.deps`` and every usage's ``files()``, then
``blendfile.close_all_cached()`` as its own CLI would).  ``bat`` runs three
ways: with the memos of earlier runs; just after the file was given a new time,
as saving it again does (its own memos void, its libraries' still good: a farm
submitter's case, job after job); and with no memos at all (a first run).
Medians of ``--runs`` runs after one warm-up run.

BAT is imported in-process when ``blender_asset_tracer`` is importable (it is in
bat's ``test`` extras); otherwise it runs under ``--bat-python`` in a subprocess
that times itself the same way (``--bat-worker``).

Targets: BAT / bat >= 10x, bat / baseline <= 3x; bat finds at least BAT's files.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import benchlib as bl

TARGET_SPEEDUP = 10.0
TARGET_OVER_BASELINE = 3.0
DEFAULT_BAT_PYTHON = os.environ.get("BAT_BENCH_BAT123_PYTHON", "/opt/bat123/bin/python")


def forget_parsed_dna() -> None:
    """Drop bat's process-wide cache of parsed DNAs, so each run starts as a new process would."""
    from bat_core.blendfile import file

    cache = getattr(file, "_DNA_CACHE", None)
    if cache is not None:
        cache.clear()


def run_bat(path: Path, memos: bool = True) -> set[str]:
    """Every dependency file ``bat`` finds for ``path``, as a fresh ``bat list`` process would.

    ``memos=False``: as with ``BAT_NO_TRACE_CACHE=1``, every library walked afresh
    (the first ``bat list`` of a scene whose libraries bat has not seen).
    """
    from bat_core.blendfile.memo import NO_MEMO_ENV
    from bat_core.trace import trace

    forget_parsed_dna()
    files: set[str] = set()
    before = os.environ.get(NO_MEMO_ENV)
    os.environ[NO_MEMO_ENV] = "0" if memos else "1"
    try:
        for usage in trace(path):
            files.update(map(str, usage.files))
    finally:
        if before is None:
            del os.environ[NO_MEMO_ENV]
        else:
            os.environ[NO_MEMO_ENV] = before
    return files


def just_saved(path: Path) -> None:
    """Give ``path`` a new modification time, as saving it again in Blender would: its memos
    no longer hold (they are tied to the file's size and times), its libraries' still do."""
    os.utime(path)


def run_bat123(path: Path) -> set[str]:
    """Every dependency file BAT 1.23 finds for ``path``."""
    from blender_asset_tracer import blendfile, trace

    files: set[str] = set()
    try:
        for usage in trace.deps(path):
            files.update(map(str, usage.files()))
    finally:
        blendfile.close_all_cached()
    return files


def have_bat123() -> bool:
    try:
        import blender_asset_tracer  # noqa: F401
    except ImportError:
        return False
    return True


def bat123_worker(path: Path, runs: int) -> None:
    """In BAT's interpreter: time ``runs + 1`` traces, print JSON (times, files)."""
    logging.disable(logging.WARNING)
    times = []
    files: set[str] = set()
    for _ in range(runs + 1):
        t, files = bl.timed(lambda: run_bat123(path))
        times.append(t)
    print(json.dumps({"times": times[1:], "files": sorted(files)}))


def bat123_subprocess(python: str, path: Path, runs: int) -> tuple[list[float], set[str]]:
    out = subprocess.run([python, __file__, "--bat-worker", str(path), "--runs", str(runs)],
                         check=True, capture_output=True, text=True).stdout
    data = json.loads(out.strip().splitlines()[-1])
    return data["times"], set(data["files"])


def normalise(files: set[str]) -> set[str]:
    return {os.path.realpath(f) for f in files}


def bench_file(path: Path, runs: int, bat_python: str | None) -> dict[str, Any]:
    times: dict[str, list[float]] = {"baseline": [], "bat": [], "bat_no_memos": [], "bat_saved": [],
                                     "bat123": []}
    found_bat: set[str] = set()
    found_123: set[str] = set()
    for i in range(runs + 1):
        t_base, data = bl.timed(lambda: bl.read_and_decompress(path))
        del data
        t_bat, found_bat = bl.timed(lambda: run_bat(path))
        t_cold, found_cold = bl.timed(lambda: run_bat(path, memos=False))
        if found_cold != found_bat:
            raise SystemExit(f"{path}: bat finds other files without memos")
        just_saved(path)
        t_saved, found_saved = bl.timed(lambda: run_bat(path))
        if found_saved != found_bat:
            raise SystemExit(f"{path}: bat finds other files once the file is saved again")
        if bat_python is None:
            t_123, found_123 = bl.timed(lambda: run_bat123(path))
        if i:  # the first run warms caches up (and writes the memos)
            times["baseline"].append(t_base)
            times["bat"].append(t_bat)
            times["bat_no_memos"].append(t_cold)
            times["bat_saved"].append(t_saved)
            if bat_python is None:
                times["bat123"].append(t_123)
    if bat_python is not None:
        times["bat123"], found_123 = bat123_subprocess(bat_python, path, runs)
    med = {k: bl.median(v) for k, v in times.items()}
    found_bat, found_123 = normalise(found_bat), normalise(found_123)
    return {
        "file": bl.label(path), "zstd": bl.is_zstd(path), "runs": runs,
        "bat123_where": "in-process" if bat_python is None else bat_python,
        "baseline_s": med["baseline"], "bat_s": med["bat"], "bat123_s": med["bat123"],
        "bat_no_memos_s": med["bat_no_memos"], "speedup_no_memos": med["bat123"] / med["bat_no_memos"],
        "bat_saved_s": med["bat_saved"], "speedup_saved": med["bat123"] / med["bat_saved"],
        "speedup": med["bat123"] / med["bat"], "bat_over_baseline": med["bat"] / med["baseline"],
        "files_bat": len(found_bat), "files_bat123": len(found_123),
        "only_bat123": sorted(found_123 - found_bat), "only_bat": sorted(found_bat - found_123),
        "expected_files": expected_files(path),
        "all_s": times,
    }


def expected_files(path: Path) -> int | None:
    """How many dependency files ``make_scene.py`` wrote for this scene, if known."""
    scene = path.parent / "scene.json"
    if not scene.is_file():
        return None
    return len(json.loads(scene.read_text())["dependency_files"])


def report(results: list[dict[str, Any]], runs: int) -> str:
    rows = []
    for r in results:
        ok_speed = "ok" if r["speedup"] >= TARGET_SPEEDUP else "MISSED"
        ok_base = "ok" if r["bat_over_baseline"] <= TARGET_OVER_BASELINE else "MISSED"
        ok_files = "ok" if not r["only_bat123"] else f"MISSED ({len(r['only_bat123'])} only in BAT)"
        rows.append([
            r["file"], bl.fmt_s(r["baseline_s"]), bl.fmt_s(r["bat_s"]), bl.fmt_s(r["bat_saved_s"]),
            bl.fmt_s(r["bat_no_memos_s"]), bl.fmt_s(r["bat123_s"]), f"{r['speedup']:.1f}x {ok_speed}",
            f"{r['speedup_saved']:.1f}x", f"{r['speedup_no_memos']:.1f}x",
            f"{r['bat_over_baseline']:.1f}x {ok_base}",
            f"{r['files_bat']} / {r['files_bat123']} / {r['expected_files'] or '?'} {ok_files}",
        ])
    head = [f"trace (median of {runs} runs)", "baseline", "bat", "bat, just saved", "bat, no memos", "BAT 1.23",
            f"BAT/bat (>={TARGET_SPEEDUP:g}x)", "BAT/bat, just saved", "BAT/bat, no memos",
            f"bat/baseline (<={TARGET_OVER_BASELINE:g}x)", "files bat / BAT / on disk"]
    notes = ["baseline = read the file (+ zstd decompress when compressed)",
             "bat = libraries' walks answered by memos (as every run after the first on unchanged "
             "libraries); just saved = the file given a new time first, as saving it again does "
             "(its own memos void, its libraries' kept: what a farm submitter sees job after job); "
             "no memos = BAT_NO_TRACE_CACHE=1, every library walked (a first run)"]
    for r in results:
        if r["only_bat"]:
            notes.append(f"{r['file']}: {len(r['only_bat'])} files found by bat only, "
                         f"e.g. {r['only_bat'][0]}")
        if r["only_bat123"]:
            notes.append(f"{r['file']}: {len(r['only_bat123'])} files found by BAT only, "
                         f"e.g. {r['only_bat123'][0]}")
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
    logging.disable(logging.WARNING)
    bat_python = args.bat_python
    if bat_python is None and not have_bat123():
        bat_python = DEFAULT_BAT_PYTHON
        print(f"blender_asset_tracer is not importable here; running BAT 1.23 with {bat_python}",
              file=sys.stderr)
    results = []
    for path in bl.resolve_files(args.files):
        r = bench_file(path, args.runs, bat_python)
        results.append(r)
        print(f"{r['file']}: bat {r['bat_s']:.3f} s, BAT {r['bat123_s']:.3f} s", file=sys.stderr)
    print(report(results, args.runs))
    bl.write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
