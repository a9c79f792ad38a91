"""What the fuzzer does with one input, and how failing inputs are stored.

Each input is written as ``input.blend`` into a copy of ``seeds/`` (so its
``//`` paths find the seeds' textures, libraries and bakes), then:

1. opened, and the statistics of ``bat blocks`` computed (every block, every DNA type);
2. traced, with the libraries it links (``bat_core.trace.trace``), leniently and with
   strict pointers;
3. packed into a temporary directory (``bat_core.pack.pack``), compressed or not.

An input *passes* when every step ends in a result or in the project's own error
(:class:`bat_core.errors.BatError`, which includes ``BlendFileError`` and
``PackError``): what the CLI shows as one line.  Anything else is a failure, and
so is an input that takes longer than the time bound or needs more memory than
the bound allows.

Failing inputs are stored in ``corpus/`` compressed with zstd against a
dictionary made of the seed files, so an input that differs from a seed in a few
places takes a few hundred bytes: ``<sha256 prefix>.zst``, the prefix being that
of the input itself (checked when it is read back).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import resource
import shutil
import signal
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import zstandard

HERE = Path(__file__).resolve().parent
SEEDS = HERE / "seeds"
CORPUS = HERE / "corpus"
_CORPUS_MAGIC = b"batfuzz1 "


class InputTimeout(BaseException):
    """Raised by the alarm when an input takes too long (a BaseException, so that no
    ``except Exception`` in the code under test swallows it)."""


class Escaped(BaseException):
    """An input asked for a recursive directory walk outside the fuzzer's own directory
    (see :func:`sandboxed_walks`)."""


@contextlib.contextmanager
def sandboxed_walks(root: Path) -> Iterator[None]:
    """Keep the tracer's recursive directory walks inside ``root`` while it runs.

    A mutated bake directory of ``//../../..`` is the file system's root: walking
    (and packing) all of it is what bat does for such a file, and would take the
    fuzzer hours per input.  Those inputs stop here and count as "escaped"; the
    walks inside ``root`` (the seeds' real bake directories) run as usual.
    """
    from bat_core.trace import sequences

    real_root = root.resolve()
    walk, glob = sequences.expand_directory, sequences.expand_glob

    def check(path: Path) -> None:
        if not Path(os.path.realpath(path)).is_relative_to(real_root):
            raise Escaped(f"a recursive walk of {path}")

    # The wrappers pass on whatever else the tracer gives (the signatures may grow).
    def expand_directory(path: Path, *args: Any, **kwargs: Any) -> Any:
        check(path)
        return walk(path, *args, **kwargs)

    def expand_glob(directory: Path, pattern: str, *args: Any, **kwargs: Any) -> Any:
        if "**" in pattern:
            check(directory)
        return glob(directory, pattern, *args, **kwargs)

    sequences.expand_directory = expand_directory  # type: ignore[assignment]
    sequences.expand_glob = expand_glob  # type: ignore[assignment]
    try:
        yield
    finally:
        sequences.expand_directory, sequences.expand_glob = walk, glob  # type: ignore[assignment]


@dataclass
class Outcome:
    #: "ok" (a result), "error" (a BatError), "escaped" (see :func:`sandboxed_walks`),
    #: or "fail" (anything else).
    status: str
    stage: str = ""
    message: str = ""
    seconds: float = 0.0

    @property
    def failed(self) -> bool:
        return self.status == "fail"

    @property
    def kind(self) -> str:
        """What went wrong, for grouping failures: exception type and stage."""
        return f"{self.message.split(':', 1)[0]} in {self.stage}" if self.failed else self.status


class _LogRecords(logging.Handler):
    """Formats every record (so message formatting is exercised) and remembers a
    formatting error, which logging would otherwise only print."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.errors: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.format(record)

    def handleError(self, record: logging.LogRecord) -> None:
        self.errors.append(traceback.format_exc())


_LOG = _LogRecords()


@contextlib.contextmanager
def quiet_logging() -> Iterator[_LogRecords]:
    """Route all logging into the formatting-only handler while an input runs
    (a fuzz run logs a lot), and put the previous handlers back after."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    root.handlers[:] = [_LOG]
    root.setLevel(logging.DEBUG)
    try:
        yield _LOG
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def make_workdir(root: Path) -> Path:
    """A fresh copy of the seeds directory under ``root``; inputs are written into it."""
    work = root / "work"
    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(SEEDS, work)
    return work


@contextlib.contextmanager
def time_bound(seconds: float) -> Iterator[None]:
    """Raise :class:`InputTimeout` in the main thread after ``seconds``."""

    def alarm(signum: int, frame: FrameType | None) -> None:
        raise InputTimeout(f"took longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _peak_rss() -> int:
    """The process's peak resident size so far, in bytes (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _address_space() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


@contextlib.contextmanager
def memory_bound(extra: int) -> Iterator[None]:
    """Let the process map at most ``extra`` more bytes than it has now (RLIMIT_AS):
    an allocation beyond it fails with MemoryError, which counts as a failure."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = _address_space() + extra
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _touch_usages(usages: list[object]) -> int:
    """Use every field of the usages the way ``bat list`` and the packer do."""
    n = 0
    for u in usages:
        n += len(repr(u)) + len(str(getattr(u, "abspath", ""))) + len(getattr(u, "files", []))
    return n


def run_input(data: bytes, work: Path, *, timeout: float = 30.0, memory: int = 1 << 30) -> Outcome:
    """Run one input through every stage; never raises (but for KeyboardInterrupt)."""
    from bat_core.blendfile import open_blend
    from bat_core.cli.blocks import block_stats
    from bat_core.errors import BatError
    from bat_core.pack import pack
    from bat_core.trace import trace

    blend = work / "input.blend"
    blend.write_bytes(data)
    out = work.parent / "out"
    digest = hashlib.sha256(data).digest()
    compress = digest[0] & 1 == 1  # a compressed pack saves every blend file (the rewrite path)
    stage = "open"
    started = time.monotonic()
    errors_before = len(_LOG.errors)
    peak_before = _peak_rss()
    try:
        with quiet_logging(), sandboxed_walks(work.parent), time_bound(timeout), memory_bound(memory):
            with open_blend(blend) as bf:
                stage = "blocks"
                block_stats(bf)
                bf.id_blocks()
            stage = "trace"
            _touch_usages(list(trace(blend)))
            if digest[1] & 3 == 0:  # strict pointers stop at the first unknown one: now and then
                stage = "trace-strict"
                _touch_usages(list(trace(blend, strict_pointers=True)))
            stage = "pack"
            if out.exists():
                shutil.rmtree(out)
            pack(blend, str(out), compress=compress)
    except BatError as exc:
        outcome = Outcome("error", stage, str(exc))
    except Escaped as exc:
        outcome = Outcome("escaped", stage, str(exc))
    except KeyboardInterrupt:
        raise
    except (Exception, InputTimeout) as exc:  # everything else is what the fuzzer looks for
        outcome = Outcome("fail", stage, f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}")
    else:
        outcome = Outcome("ok", stage)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    if len(_LOG.errors) > errors_before and not outcome.failed:
        outcome = Outcome("fail", "logging", "LoggingError: " + _LOG.errors[-1])
    grown = _peak_rss() - peak_before
    if grown > max(memory // 4, 64 * len(data)) and not outcome.failed:
        # The peak resident size only ever rises: an input that raises it this far
        # allocated far beyond its own size, even though it stayed under the bound.
        outcome = Outcome("fail", outcome.stage, f"MemoryGrowth: the peak resident size rose by "
                          f"{grown >> 20} MiB for a {len(data)}-byte input ({outcome.status}: "
                          f"{outcome.message[:200]})")
    outcome.seconds = time.monotonic() - started
    return outcome


# --- the corpus of failing inputs -----------------------------------------------------------


@functools.cache
def _dictionary() -> zstandard.ZstdCompressionDict:
    """The seed files, as stored and decompressed: what failing inputs are made from."""
    parts = []
    for path in sorted(SEEDS.glob("*.blend")):
        raw = path.read_bytes()
        parts.append(raw)
        with contextlib.suppress(zstandard.ZstdError, OSError, EOFError):
            if raw.startswith(b"\x28\xb5\x2f\xfd"):
                parts.append(zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True).read())
            elif raw.startswith(b"\x1f\x8b"):
                import gzip

                parts.append(gzip.decompress(raw))
    return zstandard.ZstdCompressionDict(b"".join(parts), dict_type=zstandard.DICT_TYPE_RAWCONTENT)


def input_name(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def encode(data: bytes) -> bytes:
    dict_ = _dictionary()
    params = zstandard.ZstdCompressionParameters.from_level(19, window_log=24, enable_ldm=True)
    cctx = zstandard.ZstdCompressor(dict_data=dict_, compression_params=params)
    return _CORPUS_MAGIC + dict_id(dict_).encode() + b"\n" + cctx.compress(data)


def dict_id(dict_: zstandard.ZstdCompressionDict) -> str:
    return hashlib.sha256(dict_.as_bytes()).hexdigest()[:16]


def decode(stored: bytes) -> bytes:
    """An input back from its corpus file; ValueError when the seeds changed since."""
    head, _, body = stored.partition(b"\n")
    if not head.startswith(_CORPUS_MAGIC):
        raise ValueError("not a bat fuzz corpus file")
    dict_ = _dictionary()
    if head[len(_CORPUS_MAGIC):].decode() != dict_id(dict_):
        raise ValueError("the seed files changed since this input was stored: decode the corpus with "
                         "the old seeds and encode it again with the new ones (docs/development.md)")
    params = zstandard.ZstdDecompressor(dict_data=dict_, max_window_size=1 << 27)
    return params.decompress(body, max_output_size=64 << 20)


def minimize(data: bytes, fails: Callable[[bytes], bool], seconds: float = 20.0) -> bytes:
    """A smaller input that still ``fails`` (delta debugging: drop ever smaller chunks),
    or the input itself when nothing can go within ``seconds``."""
    deadline = time.monotonic() + seconds
    parts = 2
    while len(data) >= 2 and time.monotonic() < deadline:
        chunk = -(-len(data) // parts)
        for start in range(0, len(data), chunk):
            candidate = data[:start] + data[start + chunk :]
            if fails(candidate):
                data, parts = candidate, max(parts - 1, 2)
                break
            if time.monotonic() >= deadline:
                return data
        else:
            if parts >= len(data):
                break
            parts = min(parts * 2, len(data))
    return data


#: A stored input bigger than this (one whose bytes the seeds do not explain: a
#: damaged compressed stream) is minimized first.
_SMALL = 4096


def save_failure(data: bytes, outcome: Outcome, work: Path | None = None, corpus: Path = CORPUS) -> Path:
    """Store a failing input (once) and what went wrong in ``index.txt``.

    An input that does not encode small against the seeds is first cut down to a
    smaller one that fails the same way (same exception, same stage) when
    ``work`` is given to run the candidates in: a compressed stream whose
    contents fail on their own is stored decompressed, anything else is
    minimized by :func:`minimize`.
    """
    corpus.mkdir(parents=True, exist_ok=True)
    encoded = encode(data)
    note = ""
    if len(encoded) > _SMALL and work is not None:
        kind = outcome.kind

        def fails(candidate: bytes) -> bool:
            again = run_input(candidate, work, timeout=10)
            return again.failed and again.kind == kind

        from .mutators import decompress  # a stream whose contents fail on their own: keep those

        plain, kind_ = decompress(data)
        smaller = plain if kind_ != "none" and fails(plain) else data
        if len(encode(smaller)) > _SMALL:
            smaller = minimize(smaller, fails)
        if smaller != data:
            note = f"  (cut down from {len(data)} bytes{', decompressed' if smaller is plain else ''})"
            data, encoded = smaller, encode(smaller)
    path = corpus / f"{input_name(data)}.zst"
    if not path.exists():
        path.write_bytes(encoded)
        first = outcome.message.splitlines()[0] if outcome.message else ""
        with open(corpus / "index.txt", "a") as index:
            index.write(f"{path.name}  {outcome.stage}  {first[:200]}{note}\n")
    return path


def corpus_inputs(corpus: Path = CORPUS) -> list[tuple[str, bytes]]:
    return [(p.name, decode(p.read_bytes())) for p in sorted(corpus.glob("*.zst"))]
