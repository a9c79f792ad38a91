"""Progress callbacks for tracing and packing, and the thread-safe wrapper.

Library users subclass :class:`TraceCallback` or :class:`PackCallback` and
override what they care about; every method is a no-op by default.  Transfers
and checksums run in worker threads, so the packer hands callbacks a
:class:`ThreadSafeCallback`: calls made on other threads are queued and
replayed on the main thread by :meth:`ThreadSafeCallback.flush`, so no callback
implementation has to think about threads.

A callback that raises does not break the pack: the error is logged and the
event goes on to the other callbacks.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class TraceCallback:
    """Told about each blend file and asset as a trace finds them."""

    def trace_blendfile(self, path: Path) -> None:
        """A blend file (the main one or a library) is about to be traced."""

    def trace_asset(self, path: Path) -> None:
        """An asset was found."""

    def missing_file(self, path: Path) -> None:
        """A dependency does not exist on disk."""


class PackCallback(TraceCallback):
    """Told about the life of a pack, from its plan to its end."""

    def pack_start(self, file_count: int, byte_count: int) -> None:
        """The plan is made: this many files and bytes will be considered for transfer."""

    def pack_done(self, output_blendfile: str, missing_files: list[Path]) -> None:
        """Every file was handled; ``missing_files`` could not be packed."""

    def pack_aborted(self, reason: str) -> None:
        """The pack stopped early (abort, error); files done so far stay in place."""

    def rewrite_blendfile(self, orig: Path) -> None:
        """A copy of this blend file is being rewritten to point at the packed paths."""

    def checksum_progress(self, total_bytes: int, done_bytes: int) -> None:
        """Checksums of the files to send (content-addressed targets): bytes done, cached included."""

    def transfer_file(self, src: Path, dst: str) -> None:
        """A file is about to be transferred."""

    def transfer_file_done(self, src: Path, dst: str) -> None:
        """A file is completely in place in the target (after :meth:`transfer_file`)."""

    def transfer_file_skipped(self, src: Path, dst: str) -> None:
        """The target already had this file with the same content."""

    def transfer_file_deferred(self, src: Path, dst: str, reason: str) -> None:
        """The file was not sent this round (someone else is sending it, or a transient
        error); it is tried again in the next round."""

    def transfer_progress(self, total_bytes: int, transferred_bytes: int) -> None:
        """Bytes transferred so far, out of the total (it goes back when a file is retried)."""


def _guarded(fn: Callable[..., None], *args: Any) -> None:
    """Call one callback method; an exception in it is logged, never passed on."""
    try:
        fn(*args)
    except Exception:
        log.exception("progress callback %s failed", getattr(fn, "__qualname__", fn))


class CallbackGroup(PackCallback):
    """Passes every event on to several callbacks (the user's and the plugins'), in order."""

    def __init__(self, callbacks: Iterable[TraceCallback]) -> None:
        self.callbacks = list(callbacks)

    def _each(self, name: str, *args: Any) -> None:
        for cb in self.callbacks:
            fn = getattr(cb, name, None)
            if fn is not None:
                _guarded(fn, *args)

    def trace_blendfile(self, path: Path) -> None:
        self._each("trace_blendfile", path)

    def trace_asset(self, path: Path) -> None:
        self._each("trace_asset", path)

    def missing_file(self, path: Path) -> None:
        self._each("missing_file", path)

    def pack_start(self, file_count: int, byte_count: int) -> None:
        self._each("pack_start", file_count, byte_count)

    def pack_done(self, output_blendfile: str, missing_files: list[Path]) -> None:
        self._each("pack_done", output_blendfile, missing_files)

    def pack_aborted(self, reason: str) -> None:
        self._each("pack_aborted", reason)

    def rewrite_blendfile(self, orig: Path) -> None:
        self._each("rewrite_blendfile", orig)

    def checksum_progress(self, total_bytes: int, done_bytes: int) -> None:
        self._each("checksum_progress", total_bytes, done_bytes)

    def transfer_file(self, src: Path, dst: str) -> None:
        self._each("transfer_file", src, dst)

    def transfer_file_done(self, src: Path, dst: str) -> None:
        self._each("transfer_file_done", src, dst)

    def transfer_file_skipped(self, src: Path, dst: str) -> None:
        self._each("transfer_file_skipped", src, dst)

    def transfer_file_deferred(self, src: Path, dst: str, reason: str) -> None:
        self._each("transfer_file_deferred", src, dst, reason)

    def transfer_progress(self, total_bytes: int, transferred_bytes: int) -> None:
        self._each("transfer_progress", total_bytes, transferred_bytes)


class ThreadSafeCallback(PackCallback):
    """Queues calls from worker threads; the main thread replays them with :meth:`flush`.

    Calls made on the thread that created the wrapper go straight through.
    Each call, direct or replayed, is guarded: a failing callback is logged.
    """

    def __init__(self, wrapped: PackCallback) -> None:
        self._wrapped = wrapped
        self._main = threading.get_ident()
        self._queue: queue.SimpleQueue[tuple[Callable[..., None], tuple[Any, ...]]] = queue.SimpleQueue()

    @property
    def wrapped(self) -> PackCallback:
        return self._wrapped

    def _call(self, fn: Callable[..., None], *args: Any) -> None:
        if threading.get_ident() == self._main:
            _guarded(fn, *args)
        else:
            self._queue.put((fn, args))

    def flush(self) -> int:
        """Replay queued calls on the calling (main) thread; returns how many ran."""
        n = 0
        while True:
            try:
                fn, args = self._queue.get_nowait()
            except queue.Empty:
                return n
            _guarded(fn, *args)
            n += 1

    def trace_blendfile(self, path: Path) -> None:
        self._call(self._wrapped.trace_blendfile, path)

    def trace_asset(self, path: Path) -> None:
        self._call(self._wrapped.trace_asset, path)

    def missing_file(self, path: Path) -> None:
        self._call(self._wrapped.missing_file, path)

    def pack_start(self, file_count: int, byte_count: int) -> None:
        self._call(self._wrapped.pack_start, file_count, byte_count)

    def pack_done(self, output_blendfile: str, missing_files: list[Path]) -> None:
        self._call(self._wrapped.pack_done, output_blendfile, missing_files)

    def pack_aborted(self, reason: str) -> None:
        self._call(self._wrapped.pack_aborted, reason)

    def rewrite_blendfile(self, orig: Path) -> None:
        self._call(self._wrapped.rewrite_blendfile, orig)

    def checksum_progress(self, total_bytes: int, done_bytes: int) -> None:
        self._call(self._wrapped.checksum_progress, total_bytes, done_bytes)

    def transfer_file(self, src: Path, dst: str) -> None:
        self._call(self._wrapped.transfer_file, src, dst)

    def transfer_file_done(self, src: Path, dst: str) -> None:
        self._call(self._wrapped.transfer_file_done, src, dst)

    def transfer_file_skipped(self, src: Path, dst: str) -> None:
        self._call(self._wrapped.transfer_file_skipped, src, dst)

    def transfer_file_deferred(self, src: Path, dst: str, reason: str) -> None:
        self._call(self._wrapped.transfer_file_deferred, src, dst, reason)

    def transfer_progress(self, total_bytes: int, transferred_bytes: int) -> None:
        self._call(self._wrapped.transfer_progress, total_bytes, transferred_bytes)
