"""Run a target's transfers in worker threads while the main thread replays progress.

Workers take items from a queue and call the transfer; their callback calls go
through a :class:`~bat_core.progress.ThreadSafeCallback`.  The main thread
waits on the results queue with a short timeout and flushes the callback each
time round, so progress is shown on the main thread and an abort (flag set by
:meth:`Packer.abort`, or Ctrl-C arriving on the main thread) is seen within a
fraction of a second.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from ..progress import ThreadSafeCallback
from .errors import Aborted, PackError
from .result import COPIED, NOT_TRANSFERRED, REWRITTEN, SKIPPED
from .transfer import Target, TransferIO, TransferItem

log = logging.getLogger(__name__)

#: How long the main thread waits for a worker before flushing callbacks again.
POLL_SECONDS = 0.1


@dataclass
class TransferOutcome:
    #: Item -> copied/skipped/not-transferred; "rewritten" for rewritten blend files sent.
    actions: dict[int, str] = field(default_factory=dict)
    error: str = ""
    aborted: bool = False


class _Progress:
    """Counts bytes across workers and tells the callback (queued to the main thread)."""

    def __init__(self, callback: ThreadSafeCallback, total: int, wake: Callable[[], None]) -> None:
        self.callback = callback
        self.total = total
        self.done = 0
        self.wake = wake
        self._lock = threading.Lock()

    def add(self, nbytes: int) -> None:
        with self._lock:
            self.done += nbytes
            done = self.done
        self.callback.transfer_progress(self.total, done)
        self.wake()  # the main thread replays it now, not at its next timeout


def run_transfers(target: Target, items: list[TransferItem], rewritten: set[int],
                  callback: ThreadSafeCallback, abort: threading.Event) -> TransferOutcome:
    """Send every item; stop early on abort or the first error.  Never raises for those."""
    outcome = TransferOutcome(actions={id(item): NOT_TRANSFERRED for item in items})
    todo: queue.SimpleQueue[TransferItem] = queue.SimpleQueue()
    for item in items:
        todo.put(item)
    results: queue.SimpleQueue[tuple[str, TransferItem | None, str]] = queue.SimpleQueue()
    progress = _Progress(callback, sum(i.size for i in items), lambda: results.put(("tick", None, "")))
    transfer = target.transfer

    def worker() -> None:
        io = TransferIO(abort, progress.add)
        try:
            while not abort.is_set():
                try:
                    item = todo.get_nowait()
                except queue.Empty:
                    return
                shown = target.display(item.dest)
                try:
                    if transfer.is_present(item, io):
                        callback.transfer_file_skipped(item.source, shown)
                        progress.add(item.size)
                        results.put((SKIPPED, item, ""))
                        continue
                    callback.transfer_file(item.source, shown)
                    transfer.send(item, io)
                    callback.transfer_file_done(item.source, shown)
                except Aborted:
                    return
                except (OSError, PackError) as exc:
                    results.put(("error", item, _describe(exc, item, shown)))
                    abort.set()
                    return
                except Exception as exc:  # a plugin bug must not hang the pack
                    log.exception("transfer of %s failed", item.source)
                    results.put(("error", item, f"{shown}: {type(exc).__name__}: {exc}"))
                    abort.set()
                    return
                results.put((REWRITTEN if id(item) in rewritten else COPIED, item, ""))
        finally:
            results.put(("exit", None, ""))

    count = max(1, min(transfer.workers, len(items)))
    threads = [threading.Thread(target=worker, name=f"bat-transfer-{n}", daemon=True) for n in range(count)]
    for t in threads:
        t.start()
    running = count
    try:
        while running:
            try:
                kind, done, message = results.get(timeout=POLL_SECONDS)
            except queue.Empty:
                callback.flush()
                continue
            if kind == "exit":
                running -= 1
            elif kind == "error":
                outcome.error = outcome.error or message
            elif done is not None:
                outcome.actions[id(done)] = kind
            callback.flush()
    except BaseException:
        # Ctrl-C on the main thread: stop the workers, let them remove their partial files.
        abort.set()
        for t in threads:
            t.join()
        raise
    finally:
        while True:
            try:
                kind, done, message = results.get_nowait()
            except queue.Empty:
                break
            if done is not None and kind in (COPIED, REWRITTEN, SKIPPED):
                outcome.actions[id(done)] = kind
        callback.flush()
    unfinished = any(a == NOT_TRANSFERRED for a in outcome.actions.values())
    outcome.aborted = abort.is_set() and unfinished and not outcome.error
    return outcome


def _describe(exc: OSError | PackError, item: TransferItem, shown: str) -> str:
    if isinstance(exc, PackError):
        return str(exc)
    return f"cannot transfer {item.source} to {shown}: {exc.strerror or exc}"
