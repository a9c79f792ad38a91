"""The pack plan: every dependency mapped to its place in the target, before anything is written.

The plan is built from the complete list of usages, walking from the main
blend file outwards: a library's own usages count only when that library is
packed (with ``--relative-only`` an absolutely linked library stays where it
is, and so do its dependencies).  Each packed blend file collects the paths
that must change so they point, relative (``//``), to the new places.

Only regular files are packed: a FIFO, a device, a file in ``/proc`` or a
file the target itself holds (an earlier pack's, found through a directory
the blend file uses) is left out with the reason, and a file that cannot be
read stops the plan with an error naming it, before anything is written.
"""

from __future__ import annotations

import contextlib
import enum
import errno
import logging
import os
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePath, PurePosixPath

from ..blendfile.dna import FieldPath
from ..realpaths import RealPaths
from ..trace import BlockUsage
from ..trace.files import UNREADABLE
from . import fields
from .errors import PackError
from .layout import LayoutProblem
from .placement import check_relpath, place, stored_relative
from .sources import refusal

log = logging.getLogger(__name__)

#: Errors of ``stat`` that mean the file cannot be packed by anyone, rather than by this user.
_DENIED = {errno.EACCES, errno.EPERM}
_PERMISSION_DENIED = f"{UNREADABLE} (permission denied)"


class Action(enum.Enum):
    """What the plan does with a file."""

    COPY = "copy"
    REWRITE = "rewrite"  # a blend file whose copy is rewritten (paths, compression)
    EXCLUDE = "exclude"


@dataclass(eq=False)
class Rewrite:
    """One stored path to change in a packed blend file."""

    usage: BlockUsage
    old: bytes
    new: bytes


@dataclass(eq=False)
class PlannedFile:
    source: Path
    #: Destination relative to the target root; None for excluded files.
    dest: PurePosixPath | None
    size: int
    action: Action = Action.COPY
    is_blendfile: bool = False
    reason: str = ""
    rewrites: list[Rewrite] = field(default_factory=list)
    #: (device, inode) of the source when planned: a destination that is the same file is a source.
    identity: tuple[int, int] | None = None


@dataclass(eq=False)
class MissingFile:
    """A dependency with no file behind it, and every usage that refers to it."""

    path: Path
    usages: list[BlockUsage] = field(default_factory=list)


@dataclass
class PackPlan:
    blendfile: Path
    project: Path
    #: Where the main blend file lands, relative to the target root.
    output: PurePosixPath
    #: Files to transfer, in transfer order: assets, then libraries, the main file last.
    files: list[PlannedFile]
    excluded: list[PlannedFile]
    missing: list[MissingFile]
    #: What the target's layout rules found (warnings; errors stop the plan).
    problems: list[LayoutProblem] = field(default_factory=list)

    @property
    def blendfiles(self) -> list[PlannedFile]:
        return [f for f in self.files if f.is_blendfile]

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


class _Planner:
    def __init__(self, blendfile: Path, project: Path, exclude: Sequence[str], relative_only: bool,
                 own: Callable[[str], bool] | None = None, real: RealPaths | None = None,
                 readable: Mapping[Path, os.stat_result] | None = None) -> None:
        self.project = project
        self.exclude = [g for g in exclude if g]
        self.relative_only = relative_only
        self.own = own
        self._stats: dict[Path, os.stat_result] = {}
        self._verdicts: dict[Path, str | None] = {}
        self.by_real: dict[str, PlannedFile] = {}
        self.by_dest: dict[PurePosixPath, PlannedFile] = {}
        self.blends: dict[str, PlannedFile] = {}
        self.excluded: dict[Path, PlannedFile] = {}
        self.missing: dict[Path, MissingFile] = {}
        self.rewrites: dict[tuple[int, int, str], Rewrite] = {}
        self._real = real if real is not None else RealPaths()
        self._readable = readable or {}
        with contextlib.suppress(OSError):
            self._stats[blendfile] = os.stat(blendfile)
        self.main = self._add(blendfile, place(blendfile, project), exact=True, blend=True)

    # --- placing files -----------------------------------------------------------

    def _add(self, src: Path, dest: PurePosixPath, *, exact: bool, blend: bool = False) -> PlannedFile:
        """The planned file for ``src``: reused when the same file was placed before.

        ``exact``: the file must be at ``dest`` (members of a sequence or directory,
        whose stored path names their common directory); otherwise a file reached
        through two paths keeps its first place and is transferred once.
        """
        real = self._real(src)
        known = self.by_real.get(real)
        if known is not None and (not exact or known.dest == dest):
            if blend:
                known.is_blendfile = True
                self.blends.setdefault(real, known)
            return known
        other = self.by_dest.get(dest)
        if other is not None:
            if self._real(other.source) == real:
                return other
            raise PackError(f"two different files would be packed as {dest}: {other.source} and {src}")
        st = self._stats.get(src)
        entry = PlannedFile(src, dest, st.st_size if st is not None else _size(src), is_blendfile=blend,
                            identity=(st.st_dev, st.st_ino) if st is not None else None)
        self.by_dest[dest] = entry
        self.by_real.setdefault(real, entry)
        if blend:
            self.blends.setdefault(real, entry)
        return entry

    def _exclude(self, path: Path, reason: str) -> None:
        if path not in self.excluded and self._real(path) not in self.by_real:
            self.excluded[path] = PlannedFile(path, None, _size(path), Action.EXCLUDE, reason=reason)

    def _unpackable(self, path: Path) -> str | None:
        """Why ``path`` is left out (not a regular file, the target's own...), or None to pack it.

        Raises :class:`PackError` for a file that exists but cannot be read.
        """
        if path in self._verdicts:
            return self._verdicts[path]
        why = self._verdicts[path] = self._check_source(path)
        return why

    def _check_source(self, path: Path) -> str | None:
        st = self._readable.get(path)  # the trace found it a readable regular file
        checked = st is not None
        if st is None:
            try:
                st = os.stat(path)
            except OSError as exc:
                if exc.errno in _DENIED:
                    raise PackError(f"cannot read {path}: {exc.strerror}") from None
                log.warning("not packed: %s: %s", path, exc.strerror or exc)
                return f"cannot be read ({exc.strerror or exc})"
        real = self._real(path)
        if self.own is not None and self.own(real):
            log.info("not packed: %s is a file of an earlier pack into the target", path)
            return "a file of an earlier pack into this target"
        why = refusal(path, st, real)
        if why is not None:
            log.warning("not packed: %s: %s", path, why)
            return why
        if not checked and not os.access(path, os.R_OK):
            raise PackError(f"cannot read {path}: {os.strerror(errno.EACCES)}")
        self._stats[path] = st
        return None

    def _refuse_denied(self, usage: BlockUsage) -> None:
        """A file that is there but that this user may not read stops the plan: leaving it
        out (a frame of a sequence, say) would make a pack that renders wrong."""
        denied = [path for path, why in usage.skipped if why == _PERMISSION_DENIED]
        if usage.problem == _PERMISSION_DENIED and os.path.lexists(usage.abspath):
            denied.insert(0, usage.abspath)
        for path in denied:
            if self._glob(path) is None and not (self.relative_only and usage.asset_path.is_absolute):
                raise PackError(f"cannot read {path}: {os.strerror(errno.EACCES)}")

    def _glob(self, path: Path) -> str | None:
        if not self.exclude:
            return None
        pure = PurePath(path)
        return next((g for g in self.exclude if pure.match(g)), None)

    # --- usages ------------------------------------------------------------------

    def visit(self, usage: BlockUsage, holder: PlannedFile) -> PlannedFile | None:
        """Plan one usage of a packed blend file; returns a library to visit next."""
        if self.relative_only and usage.asset_path.is_absolute:
            for f in usage.files or [usage.abspath]:
                self._exclude(f, "absolute path (--relative-only)")
            return None
        self._refuse_denied(usage)
        if usage.problem:
            self.missing.setdefault(usage.abspath, MissingFile(usage.abspath)).usages.append(usage)
            return None
        if not usage.files:
            return None  # nothing baked yet, an empty cache directory: nothing to pack
        glob = self._glob(usage.abspath)
        if glob is not None:
            for f in usage.files:
                self._exclude(f, f"excluded by {glob!r}")
            return None
        kept = []
        for f in usage.files:
            why = self._glob(f)
            why = f"excluded by {why!r}" if why is not None else self._unpackable(f)
            if why is None:
                kept.append(f)
            else:
                self._exclude(f, why)
        if not kept:
            return None

        new_library = None
        if usage.field is None:
            # Implied path (point caches beside the blend file): same place relative to the packed holder.
            assert holder.dest is not None
            for f in kept:
                self._add(f, self._beside(f, holder), exact=True)
            return None
        target = place(usage.abspath, self.project)
        if usage.kind == "library":
            known = len(self.blends)
            entry = self._add(kept[0], target, exact=False, blend=True)
            assert entry.dest is not None
            target = entry.dest
            new_library = entry if len(self.blends) > known else None
        elif usage.is_sequence or usage.is_directory or usage.dir_only or len(usage.files) > 1:
            # The stored path names the files' directory: every file must be right there.
            for f in kept:
                self._add(f, place(f, self.project), exact=True)
        else:
            entry = self._add(kept[0], target, exact=False)
            assert entry.dest is not None
            target = entry.dest
        self._plan_rewrite(usage, holder, target)
        return new_library

    def _beside(self, path: Path, holder: PlannedFile) -> PurePosixPath:
        assert holder.dest is not None
        try:
            rel = PurePosixPath(Path(os.path.normpath(path)).relative_to(holder.source.parent).as_posix())
        except ValueError:
            return place(path, self.project)
        dest = holder.dest.parent / rel
        check_relpath(dest, path)
        return dest

    def _plan_rewrite(self, usage: BlockUsage, holder: PlannedFile, target: PurePosixPath) -> None:
        assert usage.field is not None and holder.dest is not None
        old = fields.read_stored(usage.block, usage.field)
        if usage.dir_only:
            new = stored_relative(target.parent, holder.dest)
            if old.endswith((b"/", b"\\")) and not new.endswith(b"/"):
                new += b"/"
        else:
            new = stored_relative(target, holder.dest)
            if usage.is_directory and old.endswith((b"/", b"\\")) and not new.endswith(b"/"):
                new += b"/"
        if new == old:
            return
        key = (id(usage.block.file), usage.block.offset, repr(usage.field))
        earlier = self.rewrites.get(key)
        if earlier is not None:
            if earlier.new != new:
                raise PackError(f"{usage.blendfile}: one field would need two different paths "
                                f"({earlier.new!r} and {new!r})")
            return
        room = fields.capacity(usage.block, usage.field)
        if len(new) > room:
            name = usage.block_name.decode("utf-8", "replace") or usage.block.dna_type_name
            raise PackError(
                f"{usage.blendfile}: the packed path {new.decode('utf-8', 'replace')!r} of {name} is "
                f"{len(new)} bytes, too long for its field {_field_name(usage.field)} ({room} bytes max); "
                "refusing to truncate it (choose a shorter project layout or target)")
        rewrite = self.rewrites[key] = Rewrite(usage, old, new)
        holder.rewrites.append(rewrite)

    # --- result ------------------------------------------------------------------

    def plan(self, blendfile: Path, usages: Iterable[BlockUsage]) -> PackPlan:
        by_holder: dict[str, list[BlockUsage]] = {}
        for usage in usages:
            by_holder.setdefault(self._real(usage.blendfile), []).append(usage)
        todo: deque[PlannedFile] = deque([self.main])
        while todo:
            holder = todo.popleft()
            for usage in by_holder.get(self._real(holder.source), ()):
                library = self.visit(usage, holder)
                if library is not None:
                    todo.append(library)
        for entry in self.blends.values():
            if entry.rewrites:
                entry.action = Action.REWRITE
        assets = [f for f in self.by_dest.values() if not f.is_blendfile]
        libraries = [f for f in self.by_dest.values() if f.is_blendfile and f is not self.main]
        for path in list(self.excluded):
            if self._real(path) in self.by_real:  # also reached through a path that is packed
                del self.excluded[path]
        assert self.main.dest is not None
        return PackPlan(
            blendfile=blendfile,
            project=self.project,
            output=self.main.dest,
            files=[*assets, *libraries, self.main],
            excluded=list(self.excluded.values()),
            missing=list(self.missing.values()),
        )


def _field_name(path: FieldPath) -> str:
    parts = path if isinstance(path, (list, tuple)) else [path]
    return ".".join(p.decode() if isinstance(p, bytes) else str(p) for p in parts)


def make_plan(blendfile: Path, project: Path, usages: Iterable[BlockUsage], *,
              exclude: Sequence[str] = (), relative_only: bool = False,
              own: Callable[[str], bool] | None = None, real: RealPaths | None = None,
              readable: Mapping[Path, os.stat_result] | None = None) -> PackPlan:
    """Plan the pack of ``blendfile`` (absolute, inside ``project``) from its traced usages.

    ``own(real_path)`` tells the files the target holds itself (an earlier
    pack's): they are left out, never packed into the target again.  ``real``
    and ``readable`` are the trace's :class:`RealPaths` and the ``stat`` of the
    files it found readable (:attr:`FileProbe.readable`), which the plan reuses
    rather than asking the file system again.
    """
    planner = _Planner(blendfile, project, exclude, relative_only, own, real, readable)
    return planner.plan(blendfile, usages)
