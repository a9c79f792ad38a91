"""A store on a really small disk: a 6 MiB tmpfs, mounted by the test (needs root; skipped otherwise)."""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path

import pytest

from .shaman_server import SlowUpload, all_blobs, blob_path, requests, sha, start_server, temp_files, wait_until

SIZE = 6 << 20


@pytest.fixture
def small_disk(tmp_path: Path):  # type: ignore[no-untyped-def]
    mnt = tmp_path / "disk"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SIZE}", "tmpfs", str(mnt)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.strip() or done.returncode}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


@pytest.fixture
def server(small_disk: Path):  # type: ignore[no-untyped-def]
    srv = start_server(small_disk / "store", small_disk / "co", "--no-auth")
    yield srv
    srv.stop()


def test_claims_that_do_not_fit_are_507_before_writing(server) -> None:  # type: ignore[no-untyped-def]
    """A 10 GB claim, and a second upload that fits alone but not beside one in flight."""
    for size in (10 * 10**9, SIZE + 1):
        r = requests.post(f"{server.url}files/{sha(b'x')}/{size}", data=b"x" * 1000, timeout=10)
        assert r.status_code == 507 and r.text.startswith("Insufficient storage")
    first, second = os.urandom(4 << 20), os.urandom(4 << 20)
    slow = SlowUpload(server.port, f"/files/{sha(first)}/{len(first)}", first)
    slow.send(1 << 20)
    assert wait_until(lambda: len(temp_files(server.storage)) == 1)
    r = requests.post(f"{server.url}files/{sha(second)}/{len(second)}", data=second, timeout=10)
    assert r.status_code == 507
    slow.finish()
    assert slow.status() == 204
    assert blob_path(server.storage, first).read_bytes() == first
    assert temp_files(server.storage) == []


def test_disk_filling_up_mid_upload_is_507_and_leaves_nothing(server, small_disk: Path) -> None:  # type: ignore[no-untyped-def]
    data = os.urandom(3 << 20)
    slow = SlowUpload(server.port, f"/files/{sha(data)}/{len(data)}", data)
    slow.send(1 << 20)
    assert wait_until(lambda: len(temp_files(server.storage)) == 1)
    filler = small_disk / "filler"
    with contextlib.suppress(OSError), filler.open("wb", buffering=0) as f:
        while True:
            f.write(b"\0" * 65536)  # someone else fills the disk
    slow.finish()
    answer = slow.response()
    assert answer.startswith(b"HTTP/1.1 507 "), answer[:200]
    assert temp_files(server.storage) == []
    assert all_blobs(server.storage) == []
    filler.unlink()
    r = requests.post(f"{server.url}files/{sha(data)}/{len(data)}", data=data, timeout=30)
    assert r.status_code == 204
    assert blob_path(server.storage, data).read_bytes() == data
