"""Fuzz bat's blend-file reader, tracer and packer with mutated real blend files.

    python tests/fuzz/fuzz_blend.py --runs 100000            # atheris (coverage-guided)
    python tests/fuzz/fuzz_blend.py --runs 2000 --engine random
    python tests/fuzz/fuzz_blend.py --replay tests/fuzz/corpus   # run the stored failures

Seeds are the Blender-made files in ``tests/fuzz/seeds/`` (see ``make_seeds.py``).
Each input is made from a seed or an earlier input by the structure-aware
mutators of ``mutators.py`` (lying block lengths and counts, bad DNA indexes,
names, types and structs, huge array dimensions, pointer loops, damaged zstd
and gzip streams, truncations, bit flips) or, now and then, by libFuzzer's own
byte mutations; then ``harness.run_input`` opens, summarises, traces and packs
it under a time and memory bound.  Every failing input is stored in
``tests/fuzz/corpus/`` (``tests/test_fuzz_regressions.py`` runs them all) and
listed in the log; fuzzing goes on after a failure.

``atheris`` (``pip install atheris``) gives coverage guidance; without it, or
with ``--engine random``, inputs are mutated blindly from the seeds and from
earlier inputs.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))  # the repository root, for `tests.fuzz`

from tests.fuzz import harness, mutators  # noqa: E402


class Stats:
    def __init__(self, log: Path | None, every: int, stats_file: Path | None = None) -> None:
        self.stats_file = stats_file
        self.counts: collections.Counter[str] = collections.Counter()
        self.kinds: collections.Counter[str] = collections.Counter()
        self.slowest = 0.0
        self.started = time.monotonic()
        self.log = open(log, "a", buffering=1) if log else None  # noqa: SIM115 - open for the run
        self.every = every

    def add(self, data: bytes, outcome: harness.Outcome, corpus: Path, work: Path) -> None:
        self.counts[outcome.status] += 1
        self.slowest = max(self.slowest, outcome.seconds)
        if outcome.seconds > 5:
            self.say(f"SLOW {outcome.seconds:.1f} s, {outcome.status} in {outcome.stage}: "
                     f"{outcome.message.splitlines()[0][:200] if outcome.message else ''}")
        if outcome.failed:
            self.kinds[outcome.kind] += 1
            path = harness.save_failure(data, outcome, work, corpus)
            self.say(f"FAIL {path.name} ({len(data)} bytes, {outcome.seconds:.1f} s): "
                     f"{outcome.message.splitlines()[0][:300]}")
        total = sum(self.counts.values())
        if total % self.every == 0:
            self.report()

    def summary(self) -> dict[str, object]:
        total = sum(self.counts.values())
        secs = time.monotonic() - self.started
        return {"inputs": total, "ok": self.counts["ok"], "bat_error": self.counts["error"],
                "escaped": self.counts["escaped"],
                "failed": self.counts["fail"], "failures_by_kind": dict(self.kinds),
                "seconds": round(secs, 1), "inputs_per_second": round(total / secs, 1) if secs else 0,
                "slowest_input_seconds": round(self.slowest, 2)}

    def report(self) -> None:
        """Progress, also written to the stats file (libFuzzer ends the process by itself)."""
        self.say(json.dumps(self.summary()))
        if self.stats_file:
            self.stats_file.write_text(json.dumps(self.summary(), indent=2) + "\n")

    def say(self, line: str) -> None:
        stamp = time.strftime("%H:%M:%S")
        print(f"[{stamp}] {line}", file=sys.stderr, flush=True)
        if self.log:
            self.log.write(f"[{stamp}] {line}\n")


def _seed_inputs() -> list[bytes]:
    """Each seed as stored and, for compressed ones, decompressed."""
    out = []
    for path in sorted(harness.SEEDS.glob("*.blend")):
        raw = path.read_bytes()
        out.append(raw)
        plain, kind = mutators.decompress(raw)
        if kind != "none":
            out.append(plain)
    return out


def run_random(args: argparse.Namespace, work: Path, stats: Stats) -> None:
    rng = random.Random(args.seed)
    seeds = _seed_inputs()
    pool: collections.deque[bytes] = collections.deque(maxlen=64)  # recent inputs that did not fail
    for _ in range(args.runs):
        base = rng.choice(pool) if pool and rng.random() < 0.3 else rng.choice(seeds)
        data = mutators.mutate(base, rng)[: args.max_len]
        outcome = harness.run_input(data, work, timeout=args.timeout, memory=args.memory_mb << 20)
        stats.add(data, outcome, args.corpus, work)
        if not outcome.failed and outcome.status == "ok":
            pool.append(data)


def run_atheris(args: argparse.Namespace, work: Path, stats: Stats) -> None:
    import atheris

    with atheris.instrument_imports(include=["bat_core", "bat_plugins"]):
        import bat_core.blendfile
        import bat_core.cli.blocks
        import bat_core.pack
        import bat_core.trace  # noqa: F401
        import bat_plugins.directory
        import bat_plugins.readers  # noqa: F401

    corpus_dir = Path(tempfile.mkdtemp(prefix="batfuzz-libfuzzer-", dir=work.parent.parent)) / "corpus"
    corpus_dir.mkdir()
    (corpus_dir.parent / "artifacts").mkdir()
    for i, data in enumerate(_seed_inputs()):
        (corpus_dir / f"seed-{i}").write_bytes(data)

    def one_input(data: bytes) -> None:
        outcome = harness.run_input(data, work, timeout=args.timeout, memory=args.memory_mb << 20)
        stats.add(data, outcome, args.corpus, work)

    def custom_mutator(data: bytes, max_size: int, seed: int) -> bytes:
        rng = random.Random(seed)
        if rng.random() < 0.15:
            return bytes(atheris.Mutate(data, max_size))
        return mutators.mutate(data, rng)[:max_size]

    libfuzzer_args = [sys.argv[0], f"-runs={args.runs}", f"-max_len={args.max_len}", f"-seed={args.seed}",
                      "-timeout=0",  # the harness has its own time bound (libFuzzer's uses SIGALRM too)
                      "-rss_limit_mb=4096", "-print_final_stats=1", "-reload=0",
                      "-report_slow_units=100000", f"-artifact_prefix={corpus_dir.parent / 'artifacts'}/",
                      str(corpus_dir)]
    atheris.Setup(libfuzzer_args, one_input, custom_mutator=custom_mutator)
    atheris.Fuzz()


def replay(paths: list[Path], work: Path, args: argparse.Namespace) -> int:
    failed = 0
    for path in paths:
        files = sorted(path.glob("*.zst")) if path.is_dir() else [path]
        for f in files:
            data = harness.decode(f.read_bytes())
            outcome = harness.run_input(data, work, timeout=args.timeout, memory=args.memory_mb << 20)
            print(f"{f.name}: {outcome.status} in {outcome.stage} ({outcome.seconds:.2f} s) "
                  f"{outcome.message.splitlines()[0][:200] if outcome.message else ''}")
            failed += outcome.failed
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10_000, help="inputs to try (default 10000)")
    parser.add_argument("--engine", choices=["atheris", "random"], help="default: atheris when installed")
    parser.add_argument("--seed", type=int, default=int(time.time()) % 100_000)
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds one input may take")
    parser.add_argument("--memory-mb", type=int, default=1024, help="memory one input may map beyond the start")
    parser.add_argument("--max-len", type=int, default=1 << 20, help="largest input, in bytes")
    parser.add_argument("--corpus", type=Path, default=harness.CORPUS, help="where failing inputs are stored")
    parser.add_argument("--log", type=Path, help="also write progress and failures to this file")
    parser.add_argument("--stats", type=Path, help="write the final figures (JSON) to this file")
    parser.add_argument("--every", type=int, default=1000, help="report progress every N inputs")
    parser.add_argument("--tmp", type=Path, help="where to work (default: the system's temporary directory)")
    parser.add_argument("--replay", type=Path, nargs="+", help="run stored inputs (files or directories) once")
    args = parser.parse_args()

    # Not /dev/shm: bat refuses blend files under /dev (another process's shared memory could
    # be read through a path), so every input would end before the trace.
    root = Path(tempfile.mkdtemp(prefix="batfuzz-", dir=args.tmp))
    tempfile.tempdir = str(root)  # the packer's own temporary files too
    work = harness.make_workdir(root)
    if args.replay:
        return replay(args.replay, work, args)
    engine = args.engine
    if engine is None:
        try:
            import atheris  # noqa: F401
        except ImportError:
            engine = "random"
        else:
            engine = "atheris"
    stats = Stats(args.log, args.every, args.stats)
    seeds = sorted(harness.SEEDS.glob("*.blend"))
    whole = [harness.run_input(seed.read_bytes(), work) for seed in seeds]
    if not any(o.status == "ok" for o in whole):
        # Inputs that all stop at the same error test nothing: say so rather than count them.
        print(f"fuzz_blend: no unchanged seed goes through every stage here ({whole[0].stage}: "
              f"{whole[0].message}); fix that first", file=sys.stderr)
        return 2
    stats.say(f"fuzzing with {engine}, seed {args.seed}, {args.runs} inputs, work directory {root}; "
              f"{sum(o.status == 'ok' for o in whole)} of {len(seeds)} unchanged seeds go through every stage")
    try:
        if engine == "atheris":
            run_atheris(args, work, stats)
        else:
            run_random(args, work, stats)
    except KeyboardInterrupt:
        pass
    finally:
        stats.report()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
