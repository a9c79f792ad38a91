"""The one public module for target plugins: schemes, targets, transfers, outcomes, errors.

A target plugin registers a :class:`TargetScheme` (``register_target_schemes``
hook) whose ``resolve`` turns a target string into a :class:`Target`: where
the pack lands and the :class:`Transfer` that moves files there.  The packer
plans the pack and hands the transfer engine the whole list of files; the
engine drives the transfer through rounds of :meth:`Transfer.prepare` (what
must be sent?) and :meth:`Transfer.send` (in worker threads), so a target
supplies only what differs between storage systems.

Everything here is importable without loading the packer:

    from bat_core.targets import Target, TargetScheme, Transfer, TransferItem, SendOutcome
"""

from __future__ import annotations

import enum
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath, PurePosixPath
from typing import TYPE_CHECKING, Any

from .errors import Aborted, PackError, RetryableError

if TYPE_CHECKING:
    from .pack.layout import LayoutRules

__all__ = [
    "CHUNK_SIZE",
    "Aborted",
    "PackError",
    "RetryableError",
    "SendOutcome",
    "Target",
    "TargetScheme",
    "Transfer",
    "TransferIO",
    "TransferItem",
]

#: Read and send in chunks this big: small enough to notice an abort quickly.
CHUNK_SIZE = 1 << 20


@dataclass(frozen=True)
class TargetScheme:
    """A kind of pack target (directory, zip, s3, shaman...), registered by a plugin.

    ``url_schemes`` are the URL schemes the plugin claims (``"s3"``,
    ``"shaman+http"``): a target string ``s3://...`` or ``s3:/...`` is routed to
    it by that prefix alone.  ``recognises`` is asked about target strings
    without a URL scheme (``out.zip``), in order of ``priority`` (higher first),
    then name; the ``fallback`` scheme (the directory target) takes the rest.
    ``resolve(target: str) -> Target`` raises :class:`PackError` for a string it
    cannot use.
    """

    name: str
    help: str
    resolve: Callable[[str], Any]
    recognises: Callable[[str], bool] | None = None
    url_schemes: tuple[str, ...] = ()
    fallback: bool = False
    priority: int = 0


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
    #: SHA-256 (lowercase hex) of ``read_from``'s content, when the transfer asked for checksums.
    #: Set beforehand (a file whose bytes the packer wrote itself), the engine trusts it.
    sha256: str | None = None


class SendOutcome(enum.Enum):
    """How :meth:`Transfer.send` ended (an exception says it failed)."""

    #: The file is now in place.
    SENT = "sent"
    #: The target already had it (found out while sending): counted as skipped.
    ALREADY_THERE = "already-there"
    #: Someone else is sending the same content right now: ask again next round.
    DEFERRED = "deferred"


class TransferIO:
    """Handed to :meth:`Transfer.prepare` and :meth:`Transfer.send`: progress, abort, deferral."""

    def __init__(self, abort_event: threading.Event, on_bytes: Callable[[int], None],
                 can_defer: bool = False, round: int = 1) -> None:
        self.abort_event = abort_event
        self._on_bytes = on_bytes
        #: True when this item was not deferred before and other items are still
        #: queued, so deferring it cannot stall the pack.
        self.can_defer = can_defer
        #: The round of prepare/send this call belongs to (1-based).
        self.round = round

    @property
    def aborted(self) -> bool:
        return self.abort_event.is_set()

    def check_abort(self) -> None:
        """Raise :class:`Aborted` when the pack is being aborted; call it between chunks."""
        if self.abort_event.is_set():
            raise Aborted()

    def progress(self, nbytes: int) -> None:
        """``nbytes`` more bytes of the current file were transferred (or found identical)."""
        self._on_bytes(nbytes)


class Transfer(ABC):
    """Moves files into one target.  Subclass it in a target plugin.

    Life cycle, driven by the transfer engine: :meth:`start` (main thread);
    checksums of every item when :attr:`needs_checksums`; then rounds of
    :meth:`prepare` (the items that must be sent) and :meth:`send` (up to
    :attr:`workers` threads at once, :meth:`is_present` first); deferred and
    failed items go back to :meth:`prepare` next round; finally :meth:`finish`
    (main thread), with ``completed=False`` after an abort or error.
    """

    #: How many files may be sent at once.
    workers: int = 4
    #: Set each item's ``sha256`` before :meth:`prepare` (content-addressed targets).
    needs_checksums: bool = False
    #: Rounds of prepare/send before the engine gives up on what is left.
    max_rounds: int = 10

    def start(self) -> None:
        """Prepare the target: create the directory, open the archive, check credentials.

        Raise :class:`PackError` with a one-line message when the target cannot be used.
        """
        return None

    def prepare(self, items: Sequence[TransferItem], io: TransferIO) -> Sequence[TransferItem]:
        """The items that must be sent this round, in the order to send them.

        ``items`` are all those not yet settled: every item in round 1, the
        deferred and failed ones later.  Items left out count as already in the
        target (skipped).  Runs in a background thread; call ``io.check_abort()``
        between requests.  One request for the whole list, not one per file.
        """
        return items

    def is_present(self, item: TransferItem, io: TransferIO) -> bool:
        """True when the target already holds this file with the same content (it is skipped).

        A per-file check, called from a worker thread just before :meth:`send`.
        """
        return False

    @abstractmethod
    def send(self, item: TransferItem, io: TransferIO) -> SendOutcome | None:
        """Put one file in place, streaming it, reporting bytes with ``io.progress``.

        Call ``io.check_abort()`` between chunks.  Never leave a partly written
        file under ``item.dest``.  Return :attr:`SendOutcome.SENT` (or None),
        ``ALREADY_THERE``, or ``DEFERRED`` (only when ``io.can_defer``).  Raise
        :class:`RetryableError` for a transient failure (retried next round),
        :class:`PackError` or ``OSError`` for a permanent one (the pack stops).
        """

    def finish(self, completed: bool) -> None:
        """Everything is in place (``completed``), or the pack stopped early: undo what is half done."""
        return None

    # --- checks before a pack, for targets that hold files of their own (directory, ZIP) ----

    def layout_rules(self) -> LayoutRules:
        """Which layout problems (case clashes, names the target cannot hold) stop a pack here.

        Asked when planning; writes nothing.  Default: only a file where another
        file needs a directory is an error (see docs/packing.md, "layout rules").
        """
        from .pack.layout import LayoutRules

        return LayoutRules()

    def owns(self, real_path: str) -> bool:
        """True when ``real_path`` is one of this target's own files (an earlier pack's): never a dependency.

        Asked when planning, for every file found; must not write anything.
        """
        return False

    def preflight(self, items: Sequence[TransferItem]) -> None:
        """Check the whole list against what the target holds, once, before :meth:`start`.

        Raise :class:`PackError` naming the files when the pack would replace a
        file the target does not own.  Nothing packed may be written here.
        """
        return None

    def report(self) -> dict[str, Any]:
        """Facts for the pack report (``{"checkout_path": ...}``): in the JSON under ``target_info``."""
        return {}

    def display(self, dest: PurePosixPath) -> str | None:
        """Where a packed file ends up, when that is not the target root plus ``dest``."""
        return None


def join_root(root: str | PurePath, dest: PurePosixPath) -> str:
    """``root`` and a target-relative path as one string; ``root`` may be a URL."""
    if isinstance(root, PurePath):
        text = str(root)
        if isinstance(root, PurePosixPath) and text not in ("/", "//") and dest.parts and not dest.is_absolute():
            return f"{text}/{dest}"  # shown for every packed file: no Path parsed each time
        return str(root / dest)
    return f"{root.rstrip('/')}/{dest.as_posix()}"


@dataclass
class Target:
    """A resolved pack target: where files go and how they get there."""

    #: The root as shown to the user: a path, or a URL (``s3://bucket/prefix``).
    root: str | PurePath
    transfer: Transfer
    #: The local directory packed files are written under (directory targets).
    local_dir: Path | None = None
    #: The local file the target writes (a ZIP file).  With ``local_dir``, this
    #: lets the packer refuse to write over the project's own files.
    local_file: Path | None = None
    #: A short human description ("directory /tmp/out", "ZIP file /tmp/out.zip").
    description: str = ""

    def display(self, dest: PurePosixPath) -> str:
        """How a packed file is shown in messages and reports."""
        shown = self.transfer.display(dest)
        return shown if shown is not None else join_root(self.root, dest)
