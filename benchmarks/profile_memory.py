"""Where the peak memory of ``bat list`` comes from: resident set at points of a run.

    python benchmarks/profile_memory.py [FILE] [--tracemalloc N]

Runs ``bat list FILE`` (default ``work/5.0.1/shot-zstd.blend``) in this process
and prints ``VmHWM``, ``RssAnon`` and ``RssFile`` (``/proc/self/status``) after
the imports, around loading and indexing every blend file, and at the end.
With ``--tracemalloc N``, also the N biggest allocation sites alive at the end
of indexing the first file (tracemalloc slows the run down and adds its own
memory: use the two modes separately).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
_rows: list[tuple[str, dict[str, int], float]] = []
_t0 = time.perf_counter()


def status() -> dict[str, int]:
    out = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            key, _, rest = line.partition(":")
            if key in ("VmHWM", "VmRSS", "RssAnon", "RssFile"):
                out[key] = int(rest.split()[0]) * 1024
    return out


def mark(what: str) -> None:
    _rows.append((what, status(), time.perf_counter() - _t0))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("file", nargs="?", type=Path, default=HERE / "work/5.0.1/shot-zstd.blend")
    p.add_argument("--tracemalloc", type=int, default=0, metavar="N")
    args = p.parse_args(argv)
    if args.tracemalloc:
        tracemalloc.start(3)
    mark("start")
    import bat_core.cli
    from bat_core.blendfile import compression, file
    mark("import bat_core.cli")

    load = compression.load
    index = file.BlendFile._index_blocks
    opened = [0]
    snapshots: list[Any] = []

    def wrapped_load(fh: Any, kind: Any, size: int) -> Any:
        buf = load(fh, kind, size)
        if opened[0] < 3 or opened[0] % 8 == 0:
            mark(f"  file {opened[0]}: loaded ({kind.value}, {len(buf) / 1e6:.1f} MB)")
        return buf

    @functools.wraps(index)
    def wrapped_index(self: Any) -> None:
        index(self)
        if opened[0] < 3 or opened[0] % 8 == 0:
            mark(f"  file {opened[0]}: indexed ({self.path.name})")
        if args.tracemalloc and not snapshots:
            snapshots.append(tracemalloc.take_snapshot())
        opened[0] += 1

    compression.load = wrapped_load  # type: ignore[assignment]
    file.BlendFile._index_blocks = wrapped_index  # type: ignore[method-assign]
    with contextlib.redirect_stdout(io.StringIO()) as out:
        code = bat_core.cli.main(["list", str(args.file)])
    mark(f"bat list done (exit {code}, {len(out.getvalue().splitlines())} lines, {opened[0]} blend files)")
    if args.tracemalloc:
        snapshots.append(tracemalloc.take_snapshot())
    print(f"{'point':60} {'s':>6} {'VmHWM':>8} {'VmRSS':>8} {'RssAnon':>8} {'RssFile':>8}  (MB)")
    for what, st, t in _rows:
        print(f"{what:60} {t:6.2f} " + " ".join(f"{st.get(k, 0) / 1e6:8.1f}"
                                               for k in ("VmHWM", "VmRSS", "RssAnon", "RssFile")))
    for name, snap in zip(("after indexing the first file", "at the end"), snapshots, strict=False):
        print(f"\ntracemalloc, {name}: {sum(s.size for s in snap.statistics('filename')) / 1e6:.1f} MB")
        for stat in snap.statistics("lineno")[: args.tracemalloc]:
            print(f"  {stat.size / 1e6:8.1f} MB {stat.count:9} blocks  {stat.traceback[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
