"""Time ``bat_core.blendfile.open_blend`` (read + decompress + block index + DNA) on big files.

    /opt/batdev/bin/python benchmarks/bench_open.py [FILE ...] [--runs 7] [--json out.json]

Without files, every ``benchmarks/work/*/shot.blend`` and ``shot-zstd.blend``.
Baselines measured in the same run: ``Path.read_bytes()`` and, for a zstd file,
reading plus decompressing it with ``zstandard``.  Each figure is the median of
``--runs`` runs after one warm-up run (the OS file cache is warm for all).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

import benchlib as bl
from bench_trace import forget_parsed_dna


def bench_file(path: Path, runs: int) -> dict[str, Any]:
    """Median seconds of the baselines and of ``open_blend`` on one file."""
    from bat_core.blendfile import open_blend

    def open_close() -> tuple[int, int]:
        """Open (header scan, address index, DNA), as ``bat list`` does; no Block objects."""
        forget_parsed_dna()
        bf = open_blend(path)
        try:
            return bf.block_count, len(bf.dna.structs)
        finally:
            bf.close()

    def count_blocks() -> int:
        with open_blend(path) as bf:
            return bf.block_count

    zstd = bl.is_zstd(path)
    times: dict[str, list[float]] = {"read": [], "decompress": [], "open": []}
    counts = (0, 0)
    for i in range(runs + 1):
        t_read, _ = bl.timed(lambda: bl.read_file(path))
        t_dec, data = bl.timed(lambda: bl.read_and_decompress(path)) if zstd else (t_read, None)
        size = len(data) if data is not None else path.stat().st_size
        del data
        t_open, counts = bl.timed(open_close)
        if i:  # the first run warms caches up
            times["read"].append(t_read)
            times["decompress"].append(t_dec)
            times["open"].append(t_open)
    med = {k: bl.median(v) for k, v in times.items()}
    baseline = med["decompress"] if zstd else med["read"]
    return {
        "file": bl.label(path), "zstd": zstd, "file_size": path.stat().st_size, "data_size": size,
        "blocks": count_blocks(), "structs": counts[1], "runs": runs,
        "read_s": med["read"], "baseline_s": baseline, "open_s": med["open"],
        "open_over_baseline": med["open"] / baseline, "open_over_read": med["open"] / med["read"],
        "all_s": times,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("files", nargs="*")
    p.add_argument("--runs", type=int, default=7)
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args(argv)
    logging.disable(logging.WARNING)
    results = []
    for path in bl.resolve_files(args.files):
        r = bench_file(path, args.runs)
        results.append(r)
        print(f"{r['file']}: {r['data_size'] / 1e6:.1f} MB, {r['blocks']} blocks", file=sys.stderr)
    rows = [[
        r["file"], f"{r['data_size'] / 1e6:.1f} MB", str(r["blocks"]),
        bl.fmt_s(r["read_s"]), bl.fmt_s(r["baseline_s"]) if r["zstd"] else "-",
        bl.fmt_s(r["open_s"]), f"{r['open_over_baseline']:.1f}x",
    ] for r in results]
    print(f"open_blend (median of {args.runs} runs)")
    print(bl.table(rows, ["file", "size", "blocks", "read_bytes", "read+unzstd", "open_blend",
                          "open/baseline"]))
    print("baseline = read_bytes, or read + zstd decompress for a compressed file")
    bl.write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
