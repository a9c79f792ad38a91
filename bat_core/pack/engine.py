"""The transfer engine: checksums, then rounds of prepare / send / defer, for every target.

Every target moves files through this one loop; a target plugin supplies only
what differs (:class:`bat_core.targets.Transfer`):

1. **Checksums**, when the transfer stores by content: SHA-256 of every item in
   worker threads, through the persistent cache of :mod:`.checksums`.
2. **Prepare** a round: the transfer gets the whole list of unsettled items and
   answers which must be sent (one listing, one requirements request); the
   others are already there.
3. **Send** in worker threads; a send ends sent, already there, deferred
   (someone else is sending it) or failed (a transient error).
4. **Next round**: deferred and failed items go back to step 2, with an
   abort-aware back-off when a round made no progress, more than
   :data:`MAX_FAILURES_PER_ROUND` failures ending a round early, and a clear
   error after ``max_rounds``.
5. The packer then calls ``finish`` (completed or not).

Background threads post what happened to one queue; the main thread waits on
it with a short timeout, replays the callbacks queued by the workers and
handles each message, so progress is shown on the main thread and an abort
(``Packer.abort`` or Ctrl-C) is seen within a fraction of a second.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..errors import Aborted, PackError, RetryableError
from ..progress import PackCallback, ThreadSafeCallback
from ..realpaths import RealPaths
from ..targets import SendOutcome, Target, TransferIO, TransferItem
from .result import COPIED, NOT_TRANSFERRED, REWRITTEN, SKIPPED

log = logging.getLogger(__name__)

#: How long the main thread waits for a worker before replaying callbacks again.
POLL_SECONDS = 0.1
#: More failures than this in one round end the round: ask the target afresh.
MAX_FAILURES_PER_ROUND = 8
#: After an abort, how long to wait for threads stuck in I/O before going on without them.
JOIN_SECONDS = 2.0
#: Back-off between rounds that made no progress: first wait, and the cap.
BACKOFF_FIRST, BACKOFF_MAX = 0.5, 5.0
#: How many threads compute checksums.
HASH_WORKERS = max(2, min(4, os.cpu_count() or 2))

T = TypeVar("T")


@dataclass
class TransferOutcome:
    """What became of each item (by index), and why the transfer stopped, if it did."""

    #: Items as sent: with their checksums when the target asked for them.
    items: list[TransferItem]
    #: Item index -> copied / rewritten / skipped / not-transferred.
    actions: dict[int, str] = field(default_factory=dict)
    error: str = ""
    aborted: bool = False
    rounds: int = 0
    #: Files read to compute checksums, their bytes, and checksums taken from the cache.
    hashed_files: int = 0
    hashed_bytes: int = 0
    cached_checksums: int = 0

    @property
    def settled(self) -> bool:
        return not self.error and not self.aborted and all(a != NOT_TRANSFERRED for a in self.actions.values())


class _Bytes:
    """Bytes done across threads, told to a callback (queued to the main thread)."""

    def __init__(self, report: Callable[[int, int], None], total: int, wake: Callable[[], None]) -> None:
        self.report = report
        self.total = total
        self.done = 0
        self.wake = wake
        self._lock = threading.Lock()

    def add(self, nbytes: int) -> None:
        if not nbytes:
            return
        with self._lock:
            self.done += nbytes
            done = self.done
        self.report(self.total, done)
        self.wake()  # the main thread replays it now, not at its next timeout


@dataclass
class _RoundState:
    progressed: bool = False
    failures: int = 0
    reason: str = ""


class _Engine:
    def __init__(self, target: Target, items: Sequence[TransferItem], callback: ThreadSafeCallback,
                 abort: threading.Event, use_cache: bool, real: RealPaths | None = None) -> None:
        self.target = target
        self.real = real if real is not None else RealPaths()
        self.transfer = target.transfer
        self.items = list(items)
        self.callback = callback
        self.abort = abort
        self.use_cache = use_cache
        self.outcome = TransferOutcome(self.items, {i: NOT_TRANSFERRED for i in range(len(self.items))})
        self.events: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self.threads: list[threading.Thread] = []
        self.bytes = _Bytes(callback.transfer_progress, 0, self._wake)

    # --- the main thread's side -------------------------------------------------------

    def _wake(self) -> None:
        self.events.put(("tick",))

    def _pump(self, handle: Callable[[tuple[Any, ...]], None], running: Callable[[], bool]) -> None:
        """Handle messages until ``running()`` is false; callbacks replayed before each one."""
        try:
            while running():
                try:
                    message = self.events.get(timeout=POLL_SECONDS)
                except queue.Empty:
                    self.callback.flush()
                    continue
                self.callback.flush()
                if message[0] != "tick":
                    handle(message)
        except BaseException:
            # Ctrl-C on the main thread: stop the workers, let them remove their partial files.
            self.abort.set()
            self._join()
            raise
        finally:
            self.callback.flush()

    def _start(self, fn: Callable[[], None], name: str) -> threading.Thread:
        def run() -> None:
            try:
                fn()
            finally:
                self.events.put(("exit",))

        thread = threading.Thread(target=run, name=name, daemon=True)
        self.threads.append(thread)
        thread.start()
        return thread

    def _join(self) -> None:
        deadline = time.monotonic() + JOIN_SECONDS
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        stuck = [t.name for t in self.threads if t.is_alive()]
        if stuck:
            log.warning("going on without %d transfer thread(s) still in I/O: %s", len(stuck), ", ".join(stuck))
        self.threads = []

    def _run_workers(self, count: int, work: Callable[[], None], handle: Callable[[tuple[Any, ...]], None],
                     name: str) -> None:
        running = [count]

        def on_message(message: tuple[Any, ...]) -> None:
            if message[0] == "exit":
                running[0] -= 1
            else:
                handle(message)

        for n in range(count):
            self._start(work, f"{name}-{n}")
        self._pump(on_message, lambda: running[0] > 0)
        self.threads = []

    def _in_thread(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` (a target's ``prepare``) in a thread while the main thread stays responsive."""
        box: dict[str, Any] = {}

        def run() -> None:
            try:
                box["value"] = fn()
            except BaseException as exc:
                box["error"] = exc

        done = [False]

        def on_message(message: tuple[Any, ...]) -> None:
            if message[0] == "exit":
                done[0] = True

        thread = self._start(run, "bat-prepare")

        def running() -> bool:
            if done[0]:
                return False
            if self.abort.is_set():
                thread.join(JOIN_SECONDS)
                if thread.is_alive():
                    raise Aborted()
            return True

        self._pump(on_message, running)
        self.threads = []
        if "error" in box:
            raise box["error"]
        return box["value"]  # type: ignore[no-any-return]

    def _wait(self, seconds: float) -> None:
        """Sleep between rounds, waking at once on an abort (and replaying callbacks)."""
        deadline = time.monotonic() + seconds
        while not self.abort.is_set() and (left := deadline - time.monotonic()) > 0:
            self.abort.wait(min(left, POLL_SECONDS))
            self.callback.flush()

    def _fail(self, message: str) -> None:
        if not self.outcome.error:
            self.outcome.error = message
        self.abort.set()

    # --- 1. checksums -----------------------------------------------------------------

    def checksums(self) -> None:
        # Only content-addressed targets need this (sqlite3 and hashlib): not imported for the others.
        from .checksums import ChecksumCache, FileKey, cache_disabled_by_env, sha256_of

        items = self.items
        cache = ChecksumCache() if self.use_cache and not cache_disabled_by_env() else None
        keys: dict[int, FileKey] = {}
        real = self.real
        for i, item in enumerate(items):
            if item.temporary or item.sha256 is not None:
                continue  # a rewritten copy (new every pack), or a checksum already known
            try:
                keys[i] = FileKey.of(real(item.read_from), os.stat(item.read_from))
            except (OSError, ValueError):
                continue  # hashing it reports the problem
        found = cache.lookup(keys.values()) if cache is not None else {}
        total = sum(item.size for item in items)
        hashed = _Bytes(self.callback.checksum_progress, total, self._wake)
        todo: deque[int] = deque()
        for i, item in enumerate(items):
            if item.sha256 is not None:  # known to whoever made it (the packer's pack-info.txt)
                hashed.add(item.size)
                continue
            key = keys.get(i)
            sha = found.get(key) if key is not None else None
            if key is not None and sha is not None:
                items[i] = dataclasses.replace(item, sha256=sha, size=key.size)
                hashed.add(key.size)
                self.outcome.cached_checksums += 1
            else:
                todo.append(i)
        fresh: dict[FileKey, str] = {}
        lock = threading.Lock()

        def work() -> None:
            io = TransferIO(self.abort, hashed.add)
            while not self.abort.is_set():
                with lock:
                    if not todo:
                        return
                    i = todo.popleft()
                item = items[i]
                try:
                    sha, st = sha256_of(item.read_from, io)
                except Aborted:
                    return
                except OSError as exc:
                    self.events.put(("error", f"cannot read {item.source}: {exc.strerror or exc}"))
                    self.abort.set()
                    return
                except PackError as exc:
                    self.events.put(("error", str(exc)))
                    self.abort.set()
                    return
                self.events.put(("hashed", i, sha, st))

        def handle(message: tuple[Any, ...]) -> None:
            if message[0] == "error":
                self._fail(message[1])
                return
            _, i, sha, st = message
            item = items[i]
            items[i] = dataclasses.replace(item, sha256=sha, size=st.st_size)
            self.outcome.hashed_files += 1
            self.outcome.hashed_bytes += st.st_size
            if not item.temporary:
                key = keys.get(i)
                path = key.path if key is not None else os.fsencode(real(item.read_from))
                fresh[FileKey(path, st.st_size, st.st_mtime_ns, st.st_ino)] = sha

        try:
            if todo:
                self._run_workers(min(HASH_WORKERS, len(todo)), work, handle, "bat-checksum")
        finally:
            if cache is not None:
                cache.store(fresh)
                cache.close()

    # --- 2-4. rounds ------------------------------------------------------------------

    def rounds(self) -> None:
        transfer = self.transfer
        self.bytes.total = sum(i.size for i in self.items)
        pending = list(range(len(self.items)))
        deferred_before: set[int] = set()
        idle = 0
        reason = ""
        max_rounds = max(1, transfer.max_rounds)
        for number in range(1, max_rounds + 1):
            self.outcome.rounds = number
            io = TransferIO(self.abort, lambda n: None, round=number)
            asked = [self.items[i] for i in pending]

            def ask(asked: list[TransferItem] = asked, io: TransferIO = io) -> list[TransferItem]:
                return list(transfer.prepare(asked, io))

            try:
                chosen = self._in_thread(ask)
            except RetryableError as exc:
                reason = str(exc)
                idle += 1
                log.info("round %d: asking the target what to send failed: %s", number, reason)
                self._wait(min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (idle - 1)))
                if self.abort.is_set():
                    return
                continue
            send = self._chosen(pending, chosen)
            for i in pending:
                if i not in send:
                    self._settled(i, SKIPPED, 0)
            if not send:
                return
            pending, progressed, round_reason = self._send(list(send), deferred_before, number)
            reason = round_reason or reason
            if not pending or self.abort.is_set():
                return
            idle = 0 if progressed else idle + 1
            if idle:
                self._wait(min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (idle - 1)))
                if self.abort.is_set():
                    return
        if pending:
            self._fail(f"gave up after {max_rounds} rounds: {len(pending)} file(s) could not be sent to "
                       f"{self.target.root}" + (f" (last error: {reason})" if reason else ""))

    def _chosen(self, pending: list[int], chosen: Sequence[TransferItem]) -> dict[int, None]:
        """Indices of the items ``prepare`` returned, in its order (an ordered set)."""
        index = {id(self.items[i]): i for i in pending}
        send: dict[int, None] = {}
        for item in chosen:
            i = index.get(id(item))
            if i is None:
                raise PackError(f"target {self.target.root}: prepare() returned a file it was not asked "
                                f"about ({item.dest})")
            send[i] = None
        return send

    def _settled(self, i: int, action: str, counted: int) -> None:
        """Item ``i`` is in place; make its bytes count fully, tell the callback."""
        item = self.items[i]
        self.outcome.actions[i] = action
        self.bytes.add(max(0, item.size - counted))
        shown = self.target.display(item.dest)
        if action == SKIPPED:
            self.callback.transfer_file_skipped(item.source, shown)
        else:
            self.callback.transfer_file_done(item.source, shown)

    def _send(self, send: list[int], deferred_before: set[int], number: int) -> tuple[list[int], bool, str]:
        """One round of sends; returns the items left for the next round, whether any was
        settled, and the last failure's reason."""
        transfer = self.transfer
        todo = deque(send)
        lock = threading.Lock()
        stop_round = threading.Event()
        again: list[int] = []
        state = _RoundState()

        def work() -> None:
            while not self.abort.is_set() and not stop_round.is_set():
                with lock:
                    if not todo:
                        return
                    i = todo.popleft()
                    can_defer = i not in deferred_before and bool(todo)
                item = self.items[i]
                counted = [0]

                def on_bytes(n: int, counted: list[int] = counted) -> None:
                    counted[0] += n
                    self.bytes.add(n)

                io = TransferIO(self.abort, on_bytes, can_defer=can_defer, round=number)
                shown = self.target.display(item.dest)
                try:
                    if transfer.is_present(item, io):
                        self.events.put(("settled", i, SKIPPED, counted[0]))
                        continue
                    self.callback.transfer_file(item.source, shown)
                    result = transfer.send(item, io) or SendOutcome.SENT
                except Aborted:
                    self.events.put(("undone", i, counted[0]))
                    return
                except RetryableError as exc:
                    self.events.put(("again", i, counted[0], str(exc) or type(exc).__name__, False))
                    with lock:
                        state.failures += 1
                        if state.failures > MAX_FAILURES_PER_ROUND:
                            stop_round.set()  # ask the target afresh rather than retry file by file
                    continue
                except (OSError, PackError) as exc:
                    self.events.put(("error", _describe(exc, item, shown)))
                    self.abort.set()
                    return
                except Exception as exc:  # a plugin bug must not hang the pack
                    log.exception("transfer of %s failed", item.source)
                    self.events.put(("error", f"{shown}: {type(exc).__name__}: {exc}"))
                    self.abort.set()
                    return
                if result is SendOutcome.DEFERRED:
                    self.events.put(("again", i, counted[0], "being sent by another client", True))
                elif result is SendOutcome.ALREADY_THERE:
                    self.events.put(("settled", i, SKIPPED, counted[0]))
                else:
                    self.events.put(("settled", i, REWRITTEN if item.temporary else COPIED, counted[0]))

        def handle(message: tuple[Any, ...]) -> None:
            kind = message[0]
            if kind == "settled":
                _, i, action, counted = message
                self._settled(i, action, counted)
                state.progressed = True
            elif kind == "again":
                _, i, counted, why, deferred = message
                self.bytes.add(-counted)
                item = self.items[i]
                self.callback.transfer_file_deferred(item.source, self.target.display(item.dest), why)
                again.append(i)
                if deferred:
                    deferred_before.add(i)
                else:
                    state.reason = why
            elif kind == "undone":
                self.bytes.add(-message[2])
            elif kind == "error":
                self._fail(message[1])

        count = max(1, min(transfer.workers, len(send)))
        self._run_workers(count, work, handle, "bat-transfer")
        again.extend(todo)  # not started: the round ended early
        return again, state.progressed, state.reason

    def run(self) -> TransferOutcome:
        try:
            if self.items:
                if self.transfer.needs_checksums:
                    self.checksums()
                if not self.abort.is_set():
                    self.rounds()
        except RetryableError as exc:
            self._fail(str(exc))
        except (OSError, PackError) as exc:
            self._fail(str(exc) if isinstance(exc, PackError) else f"{self.target.root}: {exc.strerror or exc}")
        except Aborted:
            pass
        unfinished = any(a == NOT_TRANSFERRED for a in self.outcome.actions.values())
        self.outcome.aborted = self.abort.is_set() and unfinished and not self.outcome.error
        return self.outcome


def run_transfers(target: Target, items: Sequence[TransferItem], callback: ThreadSafeCallback,
                  abort: threading.Event, *, checksum_cache: bool = True,
                  real: RealPaths | None = None) -> TransferOutcome:
    """Move every item into ``target``; stop early on abort or the first permanent error.

    Never raises for those: the outcome says what happened (``error``, ``aborted``).
    ``real``: the caller's :class:`RealPaths` (the packer's, which has resolved
    every source already), for the checksum cache's keys.
    """
    return _Engine(target, items, callback, abort, checksum_cache, real).run()


def _describe(exc: OSError | PackError, item: TransferItem, shown: str) -> str:
    if isinstance(exc, PackError):
        return str(exc)
    return f"cannot transfer {item.source} to {shown}: {exc.strerror or exc}"


def transfer_files(target: Target, items: Sequence[TransferItem], *, callback: PackCallback | None = None,
                   abort: threading.Event | None = None, checksum_cache: bool = True) -> TransferOutcome:
    """Send a list of files to a target without a blend file: ``start``, the rounds, ``finish``.

    What ``bat shaman push DIR URL`` and programs that upload their own files
    use.  Raises :class:`PackError` when the target cannot be used or the
    transfer fails; returns the outcome when every file is settled or the
    transfer was aborted (``outcome.aborted``).
    """
    tscb = ThreadSafeCallback(callback or PackCallback())
    abort = abort or threading.Event()
    transfer = target.transfer
    tscb.pack_start(len(items), sum(i.size for i in items))
    try:
        transfer.start()
    except OSError as exc:
        raise PackError(f"cannot write to {target.root}: {exc.strerror or exc}") from None
    try:
        outcome = run_transfers(target, items, tscb, abort, checksum_cache=checksum_cache)
    except BaseException:
        with contextlib.suppress(Exception):
            transfer.finish(False)
        raise
    try:
        transfer.finish(outcome.settled)
    except OSError as exc:
        raise PackError(f"cannot finish {target.root}: {exc.strerror or exc}") from None
    tscb.flush()
    if outcome.error:
        raise PackError(outcome.error)
    return outcome
