"""The transfer engine: checksums and their cache, rounds of prepare/send, deferral, retries, abort.

The target here is a real content-addressed store in a temporary directory
(blobs by SHA-256, like a Shaman store), so everything the engine claims is
checked against files on disk.  Faults (deferrals, transient errors, a
hanging listing) are switched on per test: no real store produces them on
demand.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath

import pytest

from bat_core import hookimpl
from bat_core.pack import Packer, pack
from bat_core.pack.checksums import ChecksumCache
from bat_core.progress import PackCallback
from bat_core.targets import (
    CHUNK_SIZE,
    PackError,
    RetryableError,
    SendOutcome,
    Target,
    TargetScheme,
    Transfer,
    TransferIO,
    TransferItem,
)

from .packinfo import INFO, check_info

DEMO = Path(__file__).resolve().parent.parent / "examples" / "demo" / "shot.blend"
DEMO_FILES = 7
#: What a pack of the demo sends: its files and pack-info.txt (whose checksum the packer knows).
DEMO_SENT = DEMO_FILES + 1


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class StoreTransfer(Transfer):
    """Stores files by checksum under ``store/``; ``prepare`` asks which blobs are missing."""

    needs_checksums = True
    workers = 3

    def __init__(self, store: Path) -> None:
        self.store = store
        self.lock = threading.Lock()
        self.sent: list[str] = []
        self.prepared: list[list[str]] = []
        self.can_defer: dict[str, list[bool]] = {}
        self.finished: bool | None = None
        self.layout: dict[str, str] = {}
        # Faults, switched on by tests.
        self.defer_once: set[str] = set()
        self.fail_times: dict[str, int] = {}
        self.fail_all = False
        self.permanent: str | None = None
        self.prepare_blocks: threading.Event | None = None

    def blob(self, item: TransferItem) -> Path:
        assert item.sha256 is not None
        return self.store / item.sha256[:2] / f"{item.sha256}-{item.size}"

    def prepare(self, items: Sequence[TransferItem], io: TransferIO) -> list[TransferItem]:
        if self.prepare_blocks is not None:
            while not self.prepare_blocks.wait(0.05):
                io.check_abort()
        self.prepared.append([str(i.dest) for i in items])
        for item in items:
            self.layout[str(item.dest)] = item.sha256 or ""
        return [i for i in items if not self.blob(i).exists()]

    def send(self, item: TransferItem, io: TransferIO) -> SendOutcome:
        name = str(item.dest)
        with self.lock:
            self.can_defer.setdefault(name, []).append(io.can_defer)
        if name == self.permanent:
            raise PackError(f"{name}: access denied")
        if name in self.defer_once and io.can_defer:
            self.defer_once.discard(name)
            io.progress(5)  # some bytes went out before the server said "defer"
            return SendOutcome.DEFERRED
        with self.lock:
            left = self.fail_times.get(name, 0)
            if left or self.fail_all:
                self.fail_times[name] = left - 1
                raise RetryableError(f"{name}: connection reset")
        blob = self.blob(item)
        blob.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        tmp = blob.with_suffix(".tmp" + str(threading.get_ident()))
        with open(item.read_from, "rb") as src, open(tmp, "wb") as dst:
            while chunk := src.read(CHUNK_SIZE):
                io.check_abort()
                digest.update(chunk)
                dst.write(chunk)
                io.progress(len(chunk))
        assert digest.hexdigest() == item.sha256, "the engine's checksum must match the bytes sent"
        os.replace(tmp, blob)
        with self.lock:
            self.sent.append(name)
        return SendOutcome.SENT

    def finish(self, completed: bool) -> None:
        self.finished = completed

    def report(self) -> dict[str, str]:
        return {"store": str(self.store)}


class Events(PackCallback):
    def __init__(self) -> None:
        self.deferred: list[tuple[str, str]] = []
        self.progress: list[tuple[int, int]] = []
        self.checksums: list[tuple[int, int]] = []
        self.skipped: list[str] = []
        self.threads: set[str] = set()

    def transfer_file_deferred(self, src: Path, dst: str, reason: str) -> None:
        self.deferred.append((dst, reason))
        self.threads.add(threading.current_thread().name)

    def transfer_progress(self, total_bytes: int, transferred_bytes: int) -> None:
        self.progress.append((total_bytes, transferred_bytes))
        self.threads.add(threading.current_thread().name)

    def checksum_progress(self, total_bytes: int, done_bytes: int) -> None:
        self.checksums.append((total_bytes, done_bytes))

    def transfer_file_skipped(self, src: Path, dst: str) -> None:
        self.skipped.append(dst)


def to_store(transfer: StoreTransfer, **kwargs: object):  # type: ignore[no-untyped-def]
    return pack(DEMO, Target("store:/", transfer), **kwargs)  # type: ignore[arg-type]


def test_checksums_are_cached_and_match(tmp_path: Path) -> None:
    transfer = StoreTransfer(tmp_path / "store")
    events = Events()
    result = to_store(transfer, callback=events)
    assert result.complete and transfer.finished is True
    info = next(f for f in result.files if f.relpath == INFO)
    assert result.checksums == {"hashed_files": DEMO_FILES, "hashed_bytes": result.bytes_transferred - info.size,
                                "cached": 0}
    blob = next((tmp_path / "store").glob(f"*/{transfer.layout[INFO]}-{info.size}"))
    check_info(blob.read_bytes(), "shot.blend")  # the checksum the packer gave is the content's
    assert events.checksums[-1][0] == events.checksums[-1][1] == result.bytes_transferred
    for f in result.files:
        if f.relpath != INFO:
            assert transfer.layout[f.relpath] == sha256(f.source)  # type: ignore[index]
    assert sorted(transfer.sent) == sorted(transfer.layout)
    assert result.target_info == {"store": str(tmp_path / "store")}

    # Again: every checksum from the cache, nothing read for hashing, nothing sent.
    again = StoreTransfer(tmp_path / "store")
    events = Events()
    result = to_store(again, callback=events)
    assert result.checksums == {"hashed_files": 0, "hashed_bytes": 0, "cached": DEMO_FILES}
    assert again.sent == [] and result.count("skipped") == DEMO_SENT and again.finished is True
    assert len(events.skipped) == DEMO_SENT


def test_cache_notices_a_changed_file(tmp_path: Path) -> None:
    project = tmp_path / "demo"
    import shutil
    shutil.copytree(DEMO.parent, project)
    blend = project / "shot.blend"
    pack(blend, Target("store:/", StoreTransfer(tmp_path / "store")))
    texture = project / "textures" / "brick.png"
    data = texture.read_bytes()
    texture.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # same size; new mtime
    transfer = StoreTransfer(tmp_path / "store")
    result = pack(blend, Target("store:/", transfer))
    assert result.checksums["hashed_files"] == 1 and result.checksums["cached"] == DEMO_FILES - 1
    assert transfer.sent == ["textures/brick.png"]
    assert transfer.layout["textures/brick.png"] == sha256(texture)


def test_cache_can_be_turned_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    to_store(StoreTransfer(tmp_path / "store"))
    assert to_store(StoreTransfer(tmp_path / "s2"), checksum_cache=False).checksums["hashed_files"] == DEMO_FILES
    monkeypatch.setenv("BAT_NO_HASH_CACHE", "1")
    assert to_store(StoreTransfer(tmp_path / "s3")).checksums["hashed_files"] == DEMO_FILES


def test_cache_file_is_keyed_by_stat(tmp_path: Path) -> None:
    cache = ChecksumCache(tmp_path / "c.sqlite")
    from bat_core.pack.checksums import FileKey
    key = FileKey(b"/x", 3, 10, 7)
    cache.store({key: "ab"})
    assert cache.lookup([key]) == {key: "ab"}
    assert cache.lookup([FileKey(b"/x", 3, 11, 7)]) == {}
    assert cache.lookup([FileKey(b"/x", 3, 10, 8)]) == {}
    cache.close()
    # An unusable cache location: hashing still works, without the cache.
    (tmp_path / "file").write_text("")
    broken = ChecksumCache(tmp_path / "file" / "c.sqlite")
    assert broken.lookup([key]) == {}
    broken.store({key: "ab"})


def test_deferred_files_are_sent_before_finish(tmp_path: Path) -> None:
    transfer = StoreTransfer(tmp_path / "store")
    transfer.defer_once = {"textures/brick.png", "shot.blend", "audio/ambience.wav"}
    events = Events()
    result = to_store(transfer, callback=events)
    assert result.complete and transfer.finished is True
    assert sorted(transfer.sent) == sorted(transfer.layout) and len(transfer.sent) == DEMO_SENT
    # Round 2 asked again about exactly the deferred ones that could defer.
    deferred = {d for d, _ in events.deferred}
    assert len(transfer.prepared) == 2 and set(transfer.prepared[1]) == {Path(d).relative_to("store:").as_posix()
                                                                          for d in deferred}
    assert all(reason == "being sent by another client" for _, reason in events.deferred)
    # Never allowed to defer twice; the last file queued is never allowed to.
    for name, flags in transfer.can_defer.items():
        assert flags.count(True) <= 1, name
    # Progress took back the deferred bytes and ends exactly at the total.
    total = events.progress[-1][0]
    assert events.progress[-1][1] == total == result.bytes_transferred
    assert events.threads == {threading.current_thread().name}


def test_transient_failures_are_retried_in_later_rounds(tmp_path: Path) -> None:
    transfer = StoreTransfer(tmp_path / "store")
    transfer.fail_times = {"textures/brick.png": 2, "lib/props.blend": 1}
    result = to_store(transfer)
    assert result.complete and len(transfer.prepared) == 3
    assert transfer.prepared[1] == sorted(transfer.prepared[1], key=transfer.prepared[1].index)
    assert set(transfer.prepared[2]) == {"textures/brick.png"}
    assert len(set(transfer.sent)) == DEMO_SENT


def test_many_failures_end_a_round_early_and_rounds_run_out(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from bat_core.pack import engine
    monkeypatch.setattr(engine, "MAX_FAILURES_PER_ROUND", 2)
    monkeypatch.setattr(engine, "BACKOFF_FIRST", 0.01)
    transfer = StoreTransfer(tmp_path / "store")
    transfer.fail_all = True
    transfer.max_rounds = 3
    with pytest.raises(PackError, match=r"gave up after 3 rounds: 8 file\(s\) could not be sent.*connection reset"):
        to_store(transfer)
    assert transfer.finished is False
    attempts = sum(len(v) for v in transfer.can_defer.values())
    # Each round stops after the third failure (plus what the other workers had started).
    assert attempts <= 3 * (2 + transfer.workers)


def test_a_permanent_error_stops_the_pack(tmp_path: Path) -> None:
    transfer = StoreTransfer(tmp_path / "store")
    transfer.permanent = "shot.blend"
    with pytest.raises(PackError, match=r"^shot\.blend: access denied$") as err:
        to_store(transfer)
    assert transfer.finished is False
    assert err.value.result is not None and err.value.result.error


def test_abort_while_the_target_is_being_asked(tmp_path: Path) -> None:
    transfer = StoreTransfer(tmp_path / "store")
    transfer.prepare_blocks = threading.Event()
    packer = Packer(DEMO, Target("store:/", transfer))
    packer.plan()
    timer = threading.Timer(0.3, packer.abort)
    timer.start()
    started = time.monotonic()
    result = packer.execute()
    assert result.aborted and time.monotonic() - started < 2
    assert transfer.finished is False and transfer.sent == []


def test_prepare_may_only_name_items_it_was_given(tmp_path: Path) -> None:
    class Liar(StoreTransfer):
        def prepare(self, items: Sequence[TransferItem], io: TransferIO) -> list[TransferItem]:
            item = items[0]
            return [TransferItem(item.read_from, PurePosixPath("elsewhere"), 1, item.source)]

    with pytest.raises(PackError, match=r"prepare\(\) returned a file it was not asked about \(elsewhere\)"):
        to_store(Liar(tmp_path / "store"))


def test_a_failing_callback_does_not_break_the_pack(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    class Broken(PackCallback):
        def transfer_progress(self, total_bytes: int, transferred_bytes: int) -> None:
            raise RuntimeError("display bug")

    transfer = StoreTransfer(tmp_path / "store")
    result = to_store(transfer, callback=Broken())
    assert result.complete and len(transfer.sent) == DEMO_SENT
    assert "display bug" in caplog.text


# --- routing ------------------------------------------------------------------------


class Scheme:
    def __init__(self, name: str, urls: tuple[str, ...] = (),
                 recognises: Callable[[str], bool] | None = None, priority: int = 0) -> None:
        self.scheme = TargetScheme(name=name, help="test", url_schemes=urls, recognises=recognises,
                                   priority=priority, resolve=self.resolve)
        self.resolved: list[str] = []

    def resolve(self, target: str) -> Target:
        self.resolved.append(target)
        return Target(target, StoreTransfer(Path("/nonexistent")))

    @hookimpl
    def register_target_schemes(self, register: Callable[[TargetScheme], None]) -> None:
        register(self.scheme)


def choose(target: str, *schemes: Scheme, name: str | None = None) -> str:
    from bat_core.pack.schemes import choose_scheme
    from bat_core.plugins import get_registry
    return choose_scheme(target, get_registry(schemes), name).name


def test_routing_by_url_scheme_first() -> None:
    gcs = Scheme("gcs", ("gs",))
    assert choose("gs://bucket/shot.zip", gcs) == "gcs"  # not the ZIP target
    assert choose("GS://bucket/x", gcs) == "gcs"
    assert choose("out.zip", gcs) == "zip"
    assert choose("C:\\out", gcs) == "directory" and choose("C:/out", gcs) == "directory"
    assert choose("odd:name", gcs) == "directory"  # no ":/": a file name with a colon
    assert choose("gs://bucket/x", gcs, name="zip") == "zip"


def test_recognisers_in_documented_order() -> None:
    low = Scheme("aaa", recognises=lambda t: t.endswith(".pak"))
    high = Scheme("zzz", recognises=lambda t: t.endswith(".pak"), priority=5)
    assert choose("x.pak", low, high) == "zzz"
    assert choose("x.pak", low, Scheme("bbb", recognises=lambda t: t.endswith(".pak"))) == "aaa"


def test_unserved_url_schemes_are_refused(tmp_path: Path, run_bat) -> None:  # type: ignore[no-untyped-def]
    from bat_core.pack.schemes import choose_scheme
    from bat_core.plugins import get_registry
    with pytest.raises(PackError, match=r"no installed plugin serves foo: targets \(foo://x/y\); URL schemes "
                                        r"installed: .*target plugins are packages named bat-NAME"):
        choose_scheme("foo://x/y", get_registry())
    os.chdir(tmp_path)
    res = run_bat("pack", str(DEMO), "gs://bucket/job")
    assert res.exit_code == 1
    assert "no installed plugin serves gs: targets" in res.stderr and "pip install bat-gcs" in res.stderr
    assert res.stderr.count("\n") == 1 and "Traceback" not in res.stderr
    assert list(tmp_path.iterdir()) == []  # no local directory called "gs:"


def test_a_scheme_claimed_twice_is_an_error_naming_both() -> None:
    one, two = Scheme("one", ("dup",)), Scheme("two", ("dup",))
    with pytest.raises(PackError, match=r"URL scheme 'dup:' is registered by several plugins \(.+, .+\)"):
        choose("dup://x", one, two)
    same1, same2 = Scheme("same"), Scheme("same")
    with pytest.raises(PackError, match=r"target scheme 'same' is registered by several plugins"):
        choose("x", same1, same2, name="same")


def test_transfer_files_without_a_blend_file(tmp_path: Path) -> None:
    from bat_core.pack import transfer_files
    files = []
    for n in range(5):
        path = tmp_path / "src" / f"f{n}.bin"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(bytes([n]) * (n * 1000))
        files.append(TransferItem(path, PurePosixPath(f"d/f{n}.bin"), path.stat().st_size, path))
    transfer = StoreTransfer(tmp_path / "store")
    outcome = transfer_files(Target("store:/", transfer), files)
    assert outcome.settled and transfer.finished is True and len(transfer.sent) == 5
    assert [i.sha256 for i in outcome.items] == [sha256(f.read_from) for f in files]
    again = StoreTransfer(tmp_path / "store")
    assert set(transfer_files(Target("store:/", again), files).actions.values()) == {"skipped"}
    broken = StoreTransfer(tmp_path / "store2")
    broken.permanent = "d/f3.bin"
    with pytest.raises(PackError, match="access denied"):
        transfer_files(Target("store:/", broken), files)
    assert broken.finished is False
