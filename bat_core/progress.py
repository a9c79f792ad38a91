"""Progress callbacks for tracing and packing, and the thread-safe wrapper.

Library users subclass :class:`TraceCallback` or :class:`PackCallback` and
override what they care about; every method is a no-op by default.  Transfers
run in worker threads, so the packer hands callbacks a
:class:`ThreadSafeCallback`: calls made on other threads are queued and
replayed on the main thread by :meth:`ThreadSafeCallback.flush`, so no callback
implementation has to think about threads.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any


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

    def transfer_file(self, src: Path, dst: str) -> None:
        """A file is about to be transferred."""

    def transfer_file_done(self, src: Path, dst: str) -> None:
        """A file is completely in place in the target (after :meth:`transfer_file`)."""

    def transfer_file_skipped(self, src: Path, dst: str) -> None:
        """The target already had this file with the same content."""

    def transfer_progress(self, total_bytes: int, transferred_bytes: int) -> None:
        """Bytes transferred so far, out of the total."""


class CallbackGroup(PackCallback):
    """Fans every call out to several callbacks (the user's and the plugins')."""

    def __init__(self, callbacks: Iterable[TraceCallback]) -> None:
        self.callbacks = list(callbacks)

    def __getattribute__(self, name: str) -> Any:
        if name.startswith("_") or name == "callbacks" or not hasattr(PackCallback, name):
            return object.__getattribute__(self, name)
        targets = [getattr(cb, name) for cb in object.__getattribute__(self, "callbacks")
                   if hasattr(cb, name)]

        def fan_out(*args: Any, **kwargs: Any) -> None:
            for fn in targets:
                fn(*args, **kwargs)

        return fan_out


class ThreadSafeCallback(PackCallback):
    """Queues calls from worker threads; the main thread replays them with :meth:`flush`.

    Calls made on the thread that created the wrapper go straight through.
    """

    def __init__(self, wrapped: PackCallback) -> None:
        self._wrapped = wrapped
        self._main = threading.get_ident()
        self._queue: queue.SimpleQueue[tuple[Callable[..., None], tuple[Any, ...], dict[str, Any]]] = (
            queue.SimpleQueue()
        )

    def __getattribute__(self, name: str) -> Any:
        if name.startswith("_") or name in ("flush", "wrapped") or not hasattr(PackCallback, name):
            return object.__getattribute__(self, name)
        target = getattr(object.__getattribute__(self, "_wrapped"), name)
        if threading.get_ident() == object.__getattribute__(self, "_main"):
            return target
        q = object.__getattribute__(self, "_queue")
        return lambda *args, **kwargs: q.put((target, args, kwargs))

    @property
    def wrapped(self) -> PackCallback:
        return self._wrapped

    def flush(self) -> int:
        """Replay queued calls on the calling (main) thread; returns how many ran."""
        n = 0
        while True:
            try:
                fn, args, kwargs = self._queue.get_nowait()
            except queue.Empty:
                return n
            fn(*args, **kwargs)
            n += 1
