"""What a target plugin provides: the target (root + transfer) and the transfer interface.

The packer decides what goes where; a :class:`Transfer` only moves one file
at a time to a path relative to the target root.  ``send`` runs in worker
threads, so it reports bytes through :class:`TransferIO` (thread-safe) and
calls :meth:`TransferIO.check_abort` between chunks: that is what makes an
abort take effect within a second.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePath, PurePosixPath

from .errors import Aborted

#: Read and write in chunks this big: small enough to notice an abort quickly.
CHUNK_SIZE = 1 << 20


@dataclass(frozen=True)
class TransferItem:
    """One file to put into the target."""

    #: The file to read: the source, or the rewritten temporary copy of a blend file.
    read_from: Path
    #: Where it goes, relative to the target root (never absolute, never ``..``).
    dest: PurePosixPath
    size: int
    #: The original file (what the user knows it as), for messages and reports.
    source: Path
    is_blendfile: bool = False
    #: ``read_from`` is the packer's own temporary file (a rewritten blend file),
    #: deleted after the pack: a transfer may move it into place instead of copying.
    temporary: bool = False


class TransferIO:
    """Handed to :meth:`Transfer.send`: progress reporting and the abort flag."""

    def __init__(self, abort_event: threading.Event, on_bytes: Callable[[int], None]) -> None:
        self._abort = abort_event
        self._on_bytes = on_bytes

    @property
    def aborted(self) -> bool:
        return self._abort.is_set()

    def check_abort(self) -> None:
        """Raise :class:`Aborted` when the pack is being aborted; call it between chunks."""
        if self._abort.is_set():
            raise Aborted()

    def progress(self, nbytes: int) -> None:
        """``nbytes`` more bytes of the current file were transferred (or found identical)."""
        self._on_bytes(nbytes)


class Transfer(ABC):
    """Moves files into one target.  Subclass it in a target plugin.

    Life cycle: :meth:`start` on the main thread, then :meth:`is_present` and
    :meth:`send` from up to :attr:`workers` threads at once, then :meth:`finish` on the main thread,
    with ``completed=False`` after an abort or error (undo what is half done;
    files already in place may stay).
    """

    #: How many files may be sent at once.
    workers: int = 4

    def start(self) -> None:
        """Prepare the target (create the directory, open the archive...).

        Raise :class:`~bat_core.pack.PackError` with a one-line message when the
        target cannot be written.
        """
        return None

    def is_present(self, item: TransferItem, io: TransferIO) -> bool:
        """True when the target already holds this file with the same content (it is skipped).

        Called from a worker thread just before :meth:`send`.
        """
        return False

    @abstractmethod
    def send(self, item: TransferItem, io: TransferIO) -> None:
        """Put one file in place, reporting bytes with ``io.progress``.

        Must never leave a partly written file under ``item.dest``: write to a
        temporary name and rename, or rely on the target's atomic upload.
        Raise ``OSError`` (or :class:`~bat_core.pack.PackError`) on failure.
        """

    def finish(self, completed: bool) -> None:
        """Everything was sent (``completed``), or the pack stopped early."""
        return None


@dataclass
class Target:
    """A resolved pack target: where files go and how they get there."""

    #: The root as shown to the user; packed paths are ``root / dest``.  Not
    #: necessarily a local path (``s3://bucket/prefix``).
    root: PurePath
    transfer: Transfer
    #: The local directory packed files are written under (directory targets).
    local_dir: Path | None = None
    #: The local file the target writes (a ZIP file).  With ``local_dir``, this
    #: lets the packer refuse a target inside the project or over a source file.
    local_file: Path | None = None
    #: A short human description ("directory /tmp/out", "ZIP file /tmp/out.zip").
    description: str = ""

    def display(self, dest: PurePosixPath) -> str:
        """How a packed file is shown in messages and reports."""
        return str(self.root / dest)
