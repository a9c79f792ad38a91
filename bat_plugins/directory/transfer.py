"""Copy files into a local directory: never over a file bat did not write, never through a symlink.

The target may already hold anything — even the project itself.  Before a
byte is written (:meth:`DirectoryTransfer.preflight`) every destination is
checked: nothing there, a file an earlier pack into this target wrote and
nobody changed since (the manifest, see :mod:`.manifest`), or a file with
exactly the bytes to be written (left as it is).  Anything else — another
file, a directory, a symlink in the way — refuses the pack with a line
naming it.

Directories are created one level at a time below descriptors opened with
``O_NOFOLLOW`` (:mod:`.tree`).  A file is written as
``.<name>.bat-<pid>-<random>.partial`` beside its place, read from a
descriptor checked to be a regular file, watched for changes while it is
copied, and renamed into place only when complete; the journal lists it
first, so a pack killed half-way is cleaned up by the next one.  An
interrupted pack removes the partial file and the directories it made that
stayed empty.

Copies are made by the kernel (``copy_file_range``, in chunks so an abort is
seen between them), falling back to reads and writes where it is not
available.  A rewritten blend file, a temporary file of the packer's, is
moved into place when it is on the target's file system.  A file already in
the target is skipped when it has the source's size and modification time
(copies keep their source's time, as ``rsync`` does), or else the same size
and the same bytes.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import secrets
import stat
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path, PurePosixPath

from bat_core.pack import CHUNK_SIZE, PackError, Target, Transfer, TransferIO, TransferItem
from bat_core.pack.layout import (
    BACKSLASH,
    CASE,
    DRIVE,
    ENCODING,
    LENGTH,
    WINDOWS,
    LayoutRules,
    Severity,
)
from bat_core.pack.leftovers import lock, owner_of, partial_name, process_gone
from bat_core.pack.sources import check_unchanged, kind_of, open_source

from . import tree
from .manifest import JOURNAL, STATE_DIR, Journal, Manifest, read_journal, record_of
from .tree import Dir

log = logging.getLogger(__name__)


def resolve_directory(target: str) -> Target:
    """Validate the target string as a directory; creates nothing (that is left to ``preflight``)."""
    if not target or "\0" in target:
        raise PackError(f"invalid target directory {target!r}")
    path = Path(os.path.abspath(os.path.expanduser(target)))
    if path.exists() and not path.is_dir():
        raise PackError(f"target {path} exists and is not a directory "
                        "(a ZIP target needs a name ending in .zip, or --target-scheme zip)")
    return Target(root=path, transfer=DirectoryTransfer(path), local_dir=path, description=f"directory {path}")


#: Kernel copies go in chunks this big, with an abort check between them.
KERNEL_CHUNK = 16 * CHUNK_SIZE

#: ``copy_file_range`` errors that mean "not here" (other file systems, old kernels):
#: the rest of the file is copied with reads and writes.
_NO_KERNEL_COPY = {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.EBADF, errno.EPERM}

#: How many files a refusal names.
_NAMED = 5

#: How many directories of the target a pack keeps open (well below the usual limit of 1024 descriptors).
_OPEN_DIRS = 256


def write_all(fd: int, data: memoryview) -> None:
    """Write every byte of ``data`` (``os.write`` may write less than asked)."""
    while data:
        n = os.write(fd, data)
        data = data[n:]


def copy_contents(src: int, dst: int, io: TransferIO, check: Callable[[], None] | None = None,
                  size: int | None = None) -> None:
    """Copy from file descriptor ``src`` to ``dst`` (both at their current offsets).

    ``check`` is called between chunks (it raises when the source changes).
    With ``size`` (the source's size when it was opened) the kernel copy stops
    there rather than asking once more to find the end: most packed files take
    one call.  The caller checks afterwards that the source did not change
    (a file that grew is caught then; one that shrank ends the copy early).
    """
    copy_range = getattr(os, "copy_file_range", None)
    copied = 0
    while copy_range is not None:
        if size is not None and copied >= size:
            return
        io.check_abort()
        if check is not None and copied:
            check()
        try:
            n = copy_range(src, dst, KERNEL_CHUNK)
        except OSError as exc:
            if exc.errno not in _NO_KERNEL_COPY:
                raise
            break
        if not n:
            return
        copied += n
        io.progress(n)
    while chunk := os.read(src, CHUNK_SIZE):
        io.check_abort()
        if check is not None:
            check()
        write_all(dst, memoryview(chunk))
        io.progress(len(chunk))


def _same_bytes(a: int, b: int, io: TransferIO | None) -> bool:
    while True:
        if io is not None:
            io.check_abort()
        ca = os.read(a, CHUNK_SIZE)
        if ca != os.read(b, CHUNK_SIZE):
            return False
        if not ca:
            return True


def same_content(source: Path, parent: Dir, name: str, io: TransferIO | None) -> bool:
    """The file ``name`` in ``parent`` holds exactly the bytes of ``source``."""
    src, _ = open_source(source)
    try:
        try:
            dst = parent.open(name, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        except OSError:
            return False
        try:
            return stat.S_ISREG(os.fstat(dst).st_mode) and _same_bytes(src, dst, io)
        finally:
            os.close(dst)
    finally:
        os.close(src)


def _mtime_ns(path: Path) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


def _nearest_existing(path: Path) -> Path:
    while not path.is_dir() and path.parent != path:
        path = path.parent
    return path


def case_insensitive(directory: Path) -> bool:
    """Whether the file system of ``directory`` takes ``A`` and ``a`` for one name (without writing)."""
    candidates: list[tuple[Path, str]] = []
    with contextlib.suppress(OSError), os.scandir(directory) as it:
        for entry in it:
            if entry.name != entry.name.swapcase():
                candidates.append((directory, entry.name))
                break
    here = directory
    while not candidates and here.parent != here:
        if here.name != here.name.swapcase():
            candidates.append((here.parent, here.name))
        here = here.parent
    for parent, name in candidates:
        try:
            st = os.lstat(parent / name)
            other = os.lstat(parent / name.swapcase())
        except FileNotFoundError:
            return False
        except OSError:
            continue
        return os.path.samestat(st, other)
    return sys.platform in ("darwin", "win32")


class DirectoryTransfer(Transfer):
    workers = 4

    def __init__(self, root: Path) -> None:
        self.root = root
        self._root: Dir | None = None
        self._state: Dir | None = None
        self._made_root: list[Path] = []  # the root and its parents, when this pack created them
        self._made: list[PurePosixPath] = []  # directories this pack created in the target
        self._manifest = Manifest()
        self._written: dict[str, tuple[int, int]] = {}
        self._identical: set[PurePosixPath] = set()
        #: Destinations the preflight found up to date (this target's copy, unchanged, with the
        #: source's size and time): ``prepare`` leaves them out, so they are not looked at again.
        self._current: set[PurePosixPath] = set()
        #: Destinations the preflight found free (nothing there, or no directory yet): ``is_present``
        #: answers no without looking again; ``send`` still checks before it writes.
        self._absent: set[PurePosixPath] = set()
        self._dirs: dict[tuple[str, ...], Dir] = {}  # directories of the target open for this pack
        self._journal = Journal(self._state_dir)
        self._lock = threading.Lock()
        self._seen_root: str | None = None
        self._seen: Manifest | None = None

    # --- planning: what the target holds and can hold -------------------------------------

    def layout_rules(self) -> LayoutRules:
        base = _nearest_existing(self.root)
        try:
            name_max = int(os.pathconf(base, "PC_NAME_MAX"))
        except (OSError, ValueError, AttributeError):
            name_max = 255
        windows = Severity.ERROR if os.name == "nt" else Severity.WARNING
        case = Severity.ERROR if case_insensitive(base) else Severity.WARNING
        return LayoutRules(
            severities={CASE: case, BACKSLASH: windows, DRIVE: windows, WINDOWS: windows,
                        ENCODING: Severity.ALLOWED, LENGTH: Severity.ERROR},
            reserved=frozenset({STATE_DIR}), max_name_bytes=name_max)

    def owns(self, real_path: str) -> bool:
        if self._seen_root is None:
            if not self.root.is_dir():
                return False
            self._seen_root = os.path.join(os.path.realpath(self.root), "")
            with contextlib.suppress(OSError), tree.open_root(self.root) as root:
                self._seen = self._read_records(root)
        if not real_path.startswith(self._seen_root):
            return False
        rel = real_path[len(self._seen_root):].replace(os.sep, "/")
        first, _, _ = rel.partition("/")
        if first == STATE_DIR or owner_of(rel.rpartition("/")[2]) is not None:
            return True
        return self._seen is not None and rel in self._seen.files

    def _read_records(self, root: Dir) -> Manifest:
        """The manifest with the files of every journal (finished or not) added: read-only."""
        state = tree.open_dir(root, [STATE_DIR], create=False)
        if state is None:
            return Manifest()
        with state:
            manifest = Manifest.read(state)
            for name in state.names():
                if JOURNAL.match(name):
                    for entry in read_journal(state, name):
                        if entry["op"] == "done":
                            manifest.files[entry["path"]] = (int(entry.get("size", -1)),
                                                             int(entry.get("mtime_ns", -1)))
        return manifest

    # --- before the transfers ----------------------------------------------------------------

    def preflight(self, items: Sequence[TransferItem]) -> None:
        """Refuse, naming them, destinations taken by anything bat did not write; write nothing else."""
        self._open()
        try:
            problems = self._check_destinations(items)
        except BaseException:
            self._close(completed=False)
            raise
        if problems:
            self._close(completed=False)
            more = f"; and {len(problems) - _NAMED} more" if len(problems) > _NAMED else ""
            raise PackError(f"refusing to pack into {self.root}: {'; '.join(problems[:_NAMED])}{more} "
                            "(move them away, or choose another target)")

    def start(self) -> None:
        self._open()

    def _open(self) -> None:
        """Create the root if needed, lock it, and clean up after packs that were killed."""
        if self._root is not None:
            return
        self._made_root = []
        missing = []
        here = self.root
        while not os.path.lexists(here) and here.parent != here:
            missing.append(here)
            here = here.parent
        try:
            for path in reversed(missing):
                try:
                    os.mkdir(path)
                    self._made_root.append(path)
                except FileExistsError:
                    pass
            root = tree.open_root(self.root)
        except OSError as exc:
            self._remove_made_root()
            if exc.errno in (errno.ENOTDIR, errno.EEXIST):
                raise PackError(f"cannot create target directory {self.root}: a file is in the way") from None
            raise PackError(f"cannot create target directory {self.root}: {exc.strerror or exc}") from None
        if not os.access(self.root, os.W_OK | os.X_OK):
            root.close()
            self._remove_made_root()
            raise PackError(f"target directory {self.root} is not writable")
        if root.fd is not None and lock(root.fd) is False:
            root.close()
            raise PackError(f"another bat pack is writing into {self.root}; pack again when it is done")
        self._root = root
        try:
            self._recover()
            self._manifest = Manifest.read(self._state)
        except BaseException:
            self._close(completed=False)
            raise

    def _state_dir(self) -> Dir:
        if self._state is None:
            assert self._root is not None
            made: list[PurePosixPath] = []
            self._state = tree.open_dir(self._root, [STATE_DIR], create=True, made=made)
            assert self._state is not None
        return self._state

    def _recover(self) -> None:
        """Undo what killed packs left: partial files and empty directories; keep their finished files."""
        assert self._root is not None
        state = self._state = tree.open_dir(self._root, [STATE_DIR], create=False)
        if state is None:
            return
        stale = []
        for name in state.names():
            match = JOURNAL.match(name)
            if match and name != self._journal.name and process_gone(int(match.group(1))):
                stale.append((name, int(match.group(1))))
        if not stale:
            return
        manifest = Manifest.read(state)
        for name, pid in stale:
            entries = read_journal(state, name)
            made = []
            for entry in entries:
                rel = PurePosixPath(entry["path"])
                if entry["op"] == "partial" and owner_of(rel.name) == pid:
                    self._remove(rel)
                elif entry["op"] == "mkdir":
                    made.append(rel)
                elif entry["op"] == "done":
                    st = self._lstat(rel)
                    if st is not None and record_of(st) == (entry.get("size"), entry.get("mtime_ns")):
                        manifest.files[str(rel)] = record_of(st)
            self._remove_empty(made)
            log.info("cleaned up after bat process %d in %s, which is gone", pid, self.root)
        manifest.write(state)
        for name, _ in stale:
            with contextlib.suppress(OSError):
                state.unlink(name)

    def _lstat(self, rel: PurePosixPath) -> os.stat_result | None:
        assert self._root is not None
        try:
            parent = tree.open_dir(self._root, rel.parts[:-1], create=False)
        except PackError:
            return None
        if parent is None:
            return None
        with parent:
            return parent.lstat(rel.name)

    def _remove(self, rel: PurePosixPath) -> None:
        assert self._root is not None
        with contextlib.suppress(OSError, PackError):
            parent = tree.open_dir(self._root, rel.parts[:-1], create=False)
            if parent is not None:
                with parent:
                    parent.unlink(rel.name)

    def _remove_empty(self, made: Sequence[PurePosixPath]) -> None:
        """Remove the directories ``made`` that are empty, deepest first."""
        assert self._root is not None
        for rel in sorted(set(made), key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(OSError, PackError):
                parent = tree.open_dir(self._root, rel.parts[:-1], create=False)
                if parent is not None:
                    with parent:
                        parent.rmdir(rel.name)

    def _check_destinations(self, items: Sequence[TransferItem]) -> list[str]:
        """What is in the way of each item: the problems found, one message each."""
        assert self._root is not None
        problems: list[str] = []
        dirs: dict[str, str | None] = {}  # relative directory -> "" real, None missing, else what is wrong
        root = self._root
        for found in (self._identical, self._current, self._absent):  # this pack's answers only
            found.clear()
        for item in items:
            why = None
            state: str | None = ""
            parts = item.dest.parts
            rel = ""
            for part in parts[:-1]:
                rel = f"{rel}/{part}" if rel else part
                state = dirs.get(rel, "?")
                if state == "?":
                    state = dirs[rel] = self._dir_state(root, rel)
                if state != "":
                    why = state
                    break
            else:
                why = self._file_state(root, item)
            if state is None:
                self._absent.add(item.dest)  # its directory is not there yet
            if why:
                problems.append(why)
        return list(dict.fromkeys(problems))

    def _dir_state(self, root: Dir, rel: str) -> str | None:
        """"" for a real directory, None when missing, else what is in the way."""
        path = os.path.join(root.path, rel)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            return f"{path}: {exc.strerror or exc}"
        if stat.S_ISDIR(st.st_mode):
            return ""
        if stat.S_ISLNK(st.st_mode):
            return (f"{path} is a symbolic link (to {os.readlink(path)}); "
                    "a pack writes only into real directories of its target")
        return f"{path} is a file where a directory is needed"

    def _file_state(self, root: Dir, item: TransferItem) -> str | None:
        path = os.path.join(root.path, str(item.dest))
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            self._absent.add(item.dest)
            return None
        except OSError as exc:
            return f"{path}: {exc.strerror or exc}"
        if not stat.S_ISREG(st.st_mode):
            return f"{path} is {kind_of(st.st_mode)}"
        if self._manifest.owns(str(item.dest), st):
            if not item.temporary and st.st_size == item.size and _mtime_ns(item.read_from) == st.st_mtime_ns:
                self._current.add(item.dest)
            return None
        parent = tree.open_dir(root, item.dest.parts[:-1], create=False)
        if parent is not None:
            with parent:
                try:
                    if st.st_size == item.size and same_content(item.read_from, parent, item.dest.name, None):
                        self._identical.add(item.dest)
                        return None
                except OSError:
                    pass
        return f"{path} exists and was not written by a pack into this target (or was changed since)"

    # --- the transfers -------------------------------------------------------------------

    @contextlib.contextmanager
    def _parent(self, dest: PurePosixPath, create: bool) -> Iterator[Dir | None]:
        """The directory ``dest`` goes into, checked (and made) one level at a time.

        Directories already opened stay open for the rest of the pack (up to
        :data:`_OPEN_DIRS`): the next file in one is written through the same
        descriptor, without walking the path again.
        """
        assert self._root is not None, "start() or preflight() first"
        key = dest.parts[:-1]
        with self._lock:
            handle = self._dirs.get(key)
            start, depth = self._root, 0
            if handle is None:
                for n in range(len(key) - 1, 0, -1):  # the deepest ancestor already open
                    if key[:n] in self._dirs:
                        start, depth = self._dirs[key[:n]], n
                        break
        if handle is not None:
            yield handle
            return
        made: list[PurePosixPath] = []
        try:
            handle = tree.open_dir(start, key[depth:], create=create, prefix=key[:depth],
                                   before_mkdir=lambda rel: self._journal.log("mkdir", rel), made=made)
        finally:
            if made:
                with self._lock:
                    self._made.extend(made)
        if handle is None:
            yield None
            return
        with self._lock:
            keep = key not in self._dirs and len(self._dirs) < _OPEN_DIRS
            if keep:
                self._dirs[key] = handle
        try:
            yield handle
        finally:
            if not keep:
                handle.close()

    def prepare(self, items: Sequence[TransferItem], io: TransferIO) -> Sequence[TransferItem]:
        if not self._current:
            return items
        return [item for item in items if item.dest not in self._current]

    def is_present(self, item: TransferItem, io: TransferIO) -> bool:
        if item.dest in self._identical:
            return True
        if item.dest in self._absent:
            return False
        with self._parent(item.dest, create=False) as parent:
            if parent is None:
                return False
            st = parent.lstat(item.dest.name)
            if st is None or not stat.S_ISREG(st.st_mode) or st.st_size != item.size:
                return False
            owned = self._manifest.owns(str(item.dest), st)
            if owned and not item.temporary and _mtime_ns(item.read_from) == st.st_mtime_ns:
                return True  # same size and time: a copy this target's earlier pack made
            if same_content(item.read_from, parent, item.dest.name, io):
                if not owned and str(item.dest) in self._manifest.files:
                    self._record(item.dest, st)  # still ours: remember it as it is now
                return True
            return False

    def send(self, item: TransferItem, io: TransferIO) -> None:
        with self._parent(item.dest, create=True) as parent:
            assert parent is not None
            name = item.dest.name
            st = parent.lstat(name)
            if st is not None and not (stat.S_ISREG(st.st_mode) and self._manifest.owns(str(item.dest), st)):
                what = kind_of(st.st_mode) if not stat.S_ISREG(st.st_mode) else "a file bat did not write"
                raise PackError(f"refusing to replace {os.path.join(parent.path, name)}: it is {what}")
            if item.temporary and self._move(item, parent, io):
                return
            self._copy(item, parent, io)

    def _copy(self, item: TransferItem, parent: Dir, io: TransferIO) -> None:
        name = item.dest.name
        tmp = partial_name(name, secrets.token_hex(4))
        where = str(item.dest)
        self._journal.log("partial", f"{where[:len(where) - len(name)]}{tmp}")
        src, before = open_source(item.read_from)
        try:
            fd = parent.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            try:
                try:
                    copy_contents(src, fd, io, lambda: check_unchanged(item.source, src, before), before.st_size)
                    check_unchanged(item.source, src, before)
                    os.chmod(fd, stat.S_IMODE(before.st_mode))
                    os.utime(fd, ns=(before.st_atime_ns, before.st_mtime_ns))
                    written = os.fstat(fd)
                finally:
                    os.close(fd)
                parent.replace(tmp, name)
            except BaseException:
                with contextlib.suppress(OSError):
                    parent.unlink(tmp)
                raise
        finally:
            os.close(src)
        self._done(item.dest, written)

    def _move(self, item: TransferItem, parent: Dir, io: TransferIO) -> bool:
        """Rename the packer's temporary file into place; False when it is on another file system."""
        io.check_abort()
        try:
            parent.move_in(item.read_from, item.dest.name)
        except OSError as exc:
            if exc.errno == errno.EXDEV:
                return False
            raise
        st = parent.lstat(item.dest.name)
        if st is not None:
            self._done(item.dest, st)
        io.progress(item.size)
        return True

    def _record(self, dest: PurePosixPath, st: os.stat_result) -> None:
        with self._lock:
            self._written[str(dest)] = record_of(st)

    def _done(self, dest: PurePosixPath, st: os.stat_result) -> None:
        self._absent.discard(dest)
        self._record(dest, st)
        size, mtime_ns = record_of(st)
        self._journal.log("done", dest, size=size, mtime_ns=mtime_ns)

    # --- the end -------------------------------------------------------------------------

    def finish(self, completed: bool) -> None:
        self._close(completed)

    def _close(self, completed: bool) -> None:
        """Record what was written, remove what an interrupted pack made and left empty, unlock."""
        root = self._root
        if root is None:
            return
        try:
            with self._lock:
                for handle in self._dirs.values():
                    handle.close()
                self._dirs.clear()
            if not completed:
                self._remove_empty(self._made)
            if self._written:
                manifest = Manifest({**self._manifest.files, **self._written})
                for rel in list(manifest.files):
                    if self._gone(root, rel):
                        del manifest.files[rel]
                if manifest.files != self._manifest.files:  # a re-pack that changed nothing writes nothing
                    manifest.write(self._state_dir())
                self._manifest = manifest
                self._written = {}
            self._journal.close(self._state, remove=True)
            if self._state is not None and not self._state.names():
                self._state.close()
                self._state = None
                with contextlib.suppress(OSError):
                    root.rmdir(STATE_DIR)
            if not completed:
                self._remove_made_root()
        finally:
            if self._state is not None:
                self._state.close()
                self._state = None
            root.close()
            self._root = None
            self._made = []

    @staticmethod
    def _gone(root: Dir, rel: str) -> bool:
        try:
            return not stat.S_ISREG(os.lstat(root._at(rel), dir_fd=root.fd).st_mode)
        except OSError:
            return True

    def _remove_made_root(self) -> None:
        for path in reversed(self._made_root):
            try:
                os.rmdir(path)
            except OSError:
                break
        self._made_root = []
