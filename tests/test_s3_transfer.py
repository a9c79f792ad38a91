"""The S3 transfer on its own against a real SeaweedFS: uploads, skips, faults, aborts, errors.

Items are made by hand here (with the SHA-256 the engine would compute) and
driven through ``start`` / ``prepare`` / ``send`` / ``finish`` the way the
engine drives them; the packs through ``bat pack`` are in ``test_s3_pack.py``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

pytest.importorskip("boto3", reason="boto3 is not installed (the s3 extra)")

from bat_core.targets import Aborted, PackError, RetryableError, TransferItem
from bat_plugins.s3 import resolve_s3
from bat_plugins.s3.transfer import S3Transfer

from .s3_faults import fault_proxy, first_n
from .s3_server import ACCESS_KEY, READER_ACCESS_KEY, READER_SECRET_KEY, SECRET_KEY, AwsEnv, S3Server

BUCKET = "bat-transfer"
BIG = 20 * 1024 * 1024  # above the multipart threshold: three parts


class Driver:
    """What the engine hands to prepare and send: abort flag, progress, round."""

    def __init__(self, on_progress: Callable[[Driver], None] | None = None) -> None:
        self.abort_event = threading.Event()
        self.bytes = 0
        self.round = 1
        self.can_defer = False
        self._on_progress = on_progress
        self._lock = threading.Lock()

    @property
    def aborted(self) -> bool:
        return self.abort_event.is_set()

    def check_abort(self) -> None:
        if self.abort_event.is_set():
            raise Aborted()

    def progress(self, nbytes: int) -> None:
        with self._lock:
            self.bytes += nbytes
        if self._on_progress is not None:
            self._on_progress(self)


def item(path: Path, dest: str) -> TransferItem:
    data = path.read_bytes()
    return TransferItem(path, PurePosixPath(dest), len(data), path, sha256=hashlib.sha256(data).hexdigest())


def run(transfer: S3Transfer, items: list[TransferItem], io: Driver | None = None) -> list[str]:
    """One round as the engine runs it; the destinations sent."""
    io = io or Driver()
    transfer.start()
    completed = False
    try:
        todo = transfer.prepare(items, io)
        for it in todo:
            transfer.send(it, io)
        completed = True
    finally:
        transfer.finish(completed)
    return [str(i.dest) for i in todo]


@pytest.fixture(scope="module")
def bucket(s3_server: S3Server) -> str:
    return s3_server.make_bucket(BUCKET)


@pytest.fixture
def env(aws_env: AwsEnv) -> AwsEnv:
    aws_env.environment()
    return aws_env


@pytest.fixture
def prefix() -> str:
    return f"t-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    src = tmp_path / "src"
    (src / "textures").mkdir(parents=True)
    (src / "shot.blend").write_bytes(b"BLENDER-v405" + os.urandom(3000))
    (src / "textures" / "a.png").write_bytes(os.urandom(1000))
    (src / "big.bin").write_bytes(os.urandom(BIG))
    return {"blend": src / "shot.blend", "tex": src / "textures" / "a.png", "big": src / "big.bin"}


def items_of(files: dict[str, Path]) -> list[TransferItem]:
    return [item(files["blend"], "shot.blend"), item(files["tex"], "textures/a.png"), item(files["big"], "big.bin")]


def target(s3_server: S3Server, prefix: str, host: str | None = None) -> S3Transfer:
    transfer = resolve_s3(f"s3+http://{host or s3_server.host}/{BUCKET}/{prefix}").transfer
    assert isinstance(transfer, S3Transfer)
    return transfer


def listing(s3_server: S3Server, prefix: str) -> dict[str, tuple[str, Any]]:
    out = {}
    for page in s3_server.client().get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix + "/"):
        for obj in page.get("Contents", ()):
            out[obj["Key"]] = (obj["ETag"], obj["LastModified"])
    return out


def open_uploads(s3_server: S3Server, prefix: str = "") -> list[str]:
    answer = s3_server.client().list_multipart_uploads(Bucket=BUCKET, Prefix=prefix)
    return [u["Key"] for u in answer.get("Uploads", ())]


def test_upload_then_repack_sends_nothing(s3_server: S3Server, bucket: str, env: AwsEnv, prefix: str,
                                          files: dict[str, Path]) -> None:
    items = items_of(files)
    first = target(s3_server, prefix)
    assert run(first, items) == ["big.bin", "shot.blend", "textures/a.png"]  # biggest first
    client = s3_server.client()
    for it in items:
        obj = client.get_object(Bucket=BUCKET, Key=f"{prefix}/{it.dest}")
        assert obj["Metadata"]["sha256"] == it.sha256
        assert hashlib.sha256(obj["Body"].read()).hexdigest() == it.sha256
    assert first.connection is not None and first.connection.requests["UploadPart"] == 3
    before = listing(s3_server, prefix)
    assert f"{prefix}/.bat-manifest.json" in before

    again = target(s3_server, prefix)
    assert run(again, items) == []
    assert listing(s3_server, prefix) == before  # no object written, the manifest neither
    assert again.connection is not None
    # The check of the bucket (one key), the listing, the manifest.
    assert dict(again.connection.requests) == {"ListObjectsV2": 2, "GetObject": 1}
    assert again.report()["requests"] == 3


def test_without_manifest_heads_settle_and_the_manifest_is_rewritten(
        s3_server: S3Server, bucket: str, env: AwsEnv, prefix: str, files: dict[str, Path]) -> None:
    items = items_of(files)
    run(target(s3_server, prefix), items)
    s3_server.client().delete_object(Bucket=BUCKET, Key=f"{prefix}/.bat-manifest.json")
    again = target(s3_server, prefix)
    assert run(again, items) == []
    assert again.connection is not None and again.connection.requests["HeadObject"] == 3
    assert again.connection.requests["PutObject"] == 1  # the manifest, so next time needs no HEAD
    third = target(s3_server, prefix)
    assert run(third, items) == []
    assert third.connection is not None and "HeadObject" not in third.connection.requests


def test_changed_content_of_the_same_size_is_sent(s3_server: S3Server, bucket: str, env: AwsEnv, prefix: str,
                                                  files: dict[str, Path]) -> None:
    run(target(s3_server, prefix), items_of(files))
    before = listing(s3_server, prefix)
    files["tex"].write_bytes(os.urandom(1000))
    assert run(target(s3_server, prefix), items_of(files)) == ["textures/a.png"]
    after = listing(s3_server, prefix)
    changed = {k for k in after if after[k] != before.get(k)}
    assert changed == {f"{prefix}/textures/a.png", f"{prefix}/.bat-manifest.json"}


def test_foreign_objects_are_checked_and_replaced(s3_server: S3Server, bucket: str, env: AwsEnv, prefix: str,
                                                  files: dict[str, Path]) -> None:
    """Same size, no bat metadata (say, BAT 1.x's md5): a HEAD finds out, the object is replaced."""
    client = s3_server.client()
    client.put_object(Bucket=BUCKET, Key=f"{prefix}/textures/a.png", Body=os.urandom(1000), Metadata={"md5": "x"})
    client.put_object(Bucket=BUCKET, Key=f"{prefix}/shot.blend", Body=files["blend"].read_bytes())
    client.put_object(Bucket=BUCKET, Key=f"{prefix}/.bat-manifest.json", Body=b"{not json")
    transfer = target(s3_server, prefix)
    assert run(transfer, items_of(files)) == ["big.bin", "shot.blend", "textures/a.png"]
    # Two to check the objects of the right size; one for the ETag of the multipart upload, for the manifest.
    assert transfer.connection is not None and transfer.connection.requests["HeadObject"] == 3


def test_abort_mid_multipart_upload_leaves_no_upload_open(s3_server: S3Server, bucket: str, env: AwsEnv,
                                                          prefix: str, files: dict[str, Path]) -> None:
    def abort_after_a_part(io: Driver) -> None:
        if io.bytes >= 1024 * 1024:
            io.abort_event.set()

    io = Driver(abort_after_a_part)
    transfer = target(s3_server, prefix)
    transfer.start()
    started = time.monotonic()
    with pytest.raises(Aborted):
        transfer.send(item(files["big"], "big.bin"), io)
    assert time.monotonic() - started < 2
    transfer.finish(False)
    assert transfer.connection is not None and transfer.connection.requests["CreateMultipartUpload"] == 1
    assert open_uploads(s3_server, prefix) == []
    assert f"{prefix}/big.bin" not in listing(s3_server, prefix)


def test_finish_aborts_uploads_left_open(s3_server: S3Server, bucket: str, env: AwsEnv, prefix: str,
                                         files: dict[str, Path]) -> None:
    """An upload this pack started that is still open at the end is aborted; other uploads are not."""
    client = s3_server.client()
    other = client.create_multipart_upload(Bucket=BUCKET, Key=f"{prefix}/someone-else.bin")["UploadId"]
    transfer = target(s3_server, prefix)
    transfer.start()
    assert transfer.connection is not None
    mine = transfer.connection.client.create_multipart_upload(Bucket=BUCKET, Key=f"{prefix}/big.bin")["UploadId"]
    transfer.finish(False)
    left = client.list_multipart_uploads(Bucket=BUCKET, Prefix=prefix).get("Uploads", [])
    assert [u["UploadId"] for u in left] == [other]
    assert mine != other
    client.abort_multipart_upload(Bucket=BUCKET, Key=f"{prefix}/someone-else.bin", UploadId=other)


def _one_line_no_secret(err: BaseException, *secrets: str) -> str:
    text = str(err)
    assert "\n" not in text and text
    for secret in secrets:
        assert secret not in text
    return text


def test_wrong_secret(s3_server: S3Server, bucket: str, aws_env: AwsEnv, prefix: str) -> None:
    aws_env.environment(secret_key="this-is-the-wrong-secret")
    with pytest.raises(PackError) as err:
        target(s3_server, prefix).start()
    text = _one_line_no_secret(err.value, "this-is-the-wrong-secret", ACCESS_KEY)
    assert "secret key is wrong" in text and "AWS_ACCESS_KEY_ID" in text


def test_unknown_access_key(s3_server: S3Server, bucket: str, aws_env: AwsEnv, prefix: str) -> None:
    aws_env.environment(access_key="NOSUCHKEY12345", secret_key="whatever-secret")
    with pytest.raises(PackError) as err:
        target(s3_server, prefix).start()
    assert "does not know the access key" in _one_line_no_secret(err.value, "NOSUCHKEY12345", "whatever-secret")


def test_unknown_bucket(s3_server: S3Server, env: AwsEnv) -> None:
    transfer = resolve_s3(f"s3+http://{s3_server.host}/no-such-bucket-here/x").transfer
    with pytest.raises(PackError) as err:
        transfer.start()
    assert "no such bucket" in _one_line_no_secret(err.value, SECRET_KEY, ACCESS_KEY)


def test_unreachable_endpoint(env: AwsEnv) -> None:
    transfer = resolve_s3("s3+http://127.0.0.1:9/bkt/x").transfer  # the discard port: nothing listens
    started = time.monotonic()
    with pytest.raises(PackError) as err:
        transfer.start()
    assert time.monotonic() - started < 5
    text = _one_line_no_secret(err.value, SECRET_KEY, ACCESS_KEY)
    assert "cannot reach http://127.0.0.1:9" in text and "refused" in text.lower()


def test_no_credentials(s3_server: S3Server, aws_env: AwsEnv, prefix: str) -> None:
    with pytest.raises(PackError, match=r"no S3 credentials found.*\[127\.0\.0\.1:\d+\] profile"):
        target(s3_server, prefix).start()


def test_read_only_credentials_cannot_upload(s3_server: S3Server, bucket: str, aws_env: AwsEnv, prefix: str,
                                             files: dict[str, Path]) -> None:
    aws_env.profile(s3_server.host, READER_ACCESS_KEY, READER_SECRET_KEY)
    transfer = target(s3_server, prefix)
    with pytest.raises(PackError) as err:
        run(transfer, [item(files["tex"], "textures/a.png")])
    assert not isinstance(err.value, RetryableError)
    text = _one_line_no_secret(err.value, READER_SECRET_KEY, READER_ACCESS_KEY)
    assert "access denied" in text and f"[{s3_server.host}] profile" in text


def test_name_that_is_not_utf8(s3_server: S3Server, bucket: str, env: AwsEnv, prefix: str, tmp_path: Path) -> None:
    path = tmp_path / "x.png"
    path.write_bytes(b"x")
    bad = TransferItem(path, PurePosixPath(os.fsdecode(b"tex/\xff.png")), 1, path, sha256="0" * 64)
    with pytest.raises(PackError, match="not valid UTF-8"):
        run(target(s3_server, prefix), [bad])


def test_slow_down_storm_is_retried(s3_server: S3Server, bucket: str, env: AwsEnv, prefix: str,
                                    files: dict[str, Path]) -> None:
    """Three 503 SlowDown answers in a row: the uploads back off and get through."""
    is_put = lambda r: r.method == "PUT"  # noqa: E731
    with fault_proxy(s3_server.host, first_n(3, "503", is_put)) as proxy:
        assert run(target(s3_server, prefix, proxy.host), items_of(files))
        assert proxy.count("503") == 3
    for it in items_of(files):
        head = s3_server.client().head_object(Bucket=BUCKET, Key=f"{prefix}/{it.dest}")
        assert head["Metadata"]["sha256"] == it.sha256


def test_endless_slow_down_is_a_retryable_error(s3_server: S3Server, bucket: str, env: AwsEnv, prefix: str,
                                                files: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bat_plugins.s3.retries.MAX_BACKOFF", 0.05)
    is_put = lambda r: r.method == "PUT"  # noqa: E731
    with fault_proxy(s3_server.host, first_n(10**6, "503", is_put)) as proxy:
        transfer = target(s3_server, prefix, proxy.host)
        transfer.start()
        with pytest.raises(RetryableError) as err:
            transfer.send(item(files["tex"], "textures/a.png"), Driver())
        transfer.finish(False)
        assert proxy.count("503") == 4  # the attempts of one request, then the engine's next round
    assert "busy or failing (SlowDown, HTTP 503)" in _one_line_no_secret(err.value, SECRET_KEY, ACCESS_KEY)


def test_abort_during_back_off_is_quick(s3_server: S3Server, bucket: str, env: AwsEnv, prefix: str,
                                        files: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """Back-offs of 0.5, 1 and 2 s: an abort 0.7 s in ends the upload at once, not 3.5 s later."""
    monkeypatch.setattr("bat_plugins.s3.retries.jitter", lambda: 1.0)
    is_put = lambda r: r.method == "PUT"  # noqa: E731
    with fault_proxy(s3_server.host, first_n(10**6, "503", is_put)) as proxy:
        transfer = target(s3_server, prefix, proxy.host)
        transfer.start()
        io = Driver()
        timer = threading.Timer(0.7, io.abort_event.set)
        timer.start()
        started = time.monotonic()
        with pytest.raises(Aborted):
            transfer.send(item(files["tex"], "textures/a.png"), io)
        assert time.monotonic() - started < 1.5
        transfer.finish(False)
        assert proxy.count("503") == 2


def test_reset_in_the_middle_of_a_part(s3_server: S3Server, bucket: str, env: AwsEnv, prefix: str,
                                       files: dict[str, Path]) -> None:
    """The connection drops halfway through a part's body: the part is sent again, the object is whole."""
    with fault_proxy(s3_server.host, first_n(2, "reset", lambda r: r.is_part)) as proxy:
        transfer = target(s3_server, prefix, proxy.host)
        io = Driver()
        assert run(transfer, [item(files["big"], "big.bin")], io) == ["big.bin"]
        assert proxy.count("reset") == 2
    assert io.bytes == BIG  # rewinds of the retried parts are not counted twice
    body = s3_server.client().get_object(Bucket=BUCKET, Key=f"{prefix}/big.bin")["Body"].read()
    assert body == files["big"].read_bytes()
    assert open_uploads(s3_server, prefix) == []


def test_credentials_never_logged(s3_server: S3Server, bucket: str, env: AwsEnv, prefix: str,
                                  files: dict[str, Path], caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        logging.getLogger().setLevel(logging.DEBUG)
        for name in ("botocore", "boto3", "s3transfer", "urllib3"):
            logging.getLogger(name).setLevel(logging.NOTSET)
        run(target(s3_server, prefix), [item(files["tex"], "textures/a.png")])
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert ACCESS_KEY not in text and SECRET_KEY not in text
