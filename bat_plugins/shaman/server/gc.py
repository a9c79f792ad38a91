"""``bat shaman gc``: delete blobs that no checkout links to and nobody touched lately.

The guarantee, and why it holds while servers keep running:

* Only ``stored/**/*.blob`` files are ever deleted; uploads in progress live in
  ``uploading/`` and are never looked at (their stale leftovers are removed
  only when their writer is provably gone, :meth:`FileStore.clean_stale_temps`).
* A blob is a candidate only if its mtime is older than the age given, and it
  is dropped from the candidates if any symlink under the checkouts root
  (either API's checkouts, and checkouts still being built) resolves to it.
* Requirements requests and checkout creation touch every blob they will need
  *before* they need it.  Deletion is: rename the blob to a private name, stat
  it again, and only if its mtime is still the one recorded in the first pass
  (and still old) unlink it; otherwise link it back.  A checkout being created
  therefore either touched the blob before the rename (GC puts it back) or
  finds it missing when it touches and checks it (the request fails cleanly
  and the client uploads it again) — it never ends up with a dangling link.
* So anything touched within the age is safe.  The age must be longer than
  the longest submission (requirements to checkout); ages under an hour are
  refused.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from .checkouts import CREATING_PREFIX
from .store import FileStore

MIN_AGE_S = 3600.0
STALE_BUILD_AGE_S = 24 * 3600.0
_AGE = re.compile(r"(\d+(?:\.\d+)?)([wdhms])")
_UNITS = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}
_DOOMED = re.compile(r"\d+\.gc-[0-9a-f]+")


def parse_age(text: str) -> float:
    """``31d``, ``12h``, ``1d12h``, ``90m``, ``2w`` in seconds; ValueError otherwise."""
    text = text.strip().lower()
    pos, total = 0, 0.0
    for m in _AGE.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if not text or pos != len(text):
        raise ValueError(f"not an age like 31d, 12h or 1d12h: {text!r}")
    return total


@dataclass
class GCReport:
    blobs: int = 0
    old: int = 0
    linked: int = 0
    touched: int = 0
    deleted: list[Path] = field(default_factory=list)
    freed_bytes: int = 0
    stale_temps: int = 0
    stale_builds: int = 0


def _walk_blobs(store: FileStore, restore: bool) -> list[tuple[Path, os.stat_result]]:
    out = []
    for top in _dirs(store.stored):
        for mid in _dirs(top):
            with contextlib.suppress(OSError), os.scandir(mid) as it:
                for e in it:
                    if e.name.endswith(".blob"):
                        with contextlib.suppress(OSError):
                            out.append((Path(e.path), e.stat(follow_symlinks=False)))
                    elif restore and _DOOMED.fullmatch(e.name):
                        _restore(Path(e.path))
    return out


def _dirs(path: Path) -> list[Path]:
    try:
        with os.scandir(path) as it:
            return [Path(e.path) for e in it if e.is_dir(follow_symlinks=False)]
    except OSError:
        return []


def _restore(doomed: Path) -> None:
    """Put a blob back under its name (a GC stopped between rename and decision)."""
    blob = doomed.with_name(doomed.name.split(".gc-")[0] + ".blob")
    with contextlib.suppress(FileExistsError):
        try:
            os.link(doomed, blob)
        except OSError:
            if not blob.exists():
                os.rename(doomed, blob)
                return
    with contextlib.suppress(FileNotFoundError):
        os.unlink(doomed)


def _linked_blobs(checkout_roots: list[Path], stored: Path, report: GCReport, clean: bool) -> set[str]:
    """Resolved targets of every symlink under the checkout roots that point into the store."""
    linked: set[str] = set()
    prefix = str(stored) + os.sep
    now = time.time()
    for root in checkout_roots:
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
            for name in (*dirnames, *filenames):
                full = os.path.join(dirpath, name)
                if os.path.islink(full):
                    target = os.path.realpath(full)
                    if target.startswith(prefix):
                        linked.add(target)
            for name in list(dirnames):
                if clean and name.startswith(CREATING_PREFIX):
                    full = os.path.join(dirpath, name)
                    with contextlib.suppress(OSError):
                        if now - os.lstat(full).st_mtime > STALE_BUILD_AGE_S:
                            _remove_tree(Path(full))
                            report.stale_builds += 1
    return linked


def _remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def collect_garbage(store: FileStore, checkouts: Path, older_than_s: float, *, dry_run: bool = False,
                    now: float | None = None) -> GCReport:
    """Delete (or, with ``dry_run``, list) unused blobs older than ``older_than_s``."""
    if older_than_s < MIN_AGE_S:
        raise ValueError("the age must be at least 1h: a checkout being created could lose a blob")
    report = GCReport()
    if not dry_run:
        report.stale_temps = store.clean_stale_temps()
    threshold = (time.time() if now is None else now) - older_than_s
    blobs = _walk_blobs(store, restore=not dry_run)
    report.blobs = len(blobs)
    candidates = {str(p): (p, st) for p, st in blobs if st.st_mtime < threshold}
    report.old = len(candidates)
    if candidates or not dry_run:  # the walk also removes abandoned checkout builds
        linked = _linked_blobs([Path(os.path.realpath(checkouts))], store.stored, report, clean=not dry_run)
        for target in linked:
            if candidates.pop(target, None) is not None:
                report.linked += 1
    for path, st in candidates.values():
        if dry_run:
            try:
                again = os.stat(path)
            except OSError:
                continue
            if again.st_mtime != st.st_mtime:
                report.touched += 1
                continue
            report.deleted.append(path)
            report.freed_bytes += st.st_size
            continue
        doomed = path.with_name(f"{path.name[:-len('.blob')]}.gc-{secrets.token_hex(6)}")
        try:
            os.rename(path, doomed)
        except OSError:
            continue  # gone already, or another GC has it
        try:
            again = os.stat(doomed)
        except OSError:
            continue
        if again.st_mtime != st.st_mtime or again.st_mtime >= threshold:
            report.touched += 1
            _restore(doomed)
            continue
        with contextlib.suppress(FileNotFoundError):
            os.unlink(doomed)
        report.deleted.append(path)
        report.freed_bytes += st.st_size
        for d in (path.parent, path.parent.parent):
            try:
                d.rmdir()
            except OSError:
                break
    return report
