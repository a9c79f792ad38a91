"""Write the pack into a ZIP file, built under a temporary name and renamed when complete.

Files that are already compressed (images, movies, zstd/gzip blend files,
caches) are stored: deflating them again costs time and saves nothing.
Entry names are the pack's relative POSIX paths, checked once more here so an
archive never holds an absolute name or ``..``.
"""

from __future__ import annotations

import os
import re
import tempfile
import zipfile
from pathlib import Path

from bat_core.pack import CHUNK_SIZE, PackError, Target, Transfer, TransferIO, TransferItem

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


def resolve_zip(target: str) -> Target:
    if not target or "\0" in target:
        raise PackError(f"invalid ZIP target {target!r}")
    path = Path(os.path.abspath(os.path.expanduser(target)))
    if path.is_dir():
        raise PackError(f"target {path} is a directory, not a ZIP file")
    if path.exists() and not zipfile.is_zipfile(path):
        raise PackError(f"target {path} exists and is not a ZIP file; refusing to overwrite it")
    return Target(root=path, transfer=ZipTransfer(path), local_file=path, description=f"ZIP file {path}")


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


def compress_type(item: TransferItem) -> int:
    if item.dest.suffix.lower() in STORED_SUFFIXES:
        return zipfile.ZIP_STORED
    with open(item.read_from, "rb") as fh:
        if fh.read(4).startswith(_MAGIC_COMPRESSED):
            return zipfile.ZIP_STORED
    return zipfile.ZIP_DEFLATED


class ZipTransfer(Transfer):
    #: A ZIP file is written one entry at a time.
    workers = 1

    def __init__(self, path: Path) -> None:
        self.path = path
        self._tmp: Path | None = None
        self._zip: zipfile.ZipFile | None = None

    def start(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".partial")
        except OSError as exc:
            raise PackError(f"cannot create {self.path}: {exc.strerror or exc}") from None
        self._tmp = Path(name)
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        self._zip = zipfile.ZipFile(os.fdopen(fd, "w+b"), "w", allowZip64=True)

    def send(self, item: TransferItem, io: TransferIO) -> None:
        assert self._zip is not None
        # Files older than 1980 (the ZIP epoch) get its earliest date instead of failing.
        info = zipfile.ZipInfo.from_file(item.read_from, arcname=entry_name(item), strict_timestamps=False)
        info.compress_type = compress_type(item)
        with open(item.read_from, "rb") as src, self._zip.open(info, "w") as dst:
            while chunk := src.read(CHUNK_SIZE):
                io.check_abort()
                dst.write(chunk)
                io.progress(len(chunk))

    def finish(self, completed: bool) -> None:
        zf, tmp = self._zip, self._tmp
        self._zip = self._tmp = None
        if zf is None or tmp is None:
            return
        try:
            fp = zf.fp
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
