"""Checkouts: directories of relative symlinks into the store, made all at once.

A checkout is built under a fresh hidden name beside its final place (same
parent, so the relative link targets are already right) and then renamed into
place with a rename that refuses to replace anything.  So a worker never sees
half a checkout, an existing checkout (or anything else) is never overwritten,
and a failure removes only the hidden directory and the parent directories
this very request created.  Parents are never created through an existing
symbolic link, so nothing lands outside the checkouts root.

Every blob is touched before it is linked and checked again after linking:
``bat shaman gc`` re-checks a blob's mtime before deleting it, so a checkout
being created keeps what it links (see :mod:`.gc`).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import os
import re
import secrets
import shutil
import stat
import string
import time
from collections.abc import Callable
from pathlib import Path

from .definitions import path_problem
from .store import FileStore, Pair

CREATING_PREFIX = ".bat-creating-"
V2_ID = re.compile(r"[A-Za-z0-9_]{2,200}")
# Flamenco 3 forbids these anywhere in a checkout path; so do we (they also
# break Windows workers).
_V3_FORBIDDEN = re.compile(r"[?*:;{}\\]")
SUFFIX_ALPHABET = string.ascii_lowercase + string.digits
UNIQUE_ATTEMPTS = 10


class CheckoutError(Exception):
    """Base of the reasons a checkout is refused."""


class CheckoutExists(CheckoutError):
    pass


class MissingFiles(CheckoutError):
    def __init__(self, paths: list[str]) -> None:
        super().__init__(f"{len(paths)} file(s) not stored")
        self.paths = paths


class UnsafeLocation(CheckoutError):
    pass


def v2_location(checkout_id: str) -> str:
    """Flamenco 2's layout: ``<last two characters>/<ID>``."""
    return f"{checkout_id[-2:]}/{checkout_id}"


def v3_location_problem(location: str) -> str | None:
    """Why a v3 ``checkoutPath`` is refused, or None."""
    if _V3_FORBIDDEN.search(location):
        return "must not contain any of ? * : ; { } \\"
    problem = path_problem(location)
    if problem:
        return problem
    if any(part.startswith(CREATING_PREFIX) for part in location.split("/")):
        return f"components must not start with {CREATING_PREFIX}"
    # Room for the "-xxxx" a clash adds, and for the hidden build name beside it.
    if any(len(part.encode("utf-8")) > 240 for part in location.split("/")):
        return "path component longer than 240 bytes"
    return None


# -- an exclusive rename ------------------------------------------------------

_RENAME_NOREPLACE = 1
_AT_FDCWD = -100
_renameat2: Callable[..., int] | None = None
if os.name == "posix":
    try:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        _renameat2 = _libc.renameat2
    except (OSError, AttributeError):
        _renameat2 = None


def rename_noreplace(src: Path, dst: Path) -> None:
    """Rename ``src`` to ``dst``; FileExistsError if anything is at ``dst``.

    Linux: ``renameat2(RENAME_NOREPLACE)``.  Where that is missing (other
    systems, NFS), ``dst`` is first reserved with an exclusive ``mkdir`` and
    the directory renamed over that empty reservation.  Windows' rename never
    replaces.
    """
    if _renameat2 is not None:
        rc = _renameat2(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), _RENAME_NOREPLACE)
        if rc == 0:
            return
        err = ctypes.get_errno()
        if err in (errno.EEXIST, errno.ENOTEMPTY):
            raise FileExistsError(err, os.strerror(err), str(dst))
        if err not in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise OSError(err, os.strerror(err), str(dst))
    if os.name == "nt":
        os.rename(src, dst)
        return
    os.mkdir(dst)  # FileExistsError when taken
    try:
        os.rename(src, dst)
    except OSError:
        with contextlib.suppress(OSError):
            os.rmdir(dst)
        raise


# -- building -------------------------------------------------------------------


def _make_parents(root: Path, parts: list[str], created: list[Path]) -> Path:
    """Create ``root/parts...`` as real directories, never through a symlink."""
    current = root
    for part in parts:
        current = current / part
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            try:
                os.mkdir(current)
                created.append(current)
                continue
            except FileExistsError:
                st = os.lstat(current)
        if stat.S_ISLNK(st.st_mode):
            raise UnsafeLocation(f"{current.relative_to(root).as_posix()} is a symbolic link")
        if not stat.S_ISDIR(st.st_mode):
            raise UnsafeLocation(f"{current.relative_to(root).as_posix()} is not a directory")
    return current


def _candidates(name: str, unique: bool) -> list[str]:
    if not unique:
        return [name]
    return [name] + [f"{name}-{''.join(secrets.choice(SUFFIX_ALPHABET) for _ in range(4))}"
                     for _ in range(UNIQUE_ATTEMPTS - 1)]


def _touch_all(store: FileStore, pairs: dict[Pair, str], retry_s: float) -> list[Pair]:
    """Touch every blob; the pairs still missing after a short wait (a GC restoring one)."""
    missing = [p for p in pairs if not store.touch(p)]
    deadline = time.monotonic() + retry_s
    while missing and time.monotonic() < deadline:
        time.sleep(0.05)
        missing = [p for p in missing if not store.touch(p)]
    return missing


def holds_exactly(store: FileStore, root: Path, location: str, specs: list[tuple[str, Pair]]) -> bool:
    """Whether ``root/location`` is already the checkout ``specs`` asks for, and nothing else.

    Real directories all the way down (no symbolic link on the way), one link
    per path with the very target this module would write, no other entry.
    That is what a request whose answer was lost (the server died before it
    could answer) leaves, so the client's re-run may be told it is there.
    """
    top = root / location
    current = root
    try:
        for part in location.split("/"):
            current = current / part
            if not stat.S_ISDIR(os.lstat(current).st_mode):
                return False
    except OSError:
        return False
    links = {path: os.path.relpath(store.blob_path(pair), (top / path).parent) for path, pair in specs}
    dirs = {parent.as_posix() for path in links for parent in Path(path).parents if parent != Path(".")}
    found = 0
    for dirpath, dirnames, filenames in os.walk(top):
        here = Path(dirpath).relative_to(top)
        for name in (*dirnames, *filenames):
            rel = (here / name).as_posix()
            full = os.path.join(dirpath, name)
            if os.path.islink(full):
                try:
                    if links.get(rel) != os.readlink(full):
                        return False
                except OSError:
                    return False
                found += 1
            elif rel not in dirs or name in filenames:
                return False
    return found == len(links)


def create_checkout(store: FileStore, root: Path, location: str, specs: list[tuple[str, Pair]],
                    *, unique: bool, retry_s: float = 1.0) -> str:
    """Create the checkout ``root/location`` (``-xxxx`` added while taken if ``unique``).

    ``specs`` are (path inside the checkout, blob) pairs, already validated.
    Returns the location actually used, ``/``-separated and relative to ``root``.
    Without ``unique``, a checkout already at ``location`` that holds exactly
    ``specs`` counts as made (:func:`holds_exactly`); any other is CheckoutExists.
    """
    first_path: dict[Pair, str] = {}
    for path, pair in specs:
        first_path.setdefault(pair, path)
    missing = _touch_all(store, first_path, 0.0)
    if missing:
        gone = set(missing)
        raise MissingFiles([path for path, pair in specs if pair in gone])

    parts = location.split("/")
    if not unique and os.path.lexists(root / location):
        if holds_exactly(store, root, location, specs):
            return location
        raise CheckoutExists(location)
    created: list[Path] = []
    build: Path | None = None
    try:
        for attempt in range(10):
            parent = _make_parents(root, parts[:-1], created)
            candidate = parent / f"{CREATING_PREFIX}{secrets.token_hex(8)}"
            try:
                os.mkdir(candidate)
            except FileNotFoundError:
                # A parent made by a failing request beside us was just removed again.
                if attempt == 9:
                    raise
                continue
            build = candidate
            break
        assert build is not None
        # Links are relative to their own directory; the build directory sits
        # beside the final one, so the same text is right before and after the rename.
        # Strings, not Paths, in this loop: a checkout is hundreds of links. The
        # paths are validated (no '.', '..' or empty part), so a link k directories
        # deep reaches the store through k '..' and the path from the checkout's top.
        to_store = os.path.relpath(store.stored, parent / parts[-1])
        top = str(build)
        made_dirs: set[str] = set()
        for path, pair in specs:
            rel_dir, _, _ = path.rpartition("/")
            if rel_dir and rel_dir not in made_dirs:
                os.makedirs(f"{top}/{rel_dir}", exist_ok=True)
                made_dirs.add(rel_dir)
            up = "../" * path.count("/")
            os.symlink(f"{up}{to_store}/{store.blob_name(pair)}", f"{top}/{path}")
        # A GC may have moved a blob away between the touch and the link: check again.
        missing = _touch_all(store, first_path, retry_s)
        if missing:
            gone = set(missing)
            raise MissingFiles([path for path, pair in specs if pair in gone])
        for name in _candidates(parts[-1], unique):
            try:
                rename_noreplace(build, parent / name)
            except FileExistsError:
                continue
            build = None
            return "/".join([*parts[:-1], name])
        if not unique and holds_exactly(store, root, location, specs):
            return location  # the same checkout, made by a twin request a moment earlier
        raise CheckoutExists(location)
    finally:
        if build is not None:
            shutil.rmtree(build, ignore_errors=True)
        for d in reversed(created):
            with contextlib.suppress(OSError):
                os.rmdir(d)
