"""The GCS transfer on the shared engine, through the public API (``transfer_files``), against the emulator.

Resumable uploads in several chunks, and what happens when a chunk fails,
the connection drops, a chunk arrives corrupted, the file changes after it
was hashed, the pack is aborted mid-upload, a listing fails, or the server
refuses.  Faults come from a proxy in front of the real emulator
(``gcs_emulator.FaultProxy``): the emulator cannot produce them on demand.
"""

from __future__ import annotations

import hashlib
import os
import random
import threading
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from bat_core.pack import transfer_files
from bat_core.progress import PackCallback
from bat_core.targets import PackError, RetryableError, Target, TransferIO, TransferItem

from .gcs_emulator import Emulator, FaultProxy, Seen, bat_gcs_code, emulator, fault_proxy

#: Session fixtures from gcs_emulator, used here by name.
FIXTURES = (bat_gcs_code, emulator, fault_proxy)

BUCKET = "bat-transfer"
KIB = 1024
CHUNK = 256 * KIB


@pytest.fixture(scope="module")
def bucket(emulator: Emulator) -> str:
    emulator.create_bucket(BUCKET)
    return BUCKET


@pytest.fixture(autouse=True)
def _quick_backoff(bat_gcs_code: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries within a send wait 10 ms instead of 0.5 s (the logic is the same)."""
    from bat_gcs import resumable

    monkeypatch.setattr(resumable, "FIRST_BACKOFF", 0.01)


def make_file(path: Path, size: int, seed: int = 1) -> TransferItem:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(random.Random(seed).randbytes(size))
    return TransferItem(read_from=path, dest=PurePosixPath(path.name), size=size, source=path)


def target(prefix: str, **kwargs: Any) -> Target:
    from bat_gcs.address import GcsAddress
    from bat_gcs.transfer import GcsTransfer

    address = GcsAddress(BUCKET, prefix)
    return Target(root=address.url, transfer=GcsTransfer(address, **kwargs))


def big_target(prefix: str) -> Target:
    """Resumable uploads from 512 KiB, in 256 KiB chunks."""
    return target(prefix, resumable_threshold=2 * CHUNK, chunk_size=CHUNK)


def stored(emu: Emulator, name: str) -> bytes | None:
    blob = emu.client().bucket(BUCKET).get_blob(name)
    return None if blob is None else blob.download_as_bytes()  # type: ignore[no-any-return]


class Progress(PackCallback):
    def __init__(self) -> None:
        self.values: list[int] = []
        self.deferred: list[str] = []

    def transfer_progress(self, total_bytes: int, transferred_bytes: int) -> None:
        self.values.append(transferred_bytes)

    def transfer_file_deferred(self, src: Path, dst: str, reason: str) -> None:
        self.deferred.append(reason)


def chunk_puts(proxy: FaultProxy) -> list[Seen]:
    return [s for s in proxy.requests("PUT", "upload_id") if not s.headers["content-range"].startswith("bytes */")]


def sessions(proxy: FaultProxy) -> list[Seen]:
    return proxy.requests("POST", "uploadType=resumable")


def starts_at(offset: int):  # type: ignore[no-untyped-def]
    return lambda s: s.method == "PUT" and s.headers.get("content-range", "").startswith(f"bytes {offset}-")


def test_large_files_go_up_in_chunks_with_progress(bucket: str, emulator: Emulator, fault_proxy: FaultProxy,
                                                   tmp_path: Path) -> None:
    item = make_file(tmp_path / "big.bin", 5 * CHUNK + 1234)
    progress = Progress()
    t = big_target("chunks")
    outcome = transfer_files(t, [item], callback=progress)
    assert outcome.settled
    assert stored(emulator, "chunks/big.bin") == item.read_from.read_bytes()
    assert len(chunk_puts(fault_proxy)) == 6 and len(sessions(fault_proxy)) == 1
    assert t.transfer.report()["resumable_uploads"] == 1
    grew = [v for v in progress.values if 0 < v < item.size]
    assert len(grew) >= 4 and grew == sorted(grew)  # progress per chunk, not all at the end
    blob = emulator.client().bucket(BUCKET).get_blob("chunks/big.bin")
    assert blob.metadata == {"bat-sha256": hashlib.sha256(item.read_from.read_bytes()).hexdigest()}


def test_a_failed_chunk_resumes_where_gcs_got_to(bucket: str, emulator: Emulator, fault_proxy: FaultProxy,
                                                 tmp_path: Path) -> None:
    failed = []

    def fail_once(seen: Seen) -> int | None:
        if starts_at(2 * CHUNK)(seen) and not failed:
            failed.append(seen)
            return 503
        return None

    fault_proxy.faults.append(fail_once)
    item = make_file(tmp_path / "resume.bin", 4 * CHUNK + 7)
    outcome = transfer_files(big_target("resume"), [item])
    assert outcome.settled and outcome.rounds == 1
    assert stored(emulator, "resume/resume.bin") == item.read_from.read_bytes()
    assert len(sessions(fault_proxy)) == 1, "the upload went on in the same session"
    status = [s for s in fault_proxy.requests("PUT", "upload_id") if s.headers["content-range"].startswith("bytes */")]
    assert status, "asked GCS how far it got"
    offsets = [s.headers["content-range"].split()[1].split("-")[0] for s in chunk_puts(fault_proxy)]
    assert offsets.count("0") == 1, "the first chunks were not sent again"


def test_a_dropped_upload_is_resumed_in_the_next_round(bucket: str, emulator: Emulator,
                                                       fault_proxy: FaultProxy, tmp_path: Path) -> None:
    from bat_gcs.resumable import CHUNK_TRIES

    drops = []

    def drop(seen: Seen) -> str | None:
        if starts_at(CHUNK)(seen) and len(drops) < CHUNK_TRIES:
            drops.append(seen)
            return "drop"
        return None

    fault_proxy.faults.append(drop)
    item = make_file(tmp_path / "dropped.bin", 3 * CHUNK)
    progress = Progress()
    outcome = transfer_files(big_target("dropped"), [item], callback=progress)
    assert outcome.settled and outcome.rounds == 2
    assert any("upload interrupted at byte 262144" in r for r in progress.deferred), progress.deferred
    assert stored(emulator, "dropped/dropped.bin") == item.read_from.read_bytes()
    assert len(sessions(fault_proxy)) == 1, "round 2 resumed the session of round 1"


def test_an_expired_session_starts_over(bucket: str, emulator: Emulator, fault_proxy: FaultProxy,
                                        tmp_path: Path) -> None:
    from bat_gcs.resumable import CHUNK_TRIES

    drops: list[Seen] = []

    def expire(seen: Seen) -> str | int | None:
        if starts_at(CHUNK)(seen) and len(drops) < CHUNK_TRIES:
            drops.append(seen)
            return "drop"
        if len(drops) == CHUNK_TRIES and seen.headers.get("content-range", "").startswith("bytes */"):
            drops.append(seen)
            return 410  # round 2 asks about the old session: gone
        return None

    fault_proxy.faults.append(expire)
    item = make_file(tmp_path / "expired.bin", 3 * CHUNK)
    outcome = transfer_files(big_target("expired"), [item])
    assert outcome.settled
    assert stored(emulator, "expired/expired.bin") == item.read_from.read_bytes()
    assert len(sessions(fault_proxy)) == 2


def test_a_corrupted_upload_is_deleted_and_sent_again(bucket: str, emulator: Emulator,
                                                      fault_proxy: FaultProxy, tmp_path: Path) -> None:
    flipped = []

    def corrupt(seen: Seen):  # type: ignore[no-untyped-def]
        if starts_at(CHUNK)(seen) and not flipped:
            flipped.append(seen)
            return lambda body: body[:10] + bytes([body[10] ^ 0xFF]) + body[11:]
        return None

    fault_proxy.faults.append(corrupt)
    item = make_file(tmp_path / "corrupt.bin", 3 * CHUNK + 5)
    progress = Progress()
    outcome = transfer_files(big_target("corrupt"), [item], callback=progress)
    assert outcome.settled and outcome.rounds == 2
    assert any("arrived corrupted" in r for r in progress.deferred)
    assert fault_proxy.requests("DELETE", "/o/corrupt%2Fcorrupt.bin"), "the corrupted object was deleted"
    assert stored(emulator, "corrupt/corrupt.bin") == item.read_from.read_bytes()


@pytest.mark.parametrize("size", [1000, 3 * CHUNK + 1], ids=["single-request", "resumable"])
def test_a_file_that_changed_after_hashing_is_never_completed(bucket: str, emulator: Emulator,
                                                              fault_proxy: FaultProxy, tmp_path: Path,
                                                              size: int) -> None:
    import dataclasses

    item = make_file(tmp_path / f"changed-{size}.bin", size)
    item = dataclasses.replace(item, sha256=hashlib.sha256(b"what the file held when it was hashed").hexdigest())
    t = big_target("changed")
    t.transfer.start()
    io = TransferIO(threading.Event(), lambda n: None)
    with pytest.raises(PackError, match=r"changed while it was being packed .*; pack again"):
        t.transfer.send(item, io)
    t.transfer.finish(False)
    assert stored(emulator, f"changed/{item.dest}") is None
    last_byte = f"-{size - 1}/{size}"
    assert not [s for s in fault_proxy.seen if last_byte in s.headers.get("content-range", "")]
    if size > 2 * CHUNK:
        assert fault_proxy.requests("DELETE", "upload_id"), "the session was cancelled"


def test_abort_mid_upload_cancels_the_session(bucket: str, emulator: Emulator, fault_proxy: FaultProxy,
                                              tmp_path: Path) -> None:
    abort = threading.Event()

    def abort_at_second_chunk(seen: Seen) -> None:
        if starts_at(CHUNK)(seen):
            abort.set()  # as Ctrl-C would, while this chunk is on its way

    fault_proxy.faults.append(abort_at_second_chunk)
    item = make_file(tmp_path / "aborted.bin", 6 * CHUNK)
    outcome = transfer_files(big_target("aborted"), [item], abort=abort)
    assert outcome.aborted and not outcome.settled
    assert stored(emulator, "aborted/aborted.bin") is None
    assert len(chunk_puts(fault_proxy)) == 2
    assert fault_proxy.requests("DELETE", "upload_id"), "the session was cancelled"


def test_a_failed_listing_is_asked_again(bucket: str, emulator: Emulator, fault_proxy: FaultProxy,
                                         tmp_path: Path) -> None:
    failed: list[Seen] = []

    def fail_listing(seen: Seen) -> int | None:
        if seen.method == "GET" and "maxResults=1000" in seen.path and not failed:
            failed.append(seen)
            return 503
        return None

    fault_proxy.faults.append(fail_listing)
    items = [make_file(tmp_path / f"f{i}.bin", 100 + i, seed=i) for i in range(5)]
    outcome = transfer_files(target("listing"), items)
    assert failed and outcome.settled and outcome.rounds == 2
    for item in items:
        assert stored(emulator, f"listing/{item.dest}") == item.read_from.read_bytes()


def test_throttled_uploads_are_retried(bucket: str, emulator: Emulator, fault_proxy: FaultProxy,
                                       tmp_path: Path) -> None:
    throttled: list[Seen] = []

    def throttle(seen: Seen) -> int | None:
        if seen.method == "POST" and "uploadType=multipart" in seen.path and len(throttled) < 2:
            throttled.append(seen)
            return 429
        return None

    fault_proxy.faults.append(throttle)
    items = [make_file(tmp_path / f"t{i}.bin", 2000, seed=i) for i in range(4)]
    progress = Progress()
    outcome = transfer_files(target("throttled"), items, callback=progress)
    assert outcome.settled and len(throttled) == 2
    assert sum("HTTP 429" in r for r in progress.deferred) == 2
    for item in items:
        assert stored(emulator, f"throttled/{item.dest}") == item.read_from.read_bytes()


@pytest.mark.parametrize(("status", "says"), [
    (403, "access denied (HTTP 403): injected by the test proxy"),
    # The emulator's client has anonymous credentials: a 401 makes it try to refresh them.
    (401, "the server asked for credentials (Anonymous credentials cannot be refreshed.); run 'gcloud auth"),
])
def test_a_refusal_stops_the_pack_with_one_line(bucket: str, emulator: Emulator, fault_proxy: FaultProxy,
                                                tmp_path: Path, status: int, says: str) -> None:
    fault_proxy.faults.append(lambda s: status if s.method == "POST" else None)
    item = make_file(tmp_path / "denied.bin", 500)
    with pytest.raises(PackError) as err:
        transfer_files(target("denied"), [item])
    message = str(err.value)
    assert message.startswith(f"gs://bat-transfer/denied/denied.bin: {says}"), message
    assert "\n" not in message
    assert stored(emulator, "denied/denied.bin") is None


def test_object_names_gcs_cannot_store_are_refused_before_uploading(bucket: str, emulator: Emulator,
                                                                    fault_proxy: FaultProxy, tmp_path: Path) -> None:
    odd = tmp_path / os.fsdecode(b"caf\xe9.png")  # Latin-1 on disk: not UTF-8
    ok = make_file(tmp_path / "fine.png", 10)
    odd.write_bytes(b"x")
    items = [ok, TransferItem(read_from=odd, dest=PurePosixPath(odd.name), size=1, source=odd)]
    with pytest.raises(PackError, match="is not valid UTF-8; GCS object names must be"):
        transfer_files(target("names"), items)
    assert not fault_proxy.requests("POST")


def test_empty_files_and_repacks(bucket: str, emulator: Emulator, tmp_path: Path) -> None:
    items = [make_file(tmp_path / "empty.txt", 0), make_file(tmp_path / "small.txt", 10)]
    first = transfer_files(target("empty"), items)
    assert sorted(first.actions.values()) == ["copied", "copied"]
    assert stored(emulator, "empty/empty.txt") == b""
    again = transfer_files(target("empty"), items)
    assert sorted(again.actions.values()) == ["skipped", "skipped"]


def test_errors_the_emulator_cannot_answer_with_are_classified(bat_gcs_code: None) -> None:
    """With real credentials, a 401 that survives the client's refresh reaches bat-gcs as Unauthorized."""
    from bat_gcs.errors import classify
    from google.api_core import exceptions as api

    refused = classify(api.Unauthorized("Invalid Credentials"), "gs://b/x")
    assert isinstance(refused, PackError)
    assert str(refused).startswith("gs://b/x: the credentials were refused (HTTP 401); run 'gcloud auth")
    assert isinstance(classify(api.ServiceUnavailable("backend"), "gs://b/x"), RetryableError)
    assert isinstance(classify(TimeoutError("slow"), "gs://b/x"), RetryableError)
    assert classify(KeyError("not a Google error"), "gs://b/x") is None


def test_a_pack_at_the_top_of_a_bucket(emulator: Emulator, tmp_path: Path) -> None:
    """``gs://bucket`` alone: objects named by their pack-relative path; resolved by the plugin itself."""
    from bat_gcs.plugin import resolve

    emulator.create_bucket("bat-top")
    resolved = resolve("gs://bat-top/")
    assert resolved.root == "gs://bat-top"
    items = [make_file(tmp_path / "top.txt", 12), make_file(tmp_path / "sub" / "deep.txt", 3)]
    items[1] = TransferItem(read_from=items[1].read_from, dest=PurePosixPath("sub/deep.txt"), size=3,
                            source=items[1].source)
    transfer_files(resolved, items)
    names = sorted(b.name for b in emulator.client().list_blobs("bat-top"))
    assert names == ["sub/deep.txt", "top.txt"]
    assert resolved.display(PurePosixPath("sub/deep.txt")) == "gs://bat-top/sub/deep.txt"
    again = transfer_files(resolve("gs://bat-top"), items)
    assert sorted(again.actions.values()) == ["skipped", "skipped"]
