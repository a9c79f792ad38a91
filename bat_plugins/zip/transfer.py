"""Write the pack into a ZIP file, built under a temporary name and renamed when complete.

A ZIP file bat makes says so in its archive comment (:data:`MARKER`): an
existing file at the target is replaced only when it carries it, so a pack
never replaces a ZIP file someone else made.  The archive is written as
``.<name>.bat-<pid>-<random>.partial`` beside the target, locked while the
pack runs; a later pack removes such files whose owner is gone.

Files that are already compressed (images, movies, zstd/gzip blend files,
caches) are stored: deflating them again costs time and saves nothing.
Entry names are the pack's relative POSIX paths; the plan has checked them
against the ZIP rules (:func:`zip_layout_rules`), and they are checked once
more here so an archive never holds an absolute name or ``..``.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
import zipfile
from collections.abc import Sequence
from pathlib import Path

from bat_core.pack import CHUNK_SIZE, PackError, Target, Transfer, TransferIO, TransferItem
from bat_core.pack.layout import BACKSLASH, CASE, DRIVE, ENCODING, LENGTH, WINDOWS, LayoutRules, Severity
from bat_core.pack.leftovers import lock, owner_of, remove_abandoned_partials
from bat_core.pack.sources import check_unchanged, open_source

#: The archive comment of every ZIP file bat packs (what lets a later pack replace it).
MARKER = b"Packed by bat (Blender Asset Tracer): bat pack"

#: Suffixes of formats that are compressed already.
STORED_SUFFIXES = frozenset({
    # images
    ".png", ".jpg", ".jpeg", ".jp2", ".j2c", ".webp", ".gif", ".avif", ".heic", ".exr",
    # movies and sound
    ".mp4", ".m4v", ".mov", ".mkv", ".avi", ".webm", ".ogv", ".ogg", ".oga", ".mp3", ".m4a",
    ".aac", ".flac", ".opus", ".wma", ".wmv", ".flv", ".mpg", ".mpeg",
    # archives, caches and fonts with their own compression
    ".zip", ".gz", ".bz2", ".xz", ".zst", ".7z", ".rar", ".abc", ".vdb", ".usdz", ".usdc",
    ".woff", ".woff2",
})

_MAGIC_COMPRESSED = (b"\x28\xb5\x2f\xfd", b"\x1f\x8b")  # zstd, gzip (compressed blend files)
_BAD_PART = re.compile(r"^(\.\.?|[A-Za-z]:)$")


def made_by_bat(path: Path) -> bool:
    """``path`` is a ZIP file a bat pack wrote (its archive comment says so)."""
    try:
        with zipfile.ZipFile(path) as zf:
            return zf.comment.startswith(MARKER)
    except (OSError, zipfile.BadZipFile):
        return False


def _check_existing(path: Path) -> None:
    if path.is_dir():
        raise PackError(f"target {path} is a directory, not a ZIP file")
    if not os.path.lexists(path):
        return
    if path.is_symlink() or not path.is_file():
        raise PackError(f"target {path} exists and is not a ZIP file; refusing to replace it")
    if not zipfile.is_zipfile(path):
        raise PackError(f"target {path} exists and is not a ZIP file; refusing to overwrite it")
    if not made_by_bat(path):
        raise PackError(f"target {path} is a ZIP file bat did not make; refusing to replace it "
                        "(move it away, or choose another name)")


def resolve_zip(target: str) -> Target:
    if not target or "\0" in target:
        raise PackError(f"invalid ZIP target {target!r}")
    path = Path(os.path.abspath(os.path.expanduser(target)))
    _check_existing(path)
    return Target(root=path, transfer=ZipTransfer(path), local_file=path, description=f"ZIP file {path}")


def zip_layout_rules() -> LayoutRules:
    """A ZIP file holds any name, but an entry must extract to the same place everywhere.

    Names that differ only in case are errors: a ZIP file is made to be opened
    elsewhere, and macOS and Windows both merge them (one file is lost).  What
    only Windows refuses (``CON``, a trailing dot) is a warning.
    """
    return LayoutRules(
        severities={BACKSLASH: Severity.ERROR, DRIVE: Severity.ERROR, ENCODING: Severity.ERROR,
                    CASE: Severity.ERROR, WINDOWS: Severity.WARNING, LENGTH: Severity.WARNING},
        max_name_bytes=255)


def entry_name(item: TransferItem) -> str:
    """The archive name of an item; refuses anything that could land outside on extraction."""
    name = item.dest.as_posix()
    parts = re.split(r"[/\\]", name)
    if name.startswith(("/", "\\")) or any(not p or _BAD_PART.match(p) for p in parts):
        raise PackError(f"refusing the ZIP entry name {name!r} (for {item.source})")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise PackError(f"cannot store {item.source} in a ZIP file: its name is not valid UTF-8") from None
    return name


def compress_type(item: TransferItem, head: bytes) -> int:
    if item.dest.suffix.lower() in STORED_SUFFIXES or head.startswith(_MAGIC_COMPRESSED):
        return zipfile.ZIP_STORED
    return zipfile.ZIP_DEFLATED


class ZipTransfer(Transfer):
    #: A ZIP file is written one entry at a time.
    workers = 1

    def __init__(self, path: Path) -> None:
        self.path = path
        self._tmp: Path | None = None
        self._zip: zipfile.ZipFile | None = None
        self._real: str | None = None

    def layout_rules(self) -> LayoutRules:
        return zip_layout_rules()

    def owns(self, real_path: str) -> bool:
        if self._real is None:
            self._real = os.path.realpath(self.path)
        real = self._real
        if real_path == real:
            return True
        head, name = os.path.split(real_path)
        return (head == os.path.dirname(real) and name.startswith(f".{self.path.name}.")
                and owner_of(name) is not None)

    def preflight(self, items: Sequence[TransferItem]) -> None:
        _check_existing(self.path)  # it may have appeared since the target was resolved
        remove_abandoned_partials(self.path.parent, prefix=f".{self.path.name}.")

    def start(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.bat-{os.getpid()}-",
                                        suffix=".partial")
        except OSError as exc:
            raise PackError(f"cannot create {self.path}: {exc.strerror or exc}") from None
        lock(fd)
        self._tmp = Path(name)
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        self._zip = zipfile.ZipFile(os.fdopen(fd, "w+b"), "w", allowZip64=True)

    def send(self, item: TransferItem, io: TransferIO) -> None:
        assert self._zip is not None
        src, before = open_source(item.read_from)
        try:
            # Files older than 1980 (the ZIP epoch) get its earliest date instead of failing.
            stamp = time.localtime(before.st_mtime)
            date_time = max((stamp.tm_year, stamp.tm_mon, stamp.tm_mday, stamp.tm_hour, stamp.tm_min,
                             stamp.tm_sec), (1980, 1, 1, 0, 0, 0))
            info = zipfile.ZipInfo(entry_name(item), date_time=date_time)
            info.external_attr = (before.st_mode & 0xFFFF) << 16
            info.file_size = before.st_size
            info.compress_type = compress_type(item, os.pread(src, 4, 0))
            with self._zip.open(info, "w", force_zip64=before.st_size > 0x7FFFFFFF) as dst:
                while chunk := os.read(src, CHUNK_SIZE):
                    io.check_abort()
                    check_unchanged(item.source, src, before)
                    dst.write(chunk)
                    io.progress(len(chunk))
            check_unchanged(item.source, src, before)
        finally:
            os.close(src)

    def finish(self, completed: bool) -> None:
        zf, tmp = self._zip, self._tmp
        self._zip = self._tmp = None
        if zf is None or tmp is None:
            return
        try:
            fp = zf.fp
            if completed:
                zf.comment = MARKER
            zf.close()
            if fp is not None:
                fp.close()
            if completed:
                os.replace(tmp, self.path)
                return
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        tmp.unlink(missing_ok=True)
