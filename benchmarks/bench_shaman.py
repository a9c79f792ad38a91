"""Time ``bat pack`` into a local ``bat shaman serve`` (v2 and v3) against packing to a directory.

    python benchmarks/bench_shaman.py [FILE ...] [--runs 5] [--json out.json]

Without files, every ``benchmarks/work/*/shot.blend``.  Each file is packed
with its scene directory as the project.  Per run, interleaved:

* ``dir``: ``bat_core.pack.pack`` to a fresh directory (the yardstick of a first pack);
* ``list``: ``bat_core.trace.trace`` of the same file (the yardstick of a re-pack);
* for v2 (``shaman+http://``) and v3 (``flamenco+http://``), each against a
  fresh server with an empty store and an empty checksum cache:
  ``first``, a first pack (hash, upload every file, create the checkout), then
  ``re-pack``, the unchanged scene again to a new checkout, which must upload
  zero bytes and read no source file to hash it.

The server (run with ``-v``) logs how long it took to build each checkout;
the report gives that time for the re-pack.  Where ``/dev/shm`` exists, the
same first pack and re-pack also go to a server whose store and checkouts are
on that tmpfs: what the transfer costs without the disk (the server fsyncs
every blob and its directory before answering, and a checkout is a new
directory entry per file; ``bat list`` creates nothing, a directory pack
syncs nothing).

Then once, ``eight``: eight ``bat pack`` processes at once, each with its own
empty checksum cache, pack the scene into one fresh server, against ``one``,
a single such process; every checkout must be complete.

Targets: first / dir <= 1.5x; re-pack / list <= 1.5x.  Medians of ``--runs``
runs after one warm-up run.  The server runs in its own process on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import benchlib as bl
from bench_trace import forget_parsed_dna

TARGET_FIRST_OVER_DIR = 1.5
TARGET_REPACK_OVER_LIST = 1.5
SCRATCH = bl.WORK / "shaman-tmp"
APIS = ("v2", "v3")
CLIENTS = 8


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int
    storage: Path
    checkouts: Path
    log: Path

    def checkout_seconds(self, name: str) -> float:
        """How long the server took to build checkout ``name`` (from its ``-v`` log)."""
        for line in self.log.read_text(errors="replace").splitlines():
            m = re.search(r"checkout (\S+): \d+ files in ([\d.]+) s", line)
            if m and m.group(1).endswith(name):
                return float(m.group(2))
        raise SystemExit(f"no checkout {name} in {self.log}")

    def url(self, api: str, checkout: str) -> str:
        if api == "v2":
            return f"shaman+http://127.0.0.1:{self.port}/#{checkout}"
        return f"flamenco+http://127.0.0.1:{self.port}/{checkout}"

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def start_server(root: Path) -> Server:
    """``bat shaman serve`` on a free port with an empty store and checkouts under ``root``."""
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    log = root / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "bat_core", "-v", "shaman", "serve", "--storage",
                                 str(root / "store"), "--checkouts", str(root / "checkouts"), "--port", "0",
                                 "--jwt-secret", "bench"], stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        m = re.search(r"listening on http://127\.0\.0\.1:(\d+)/", log.read_text(errors="replace"))
        if m:
            return Server(proc, int(m.group(1)), root / "store", root / "checkouts", log)
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    raise SystemExit(f"bat shaman serve did not start:\n{log.read_text()}")


def blobs(server: Server) -> int:
    return sum(1 for _ in (server.storage / "stored").rglob("*.blob"))


def run_dir_pack(path: Path, target: Path) -> None:
    from bat_core.pack import pack

    forget_parsed_dna()
    result = pack(path, str(target), project=path.parent)
    if not result.complete or result.missing:
        raise SystemExit(f"bat pack of {path} to a directory did not complete: {result.error}")


def run_list(path: Path) -> int:
    from bat_core.trace import trace

    forget_parsed_dna()
    return sum(len(u.files) for u in trace(path))


def run_shaman_pack(path: Path, url: str) -> dict[str, Any]:
    from bat_core.pack import pack

    forget_parsed_dna()
    result = pack(path, url, project=path.parent)
    if not result.complete or result.missing:
        raise SystemExit(f"bat pack of {path} to {url} did not complete: {result.error}")
    return {"files": len(result.files), "uploaded": len(result.transferred),
            "uploaded_bytes": result.bytes_transferred, "checksums": result.checksums,
            "checkout": result.target_info.get("checkout_path")}


def fresh_cache() -> None:
    """An empty checksum cache for what follows (a first pack on a new machine)."""
    cache = SCRATCH / "cache"
    shutil.rmtree(cache, ignore_errors=True)
    os.environ["BAT_CACHE_DIR"] = str(cache)


def bench_server(path: Path, api: str, root: Path, i: int, run_times: dict[str, float], key: str,
                 facts: dict[str, Any] | None) -> None:
    """A first pack into a fresh server and an empty checksum cache, then a re-pack."""
    server = start_server(root)
    try:
        fresh_cache()
        t_first, first = bl.timed(partial(run_shaman_pack, path, server.url(api, f"first{i}")))
        stored = blobs(server)
        t_again, again = bl.timed(partial(run_shaman_pack, path, server.url(api, f"again{i}")))
        if again["uploaded_bytes"] or again["checksums"].get("hashed_files") or blobs(server) != stored:
            raise SystemExit(f"{api} re-pack of {path} was not free: {again}")
        run_times[f"{key}_checkout"] = server.checkout_seconds(f"again{i}")
    finally:
        server.stop()
    run_times[f"{key}_first"] = t_first
    run_times[f"{key}_repack"] = t_again
    if facts is not None:
        facts[api] = {"first": first, "repack": again, "blobs": stored}


def bench_apis(path: Path, runs: int, tmpfs: Path | None) -> tuple[dict[str, list[float]], dict[str, Any]]:
    times: dict[str, list[float]] = {}
    facts: dict[str, Any] = {}
    for i in range(runs + 1):
        target = SCRATCH / "dir"
        shutil.rmtree(target, ignore_errors=True)
        t_dir, _ = bl.timed(partial(run_dir_pack, path, target))
        t_list, _ = bl.timed(partial(run_list, path))
        run_times = {"dir": t_dir, "list": t_list}
        for api in APIS:
            bench_server(path, api, SCRATCH / f"server-{api}", i, run_times, api, facts)
            if tmpfs is not None:
                bench_server(path, api, tmpfs / f"server-{api}", i, run_times, f"{api}_tmpfs", None)
        if i:  # the first run warms caches up
            for key, value in run_times.items():
                times.setdefault(key, []).append(value)
    return times, facts


def bench_concurrent(path: Path) -> dict[str, Any]:
    """Wall-clock of eight ``bat pack`` processes at once into one fresh server, vs one alone."""

    def clients(count: int, tag: str) -> float:
        server = start_server(SCRATCH / f"server-{tag}")
        try:
            procs = []
            started = time.perf_counter()
            for n in range(count):
                env = dict(os.environ, BAT_CACHE_DIR=tempfile.mkdtemp(dir=SCRATCH, prefix="cache-"))
                api = APIS[n % len(APIS)]
                procs.append(subprocess.Popen(
                    [sys.executable, "-m", "bat_core", "-q", "pack", "--json", "-p", str(path.parent), str(path),
                     server.url(api, f"{tag}{n}")], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE))
            outputs = [p.communicate() for p in procs]
            took = time.perf_counter() - started
            for proc, (out, err) in zip(procs, outputs, strict=True):
                if proc.returncode:
                    raise SystemExit(f"a concurrent client failed: {err.decode(errors='replace')[-2000:]}")
                report = json.loads(out)
                root = server.checkouts / report["target_info"]["checkout_path"]
                links = sum(1 for p in root.rglob("*") if p.is_symlink())
                if links != len(report["files"]):
                    raise SystemExit(f"checkout {root} has {links} files, not {len(report['files'])}")
            return took
        finally:
            server.stop()

    one = clients(1, "one")
    eight = clients(CLIENTS, "eight")
    return {"one_s": one, "eight_s": eight, "eight_over_one": eight / one}


def bench_file(path: Path, runs: int, tmpfs: Path | None) -> dict[str, Any]:
    times, facts = bench_apis(path, runs, tmpfs)
    med = {k: bl.median(v) for k, v in times.items()}
    out: dict[str, Any] = {"file": bl.label(path), "runs": runs, **{f"{k}_s": v for k, v in med.items()},
                           "facts": facts, "all_s": times}
    for api in APIS:
        out[f"{api}_first_over_dir"] = med[f"{api}_first"] / med["dir"]
        out[f"{api}_repack_over_list"] = med[f"{api}_repack"] / med["list"]
        if tmpfs is not None:
            out[f"{api}_tmpfs_first_over_dir"] = med[f"{api}_tmpfs_first"] / med["dir"]
            out[f"{api}_tmpfs_repack_over_list"] = med[f"{api}_tmpfs_repack"] / med["list"]
    out["concurrent"] = bench_concurrent(path)
    shutil.rmtree(SCRATCH, ignore_errors=True)
    return out


def report(results: list[dict[str, Any]], runs: int) -> str:
    def verdict(ok: bool) -> str:
        return "ok" if ok else "MISSED"

    def ms(seconds: float) -> str:
        return bl.fmt_s(seconds).strip()

    rows = []
    for r in results:
        for api in APIS:
            first, again = r[f"{api}_first_over_dir"], r[f"{api}_repack_over_list"]
            fact = r["facts"][api]
            tmpfs = "n/a"
            if f"{api}_tmpfs_first_s" in r:
                tmpfs = (f"{ms(r[f'{api}_tmpfs_first_s'])} = {r[f'{api}_tmpfs_first_over_dir']:.2f}x; "
                         f"{ms(r[f'{api}_tmpfs_repack_s'])} = {r[f'{api}_tmpfs_repack_over_list']:.2f}x")
            rows.append([
                r["file"], api, f"{fact['first']['uploaded']} / {fact['first']['uploaded_bytes'] / 1e6:.1f} MB",
                f"{ms(r[f'{api}_first_s'])} / {ms(r['dir_s'])} = {first:.2f}x "
                f"{verdict(first <= TARGET_FIRST_OVER_DIR)}",
                f"{ms(r[f'{api}_repack_s'])} / {ms(r['list_s'])} = {again:.2f}x "
                f"{verdict(again <= TARGET_REPACK_OVER_LIST)}",
                f"{fact['repack']['uploaded_bytes']} B, {fact['repack']['checksums']['hashed_files']} hashed",
                ms(r[f"{api}_checkout_s"]), tmpfs,
            ])
    head = [f"shaman (median of {runs} runs)", "api", "first pack uploads",
            f"first pack / dir pack (<={TARGET_FIRST_OVER_DIR:g}x)",
            f"re-pack / bat list (<={TARGET_REPACK_OVER_LIST:g}x)", "re-pack uploads",
            "server: re-pack's checkout", "server on tmpfs: first / dir; re-pack / list"]
    notes = [f"{r['file']}: {CLIENTS} concurrent clients (v2 and v3) {r['concurrent']['eight_s']:.2f} s, "
             f"one client {r['concurrent']['one_s']:.2f} s: {r['concurrent']['eight_over_one']:.2f}x; "
             f"every checkout complete" for r in results]
    return bl.table(rows, head) + "\n" + "\n".join(notes)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("files", nargs="*")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--json", type=Path, help="also write the results here")
    p.add_argument("--no-tmpfs", action="store_true",
                   help="skip the extra packs into a server whose store and checkouts are on /dev/shm")
    args = p.parse_args(argv)
    logging.disable(logging.WARNING)
    for var in ("SHAMAN_JWT_TOKEN", "FLAMENCO_SHAMAN_TOKEN", "BAT_NO_HASH_CACHE"):
        os.environ.pop(var, None)
    files = [Path(a).resolve() for a in args.files] or [f for f in bl.default_files() if f.name == "shot.blend"]
    if not files:
        raise SystemExit(f"no benchmark scene in {bl.WORK}: run benchmarks/run.py or make_scene.py first")
    SCRATCH.mkdir(parents=True, exist_ok=True)
    tmpfs = None
    if Path("/dev/shm").is_dir() and not args.no_tmpfs:
        tmpfs = Path(tempfile.mkdtemp(dir="/dev/shm", prefix="bench-shaman-"))
    results = []
    for path in files:
        try:
            r = bench_file(path, args.runs, tmpfs)
        finally:
            if tmpfs is not None:
                shutil.rmtree(tmpfs, ignore_errors=True)
        results.append(r)
        print(f"{r['file']}: dir {r['dir_s']:.3f} s, list {r['list_s']:.3f} s, "
              + ", ".join(f"{a} first {r[f'{a}_first_s']:.3f} s / re-pack {r[f'{a}_repack_s']:.3f} s"
                          for a in APIS), file=sys.stderr)
    print(report(results, args.runs))
    bl.write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
