"""The tracer: walk a blend file and its libraries, asking block readers for usages.

The main file's ID blocks are all traced (Blender loads all of them).  Of a
linked library only the IDs the file links are traced, plus everything they
depend on (found by the registered expanders), and so on recursively through
libraries of libraries.  Usages are yielded as soon as a reader produces them.
"""

from __future__ import annotations

import gc
import logging
import os
from collections import deque
from collections.abc import Generator, Iterable, Iterator
from pathlib import Path

from ..blendfile import BlendFile, Block, StructView, open_blend
from ..blendfile.file import NON_ID_CODES
from ..bpathlib import BlendPath
from ..errors import BlendFileError
from ..plugins import Handler, Registry, get_registry
from ..progress import CallbackGroup, TraceCallback
from ..realpaths import RealPaths
from . import sequences
from .files import MISSING, NOT_BLEND, FileProbe, describe_error, foreign_problem
from .guard import guarded
from .reader_memo import reader_memo
from .usage import BlockUsage

log = logging.getLogger(__name__)

def is_id_block(block: Block) -> bool:
    """A real (local) ID datablock: two-letter code, not a linked-ID placeholder."""
    return len(block.code) == 2 and block.code not in NON_ID_CODES


def library_path_field(li: Block) -> bytes | None:
    """The DNA field of a Library block that holds the path as stored (``//lib.blend``).

    Blender writes a file's DNA with the field names of the day it was frozen:
    2.5-2.9x files keep the stored path in ``name`` and, in ``filepath``, the
    absolute path on the machine that last saved the file, which means nothing
    here.  Newer sources renamed the pair to ``filepath``/``filepath_abs`` but
    still write ``name`` (a DNA alias), and keep the absolute path at run time
    only.  So: ``name`` whenever the struct has it, else ``filepath`` (a DNA
    that uses the new names says so with ``filepath_abs``).
    """
    st = li.dna_type
    if st.has_field(b"filepath_abs") and st.has_field(b"filepath"):
        return b"filepath"
    for name in (b"name", b"filepath"):
        if st.has_field(name):
            return name
    return None


def library_path(li: Block) -> BlendPath:
    """The stored path of a Library block (see :func:`library_path_field`)."""
    field = library_path_field(li)
    return BlendPath(li.get(field)) if field is not None else BlendPath(b"")


class BlendFileCache:
    """Blend files opened during a trace, each once; closed together at the end.

    The packer keeps the cache open after tracing so it can rewrite the very
    blocks the usages point at, then closes it.
    """

    def __init__(self, strict_pointers: bool = False) -> None:
        self.strict_pointers = strict_pointers
        self._files: dict[str, BlendFile] = {}
        self.realpath = RealPaths()

    def open(self, path: Path) -> BlendFile:
        key = self.realpath(path)
        bf = self._files.get(key)
        if bf is None:
            bf = open_blend(path, strict_pointers=self.strict_pointers)
            self._files[key] = bf
        return bf

    def files(self) -> list[BlendFile]:
        return list(self._files.values())

    def close_all(self) -> None:
        for bf in self._files.values():
            bf.close()
        self._files.clear()

    def __enter__(self) -> BlendFileCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close_all()


class TraceContext:
    """Handed to readers and expanders: the file being traced and dispatch helpers."""

    def __init__(self, tracer: Tracer, blendfile: BlendFile) -> None:
        self.tracer = tracer
        self.blendfile = blendfile
        self.root: Block | None = None
        #: Per-file scratch space for readers (anything worked out once per file).
        self.memo: dict[object, object] = {}
        self.readers: dict[tuple[bytes, int], list[Handler]] = {}
        #: What the readers found in this file's blocks last time (``reader_memo.py``).
        self.remembered = reader_memo(blendfile, tracer.registry)

    def read(self, view: StructView) -> Iterator[BlockUsage]:
        """Run the readers registered for ``view``'s DNA struct (modifiers, nodes, strips).

        ID readers call this on the sub-structures they walk so that third-party
        readers keyed by struct name see them too.
        """
        for reader in self.tracer.registry.readers_by_struct.get(view.dna_type.name, ()):
            yield from reader(view, self)

    def id_name(self) -> bytes:
        return self.root.id_name if self.root is not None else b""


class Tracer:
    def __init__(self, registry: Registry, callback: TraceCallback | None = None,
                 cache: BlendFileCache | None = None) -> None:
        self.registry = registry
        self.callback = callback or TraceCallback()
        self.cache = cache or BlendFileCache()
        self._aborted = False
        self._main_real = ""
        self.probe = FileProbe()

    def abort(self) -> None:
        """Stop the trace at the next block."""
        self._aborted = True

    # --- dispatch ----------------------------------------------------------------

    def _handlers(self, block: Block, by_code: dict[bytes, list[Handler]],
                  by_struct: dict[bytes, list[Handler]]) -> list[Handler]:
        handlers = by_code.get(block.code, [])
        if by_struct:
            extra = by_struct.get(block.dna_type.name)
            if extra:
                handlers = [*handlers, *extra]
        return handlers

    def _read_block(self, block: Block, ctx: TraceContext) -> Iterator[BlockUsage]:
        # The readers depend on the code and the DNA struct: worked out once per
        # pair and file (a production file has thousands of objects, meshes...).
        key = (block.code, block.sdna_index)
        readers = ctx.readers.get(key)
        if readers is None:
            reg = self.registry
            readers = ctx.readers[key] = self._handlers(block, reg.readers_by_code, reg.readers_by_struct)
        if not readers:
            return
        ctx.root = block
        remembered = ctx.remembered
        found = remembered.usages(block) if remembered is not None else None
        if found is None:
            found = []
            for reader in readers:
                for usage in guarded(reader, block, ctx):
                    if not usage.block_name:
                        usage.block_name = block.id_name
                    found.append(usage)
            if remembered is not None:
                remembered.remember(block, found)
        for usage in found:
            self._resolve(usage, ctx.blendfile)
            if (usage.kind == "library" and not usage.problem
                    and self.cache.realpath(usage.abspath) == self._main_real):
                # A library linking back into the main file: Blender ignores it too.
                continue
            yield usage

    def _expand(self, block: Block, ctx: TraceContext) -> Iterator[Block]:
        reg = self.registry
        for expander in self._handlers(block, reg.expanders_by_code, reg.expanders_by_struct):
            yield from guarded(expander, block, ctx)

    def _resolve(self, usage: BlockUsage, bf: BlendFile) -> BlockUsage:
        usage.blendfile = bf.path
        asset = usage.asset_path
        if asset.is_foreign():
            usage.abspath = Path(asset.decode_path())
            usage.problem = foreign_problem(asset)
            self.callback.missing_file(usage.abspath)
            return usage
        path = usage.abspath = asset.absolute(bf.path)
        found = self._find(usage, path)
        usage.files, usage.skipped, problem = found.files, found.skipped, found.problem
        if not usage.files and not problem and not usage.is_directory and usage.pattern is None:
            problem = found.skipped[0][1] if found.skipped else MISSING
        if usage.optional and problem.startswith(MISSING):
            problem = ""  # never baked: nothing to pack, and nothing Blender misses
        if usage.kind == "library" and usage.files:
            problem = self._check_library(path)
            if problem:
                usage.files = []
        usage.problem = problem
        if usage.files:
            self.callback.trace_asset(path)
        elif problem:
            self.callback.missing_file(path)
        return usage

    def _find(self, usage: BlockUsage, path: Path) -> sequences.Found:
        probe = self.probe
        if usage.pattern is not None:
            if usage.is_directory:
                problem = probe.directory(path)
                if problem:
                    return sequences.Found(problem=problem)
            return sequences.expand_glob(path.parent, usage.pattern, probe)
        if usage.is_directory:
            return sequences.expand_directory(path, probe, usage.subdirs)
        if usage.is_sequence:
            if sequences.has_udim_token(path.name):
                return sequences.expand_udim(path, probe)
            return sequences.expand_frames(path, probe)
        return sequences.single(path, probe)

    def _check_library(self, path: Path) -> str:
        """'' when the library is a blend file bat can read (it is opened now, once, for the
        trace that follows); otherwise the problem, reported on the usage itself."""
        if self.cache.realpath(path) == self._main_real:
            return ""
        try:
            self.cache.open(path)
        except BlendFileError as exc:
            return exc.message if exc.message.startswith(NOT_BLEND) else f"broken blend file ({exc.message})"
        except OSError as exc:
            return describe_error(exc)
        return ""

    # --- walking -----------------------------------------------------------------

    def trace(self, blendfile: Path) -> Iterator[BlockUsage]:
        """Yield every usage of ``blendfile`` and of the libraries it links.

        The cyclic garbage collector is paused while the tracer works (not while
        the caller handles a usage): a trace makes tens of thousands of small
        objects and no garbage cycles, and the collector would otherwise keep
        rescanning them (~5% of a trace).
        """
        walk = self._walk(blendfile)
        try:
            while True:
                paused = gc.isenabled()
                gc.disable()
                try:
                    usage = next(walk)
                except StopIteration:
                    return
                finally:
                    if paused:
                        gc.enable()
                yield usage
        finally:
            walk.close()

    def _walk(self, blendfile: Path) -> Generator[BlockUsage, None, None]:
        main = Path(os.path.abspath(blendfile))
        problem = self.probe.file(main)
        if problem:  # never open a FIFO, a device or /proc/...: it could block or leak
            raise BlendFileError(main, problem)
        bf = self.cache.open(main)  # errors on the main file propagate to the caller
        self._main_real = self.cache.realpath(main)
        done_files: set[str] = {self._main_real}
        done_ids: dict[str, set[bytes]] = {}
        pending: deque[tuple[Path, set[bytes]]] = deque()

        self.callback.trace_blendfile(main)
        ctx = TraceContext(self, bf)
        for block in bf.id_blocks():
            if self._aborted:
                return
            yield from self._read_block(block, ctx)
        self._queue_placeholders(bf, bf.blocks_by_code(b"ID"), pending)

        while pending and not self._aborted:
            path, names = pending.popleft()
            key = self.cache.realpath(path)
            if key in done_files:
                continue
            seen = done_ids.setdefault(key, set())
            names -= seen
            if not names:
                continue
            seen |= names
            yield from self._trace_library(path, names, pending, done_ids)

    def _trace_library(self, path: Path, names: set[bytes],
                       pending: deque[tuple[Path, set[bytes]]],
                       done_ids: dict[str, set[bytes]]) -> Iterator[BlockUsage]:
        problem = self.probe.file(path)
        if problem:
            log.debug("library %s: %s; reported on its usage", path, problem)
            return
        try:
            lib = self.cache.open(path)
        except (BlendFileError, OSError) as exc:
            log.debug("cannot trace library %s: %s; reported on its usage", path, exc)
            return
        self.callback.trace_blendfile(path)
        index = _id_index(lib)
        ctx = TraceContext(self, lib)
        todo: deque[Block] = deque()
        visited: set[int] = set()
        for name in sorted(names):
            blk = index.get(name)
            if blk is None:
                log.warning("%s: linked data %s not found in the library",
                            path, name.decode("utf-8", "replace"))
                continue
            todo.append(blk)
            visited.add(blk.addr_old)
        placeholders: list[Block] = []
        while todo:
            if self._aborted:
                return
            block = todo.popleft()
            yield from self._read_block(block, ctx)
            for dep in self._expand(block, ctx):
                if dep.addr_old in visited:
                    continue
                visited.add(dep.addr_old)
                if dep.code == b"ID":
                    placeholders.append(dep)
                elif is_id_block(dep):
                    todo.append(dep)
        for li in self._queue_placeholders(lib, placeholders, pending):
            yield from self._read_block(li, ctx)
        found = (lib.block_at_addr(addr) for addr in visited)
        done_ids.setdefault(self.cache.realpath(path), set()).update(
            b.id_name for b in found if b is not None and is_id_block(b))

    def _queue_placeholders(self, bf: BlendFile, placeholders: Iterable[Block],
                            pending: deque[tuple[Path, set[bytes]]]) -> list[Block]:
        """Group linked-ID placeholders by library and queue those libraries.

        Returns the Library blocks involved, so a library's own links to other
        libraries are reported as its dependencies.
        """
        libs: list[Block] = []
        by_lib: dict[int, set[bytes]] = {}
        for ph in placeholders:
            lib_addr = ph.get(b"lib", 0)
            if lib_addr:
                by_lib.setdefault(lib_addr, set()).add(ph.get(b"name"))
        for lib_addr, names in by_lib.items():
            li = bf.dereference(lib_addr)
            if li is None or li.code != b"LI":
                continue
            libs.append(li)
            stored = library_path(li)
            if stored.is_foreign():
                continue  # reported missing by its usage; never looked up here
            pending.append((stored.absolute(bf.path), names))
        return libs


def _id_index(bf: BlendFile) -> dict[bytes, Block]:
    return {b.id_name: b for b in bf.id_blocks()}


def trace(blendfile: os.PathLike[str] | str, *, callback: TraceCallback | None = None,
          plugins: Iterable[object] = (), strict_pointers: bool = False,
          cache: BlendFileCache | None = None) -> Iterator[BlockUsage]:
    """Yield the usages of ``blendfile`` and its libraries, streaming.

    ``plugins`` are extra plugin objects used for this call only.  The
    callbacks plugins registered (``register_callbacks``) hear about the trace
    too, after ``callback``.  Pass a :class:`BlendFileCache` to keep the files
    open afterwards (the packer does); otherwise they are closed when the
    generator finishes.
    """
    registry = get_registry(plugins)
    own_cache = cache is None
    cache = cache or BlendFileCache(strict_pointers)
    if registry.callbacks:
        callback = CallbackGroup([*([callback] if callback is not None else []), *registry.callbacks])
    tracer = Tracer(registry, callback, cache)
    try:
        yield from tracer.trace(Path(blendfile))
    finally:
        if own_cache:
            cache.close_all()
