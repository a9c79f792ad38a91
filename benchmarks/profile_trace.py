"""Where does ``bat``'s trace spend its time?  Phase timings, then a cProfile listing.

    /opt/batdev/bin/python benchmarks/profile_trace.py [FILE] [--top 25] [--sort tottime] [--no-memos]

Without a file, the first ``benchmarks/work/*/shot.blend``.  The phase timings
come from a plain (unprofiled) run with a few functions wrapped in timers:
opening files (of which: decompressing, indexing blocks, parsing DNA) and the
rest of the trace (readers, expanders, resolving paths on disk).
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import io
import logging
import os
import pstats
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import benchlib as bl
from bench_trace import run_bat

OPEN = "open_blend (all files)"
LOAD = "  read / decompress / mmap"
INDEX = "  block index"
PARSE = "  DNA parse"
TRACING = "tracing (readers, expanders, disk)"


@contextmanager
def phase_timers() -> Iterator[dict[str, float]]:
    """Wrap the blend-file loading steps in timers for the duration of the block."""
    from bat_core.blendfile import compression, dna, file

    spent: dict[str, float] = defaultdict(float)
    patched: list[tuple[Any, str, Any]] = []

    def wrap(owner: Any, name: str, key: str) -> None:
        orig = getattr(owner, name)

        @functools.wraps(orig)
        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return orig(*args, **kwargs)
            finally:
                spent[key] += time.perf_counter() - t0

        patched.append((owner, name, orig))
        setattr(owner, name, timed)

    wrap(file.BlendFile, "__init__", OPEN)
    wrap(compression, "load", LOAD)
    wrap(file.BlendFile, "_index_blocks", INDEX)
    wrap(dna.DNA, "__init__", PARSE)
    try:
        yield spent
    finally:
        for owner, name, orig in reversed(patched):
            setattr(owner, name, orig)


def phases(path: Path, memos: bool = True) -> str:
    run_bat(path, memos)  # warm-up
    with phase_timers() as spent:
        total, files = bl.timed(lambda: run_bat(path, memos))
    opened = spent[OPEN]
    lines = [f"{bl.label(path)}: {len(files)} files, trace {total * 1000:.1f} ms"]
    spent[TRACING] = total - opened
    for key in (OPEN, LOAD, INDEX, PARSE, TRACING):
        lines.append(f"  {key:<36} {spent[key] * 1000:8.1f} ms  {spent[key] / total:6.1%}")
    return "\n".join(lines)


def per_file(path: Path) -> str:
    """Time spent opening and walking each blend file, in trace order."""
    from bench_trace import forget_parsed_dna

    from bat_core.blendfile import file
    from bat_core.progress import TraceCallback
    from bat_core.trace import trace

    events: list[tuple[float, str, Path]] = []  # (time, "open" | "opened" | "walk", file)

    class Clock(TraceCallback):
        def trace_blendfile(self, path: Path) -> None:
            events.append((time.perf_counter(), "walk", path))

    orig = file.BlendFile.__init__

    def timed_init(self: Any, p: Any, *args: Any, **kwargs: Any) -> None:
        events.append((time.perf_counter(), "open", Path(p)))
        orig(self, p, *args, **kwargs)
        events.append((time.perf_counter(), "opened", Path(p)))

    forget_parsed_dna()
    file.BlendFile.__init__ = timed_init  # type: ignore[method-assign]
    try:
        t0 = time.perf_counter()
        for _ in trace(path, callback=Clock()):
            pass
        t_end = time.perf_counter()
    finally:
        file.BlendFile.__init__ = orig  # type: ignore[method-assign]
    opens: dict[Path, float] = {}
    walks: dict[Path, float] = {}
    started = 0.0
    for i, (t, kind, p) in enumerate(events):
        if kind == "open":
            started = t
        elif kind == "opened":
            opens[p] = opens.get(p, 0.0) + t - started
        else:
            nxt = next((e[0] for e in events[i + 1:] if e[1] == "open"), t_end)
            walks[p] = walks.get(p, 0.0) + nxt - t
    lines = [f"per blend file (total {1000 * (t_end - t0):.1f} ms): open + walk"]
    for p in walks:
        name = p.name if p.name != path.name else f"{p.name} (main)"
        lines.append(f"  {name:<24} {1000 * opens.get(p, 0.0):7.1f} ms + {1000 * walks[p]:7.1f} ms")
    return "\n".join(lines)


def profile(fn: Callable[[], Any], sort: str, top: int) -> str:
    prof = cProfile.Profile()
    prof.runcall(fn)
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out)
    stats.strip_dirs().sort_stats(sort).print_stats(top)
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("file", nargs="?")
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--sort", default="tottime", help="pstats sort key (tottime, cumulative, ...)")
    p.add_argument("--no-memos", dest="memos", action="store_false",
                   help="profile a first run: no memos read or written (BAT_NO_TRACE_CACHE=1)")
    args = p.parse_args(argv)
    if not args.memos:
        os.environ["BAT_NO_TRACE_CACHE"] = "1"  # for per_file's trace too
    logging.disable(logging.WARNING)
    path = bl.resolve_files([args.file] if args.file else [])[0]
    print(phases(path, args.memos))
    print()
    print(per_file(path))
    print()
    print(profile(lambda: run_bat(path, args.memos), args.sort, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
