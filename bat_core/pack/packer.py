"""The packer: trace, plan, rewrite blend files in temporary copies, transfer, report.

``Packer`` is the object a program keeps to abort a pack from another thread;
:func:`pack` is the one-call form.  Source files are only ever read: changed
blend files are saved to a temporary directory and those copies transferred.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import stat
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path, PurePosixPath

from ..blendfile import Compression
from ..errors import BatError
from ..plugins import get_registry
from ..progress import CallbackGroup, PackCallback, ThreadSafeCallback, TraceCallback
from ..trace import BlendFileCache, BlockUsage, Tracer
from . import fields
from .engine import TransferOutcome, run_transfers
from .errors import Aborted, PackError
from .layout import Severity, check_layout, describe
from .leftovers import WorkDir
from .plan import Action, PackPlan, PlannedFile, make_plan
from .result import COPIED, EXCLUDED, NOT_TRANSFERRED, REWRITTEN, Missing, PackedFile, PackResult, Reference
from .schemes import resolve_target
from .transfer import Target, TransferItem

log = logging.getLogger(__name__)

#: The note at the top of every pack saying which blend file to open (as BAT 1.x writes it).
INFO_FILE = "pack-info.txt"


class _TraceEvents(TraceCallback):
    """Passes trace progress on; missing files are reported by the packer after planning.

    (The plan knows which missing paths matter: not those excluded, or inside a
    library that is not packed.)
    """

    def __init__(self, callback: TraceCallback) -> None:
        self.callback = callback

    def trace_blendfile(self, path: Path) -> None:
        self.callback.trace_blendfile(path)

    def trace_asset(self, path: Path) -> None:
        self.callback.trace_asset(path)


def _inside(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip(os.sep) + os.sep)


class Packer:
    """Packs one blend file and its dependencies into a target.

    ``target`` is a target string (resolved by the target-scheme plugins, or by
    ``target_scheme`` by name) or an already resolved :class:`Target`.
    ``callback`` gets every progress event on the calling thread, along with
    the callbacks plugins registered.  Call :meth:`plan`, then :meth:`execute`;
    :meth:`abort` may be called from any thread (or from a callback).
    """

    def __init__(self, blendfile: os.PathLike[str] | str, target: str | Target, *,
                 project: os.PathLike[str] | str | None = None, noop: bool = False,
                 exclude: Sequence[str] = (), compress: bool = False, relative_only: bool = False,
                 target_scheme: str | None = None, callback: TraceCallback | None = None,
                 plugins: Iterable[object] = (), strict_pointers: bool = False,
                 checksum_cache: bool = True) -> None:
        self.blendfile = Path(os.path.abspath(blendfile))
        self.project = Path(os.path.abspath(project)) if project is not None else self.blendfile.parent
        self.target_arg = target
        self.noop = noop
        self.exclude = list(exclude)
        self.compress = compress
        self.relative_only = relative_only
        self.target_scheme = target_scheme
        self.plugins = list(plugins)
        #: Use the persistent checksum cache (off with ``--no-hash-cache`` or ``BAT_NO_HASH_CACHE=1``).
        self.checksum_cache = checksum_cache  # and not turned off by BAT_NO_HASH_CACHE (engine.py)
        self.registry = get_registry(self.plugins)
        user = [callback] if callback is not None else []
        self.callback = CallbackGroup([*user, *self.registry.callbacks])
        self._tscb = ThreadSafeCallback(self.callback)
        self._cache = BlendFileCache(strict_pointers)
        self._tracer: Tracer | None = None
        self._abort = threading.Event()
        self._abort_reason = ""
        self._started = time.monotonic()
        self.target: Target | None = None
        self._plan: PackPlan | None = None
        self._aborted_in_plan = False
        self._ended = False

    # --- control -------------------------------------------------------------------

    def abort(self, reason: str = "aborted") -> None:
        """Stop the pack as soon as possible (thread-safe); files done so far stay in place."""
        if not self._abort.is_set():
            self._abort_reason = reason
        self._abort.set()
        tracer = self._tracer
        if tracer is not None:
            tracer.abort()

    @property
    def aborted(self) -> bool:
        return self._abort.is_set()

    def _check_abort(self) -> None:
        if self._abort.is_set():
            raise Aborted()

    def close(self) -> None:
        self._cache.close_all()

    def __enter__(self) -> Packer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- planning ------------------------------------------------------------------

    def _resolve_target(self) -> Target:
        if isinstance(self.target_arg, Target):
            return self.target_arg
        return resolve_target(str(self.target_arg), self.registry, self.target_scheme)

    def _check_inputs(self) -> None:
        try:
            is_file = stat.S_ISREG(os.stat(self.blendfile).st_mode)
        except OSError as exc:
            if exc.errno not in (errno.ENOENT, errno.ENOTDIR):
                raise PackError(f"{self.blendfile}: {exc.strerror or exc}") from None
            is_file = False
        if not is_file:
            raise PackError(f"{self.blendfile}: no such blend file")
        if not os.path.isdir(self.project):
            raise PackError(f"project {self.project} is not a directory")
        if not _inside(str(self.blendfile), str(self.project)):
            raise PackError(f"{self.blendfile} is not inside the project {self.project} (see -p/--project)")

    def _own_files(self, target: Target) -> Callable[[str], bool] | None:
        """The files the target holds itself (an earlier pack's): never packed as dependencies."""
        return target.transfer.owns

    def _check_target(self, target: Target, plan: PackPlan) -> None:
        """Refuse a target that would put a packed file over one of the files being packed.

        The target may hold the project, sit inside it or be the project itself;
        what matters is that no destination is a source (the same device and
        inode, reached through any symbolic link; a hard link is the same file
        too), except a file copied onto itself, which is then left as it is.
        """
        identities = [(f, self._identity(f)) for f in plan.files]
        inodes: dict[tuple[int, int], PlannedFile] = {}
        for f, identity in identities:
            if identity is not None:
                inodes.setdefault(identity, f)

        def file_at(path: str) -> tuple[int, int] | None:
            try:
                st = os.stat(path)  # through any symbolic link: the file that would be written over
            except OSError:
                return None
            return st.st_dev, st.st_ino

        if target.local_file is not None and file_at(str(target.local_file)) in inodes:
            raise PackError(f"refusing to pack into {target.local_file}: it is one of the files being packed")
        if target.local_dir is None:
            return
        root = str(target.local_dir)
        for f, identity in identities:
            there = file_at(os.path.join(root, str(f.dest)))
            if there is None:
                continue
            if there != identity:
                other = inodes.get(there)
                if other is not None:
                    raise PackError(f"refusing to pack {f.source} as {os.path.join(root, str(f.dest))}: "
                                    f"that would overwrite {other.source}, which is being packed")
            elif f.action is Action.REWRITE:
                raise PackError(f"refusing to pack {f.source} onto itself: its paths change, so the packed "
                                "copy would overwrite the source; choose another target")

    @staticmethod
    def _identity(f: PlannedFile) -> tuple[int, int] | None:
        """(device, inode) of a planned source: as planned, or asked now (None when it is gone)."""
        if f.identity is not None:
            return f.identity
        try:
            st = os.stat(f.source)
        except OSError:
            return None
        return st.st_dev, st.st_ino

    def _check_layout(self, target: Target, plan: PackPlan) -> None:
        """Prove the layout fits the target: clashes and impossible names stop the pack here."""
        rules = target.transfer.layout_rules()
        problems = check_layout(((f.dest, f.source) for f in plan.files if f.dest is not None), rules)
        plan.problems = problems
        errors = [p for p in problems if p.severity is Severity.ERROR]
        for problem in problems:
            if problem.severity is Severity.WARNING:
                log.warning("%s", problem.message)
        if errors:
            raise PackError(f"{target.description or target.root} cannot hold the pack: {describe(errors)}")

    def plan(self) -> PackPlan:
        """Trace the blend file and decide where everything goes.  Writes nothing."""
        try:
            return self._make_plan()
        except BaseException as exc:
            self._end_aborted(str(exc) if isinstance(exc, BatError) else "interrupted")
            raise

    def _make_plan(self) -> PackPlan:
        self._check_inputs()
        self.target = target = self._resolve_target()
        usages: list[BlockUsage] = []
        tracer = self._tracer = Tracer(self.registry, _TraceEvents(self.callback), self._cache)
        try:
            for usage in tracer.trace(self.blendfile):
                usages.append(usage)
                self._check_abort()
            self._check_abort()
        except Aborted:
            self._aborted_in_plan = True
        finally:
            self._tracer = None
        plan = make_plan(self.blendfile, self.project, usages, exclude=self.exclude,
                         relative_only=self.relative_only, own=self._own_files(target),
                         real=self._cache.realpath, readable=tracer.probe.readable)
        if self.compress:
            for entry in plan.blendfiles:
                if entry.action is Action.COPY and self._compression(entry) not in (Compression.ZSTD, None):
                    entry.action = Action.REWRITE
                    entry.reason = "compressed"
        self._check_target(target, plan)
        self._check_layout(target, plan)
        for missing in plan.missing:
            self.callback.missing_file(missing.path)
        self._plan = plan
        return plan

    def _compression(self, entry: PlannedFile) -> Compression | None:
        try:
            return self._cache.open(entry.source).compression
        except (BatError, OSError) as exc:
            log.warning("%s is copied as it is: %s", entry.source, exc)
            return None

    # --- execution -----------------------------------------------------------------

    def execute(self) -> PackResult:
        """Rewrite the blend files that need it and transfer everything; returns what was done.

        Raises :class:`PackError` (with ``.result``) when the pack cannot finish:
        an unwritable target, a full disk...  An abort is not an error: the
        result says ``aborted``.
        """
        plan = self._plan if self._plan is not None else self.plan()
        target = self.target
        assert target is not None
        if self._aborted_in_plan or self._abort.is_set():
            return self._aborted(self._result(plan, {}))
        if self.noop:
            result = self._result(plan, {id(f): f.action.value for f in plan.files})
            self._end_done(result, plan)
            return result
        try:
            workdir = WorkDir()
        except OSError as exc:
            raise PackError(f"cannot create a temporary directory: {exc.strerror or exc}") from None
        try:
            return self._execute(plan, target, workdir.path)
        except BaseException as exc:
            self._end_aborted(str(exc) if isinstance(exc, BatError) else "interrupted")
            raise
        finally:
            workdir.close()
            self._cache.close_all()

    def _execute(self, plan: PackPlan, target: Target, tmpdir: Path) -> PackResult:
        items: list[TransferItem] = []
        by_item: list[PlannedFile] = []
        try:
            for n, entry in enumerate(plan.files):
                assert entry.dest is not None
                read_from, size = entry.source, entry.size
                if entry.action is Action.REWRITE:
                    self._check_abort()
                    # A short name of the packer's own: a source's name may already be 255 bytes long.
                    read_from = self._rewrite(entry, tmpdir / f"{n}.blend")
                    size = read_from.stat().st_size
                items.append(TransferItem(read_from, entry.dest, size, entry.source, entry.is_blendfile,
                                          temporary=entry.action is Action.REWRITE))
                by_item.append(entry)
        except Aborted:
            return self._aborted(self._result(plan, {}))
        # Everything rewritten is saved: free the blend files' memory before the transfers.
        self._cache.close_all()
        info = self._info_file(plan, items, tmpdir)
        if info is not None:
            items.append(info)  # after the planned files: by_item does not cover it
        self._preflight(target, items)

        self.callback.pack_start(len(items), sum(i.size for i in items))
        try:
            target.transfer.start()
        except OSError as exc:
            raise PackError(f"cannot write to {target.root}: {exc.strerror or exc}") from None
        try:
            outcome = run_transfers(target, items, self._tscb, self._abort, checksum_cache=self.checksum_cache,
                                    real=self._cache.realpath)
        except BaseException:
            self._finish(target, False, quiet=True)
            raise
        try:
            self._finish(target, outcome.settled)
        except PackError as exc:
            result = self._outcome_result(plan, by_item, outcome)
            result.error = str(exc)
            raise PackError(str(exc), result) from None
        result = self._outcome_result(plan, by_item, outcome)  # after finish: where files ended up
        if outcome.error:
            result.error = outcome.error
            raise PackError(outcome.error, result)
        if outcome.aborted:
            return self._aborted(result)
        self._end_done(result, plan)
        return result

    def _info_file(self, plan: PackPlan, items: list[TransferItem], tmpdir: Path) -> TransferItem | None:
        """BAT's ``pack-info.txt`` at the top of the pack: which blend file to open.

        Its three lines keep BAT 1.x's format (scripts read the indented path);
        left out, with a warning, when a packed file already has that name.
        """
        if any(str(i.dest).lower() == INFO_FILE for i in items):
            log.warning("a packed file is called %s; not writing bat's own", INFO_FILE)
            return None
        local = self.target.local_dir if self.target is not None else None
        if local is not None and os.path.realpath(os.path.join(local, plan.output)) == os.path.realpath(self.blendfile):
            log.info("the target is the project itself: no %s", INFO_FILE)  # nothing moved; nothing to say
            return None
        content = ("This is a Blender Asset Tracer pack.\n"
                   "Start by opening the following blend file:\n"
                   f"    {plan.output.as_posix()}\n").encode()
        path = tmpdir / INFO_FILE
        path.write_bytes(content)
        return TransferItem(path, PurePosixPath(INFO_FILE), len(content), path, temporary=True,
                            sha256=hashlib.sha256(content).hexdigest())

    def _outcome_result(self, plan: PackPlan, by_item: list[PlannedFile], outcome: TransferOutcome) -> PackResult:
        actions = {id(entry): outcome.actions[n] for n, entry in enumerate(by_item)}
        sizes = {id(entry): outcome.items[n].size for n, entry in enumerate(by_item)}
        result = self._result(plan, actions, sizes)
        assert self.target is not None
        for n in range(len(by_item), len(outcome.items)):  # what the packer wrote itself: pack-info.txt
            item = outcome.items[n]
            action = outcome.actions[n]
            result.files.append(PackedFile(Path(item.dest), self.target.display(item.dest), str(item.dest),
                                           COPIED if action == REWRITTEN else action, item.size,
                                           "written by bat: which blend file to open", own=True))
        result.target_info = self.target.transfer.report()
        result.checksums = {"hashed_files": outcome.hashed_files, "hashed_bytes": outcome.hashed_bytes,
                            "cached": outcome.cached_checksums} if self.target.transfer.needs_checksums else {}
        return result

    def _preflight(self, target: Target, items: list[TransferItem]) -> None:
        """Let the target refuse the pack before anything is written (files it does not own)."""
        try:
            target.transfer.preflight(items)
        except OSError as exc:
            raise PackError(f"cannot write to {target.root}: {exc.strerror or exc}") from None

    def _finish(self, target: Target, completed: bool, quiet: bool = False) -> None:
        try:
            target.transfer.finish(completed)
        except (OSError, PackError) as exc:
            if quiet:
                log.warning("cleaning up the target failed: %s", exc)
                return
            msg = str(exc) if isinstance(exc, PackError) else f"cannot finish {target.root}: {exc.strerror or exc}"
            raise PackError(msg) from None

    def _rewrite(self, entry: PlannedFile, tmp: Path) -> Path:
        """Apply the entry's path changes to the cached blend file and save it to ``tmp``."""
        self.callback.rewrite_blendfile(entry.source)
        try:
            bf = self._cache.open(entry.source)
        except BatError as exc:
            raise PackError(f"cannot rewrite {entry.source}: {exc}") from None
        except OSError as exc:
            raise PackError(f"cannot rewrite {entry.source}: {exc.strerror or exc}") from None
        for rw in entry.rewrites:
            log.info("%s: %s -> %s", entry.source, rw.old.decode("utf-8", "replace"),
                     rw.new.decode("utf-8", "replace"))
            try:
                assert rw.usage.field is not None
                fields.write_stored(rw.usage.block, rw.usage.field, rw.new)
            except (ValueError, TypeError) as exc:
                raise PackError(f"{entry.source}: cannot store {rw.new!r}: {exc}") from None
        try:
            bf.save(tmp, compress=Compression.ZSTD if self.compress else None)
        except OSError as exc:
            raise PackError(f"cannot write the rewritten copy of {entry.source} to {tmp}: "
                            f"{exc.strerror or exc}") from None
        return tmp

    # --- reporting -----------------------------------------------------------------

    def _end_done(self, result: PackResult, plan: PackPlan) -> None:
        if not self._ended:
            self._ended = True
            self._tscb.flush()
            self.callback.pack_done(result.output, [m.path for m in plan.missing])

    def _end_aborted(self, reason: str) -> None:
        """Tell the callbacks the pack stopped (once, whatever stopped it)."""
        if not self._ended:
            self._ended = True
            self._tscb.flush()
            self.callback.pack_aborted(reason)

    def _aborted(self, result: PackResult) -> PackResult:
        result.aborted = True
        result.abort_reason = self._abort_reason or "aborted"
        self._end_aborted(result.abort_reason)
        return result

    def _result(self, plan: PackPlan, actions: dict[int, str], sizes: dict[int, int] | None = None) -> PackResult:
        """The report; ``sizes`` has the sizes of rewritten copies, which differ from their sources."""
        target = self.target
        assert target is not None
        sizes = sizes or {}
        files = [PackedFile(f.source, target.display(f.dest) if f.dest else None,
                            str(f.dest) if f.dest else None, actions.get(id(f), NOT_TRANSFERRED),
                            sizes.get(id(f), f.size), f.reason) for f in plan.files]
        files += [PackedFile(f.source, None, None, EXCLUDED, f.size, f.reason) for f in plan.excluded]
        missing = [Missing(m.path, [Reference(u.blendfile, u.block_name.decode("utf-8", "replace"),
                                              u.asset_path.decode_path(), u.kind) for u in m.usages],
                           m.usages[0].problem, m.usages[0].shown_path)
                   for m in plan.missing]
        return PackResult(
            blendfile=self.blendfile,
            target=str(self.target_arg.root if isinstance(self.target_arg, Target) else self.target_arg),
            output=target.display(plan.output),
            files=files,
            missing=missing,
            noop=self.noop,
            seconds=time.monotonic() - self._started,
        )


def pack(blendfile: os.PathLike[str] | str, target: str | Target, *,
         project: os.PathLike[str] | str | None = None, noop: bool = False, exclude: Sequence[str] = (),
         compress: bool = False, relative_only: bool = False, target_scheme: str | None = None,
         callback: PackCallback | TraceCallback | None = None, plugins: Iterable[object] = (),
         strict_pointers: bool = False, checksum_cache: bool = True) -> PackResult:
    """Pack ``blendfile`` and everything it depends on into ``target``.

    Returns a :class:`PackResult`; raises :class:`PackError` for bad input or
    when the pack cannot finish (``err.result`` tells what was done).
    """
    with Packer(blendfile, target, project=project, noop=noop, exclude=exclude, compress=compress,
                relative_only=relative_only, target_scheme=target_scheme, callback=callback,
                plugins=plugins, strict_pointers=strict_pointers, checksum_cache=checksum_cache) as packer:
        packer.plan()
        return packer.execute()
