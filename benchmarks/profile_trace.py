"""Where does ``bat``'s trace spend its time?  Phase timings, then a cProfile listing.

    /opt/batdev/bin/python benchmarks/profile_trace.py [FILE] [--top 25] [--sort tottime]

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


def phases(path: Path) -> str:
    run_bat(path)  # warm-up
    with phase_timers() as spent:
        total, files = bl.timed(lambda: run_bat(path))
    opened = spent[OPEN]
    lines = [f"{bl.label(path)}: {len(files)} files, trace {total * 1000:.1f} ms"]
    spent[TRACING] = total - opened
    for key in (OPEN, LOAD, INDEX, PARSE, TRACING):
        lines.append(f"  {key:<36} {spent[key] * 1000:8.1f} ms  {spent[key] / total:6.1%}")
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
    args = p.parse_args(argv)
    logging.disable(logging.WARNING)
    path = bl.resolve_files([args.file] if args.file else [])[0]
    print(phases(path))
    print()
    print(profile(lambda: run_bat(path), args.sort, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
