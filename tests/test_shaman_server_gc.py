"""``bat shaman gc``: what it deletes, what it keeps, and that uploads in flight survive it."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from .shaman_server import (
    SlowUpload,
    all_blobs,
    blob_path,
    cdf,
    requests,
    sha,
    start_server,
    temp_files,
    wait_until,
)

TEXT = {"Content-Type": "text/plain"}
DAY = 86400


def age(path: Path, days: float) -> None:
    t = time.time() - days * DAY
    os.utime(path, (t, t), follow_symlinks=False)


@pytest.fixture
def served(tmp_path: Path):  # type: ignore[no-untyped-def]
    srv = start_server(tmp_path / "store", tmp_path / "co", "--no-auth")
    yield srv
    srv.stop()


def put(srv, data: bytes) -> Path:  # type: ignore[no-untyped-def]
    r = requests.post(f"{srv.url}files/{sha(data)}/{len(data)}", data=data, timeout=10)
    assert r.status_code in (204, 208)
    return blob_path(srv.storage, data)


def gc(run_bat, srv, *args: str):  # type: ignore[no-untyped-def]
    return run_bat("-v", "shaman", "gc", "--storage", str(srv.storage), "--checkouts", str(srv.checkouts), *args)


def test_gc_deletes_only_old_unlinked_blobs(run_bat, served) -> None:  # type: ignore[no-untyped-def]
    srv = served
    old_unused, old_v2, old_v3, recent = b"old and unused", b"old, in a v2 checkout", b"old, v3", b"recent"
    blobs = {d: put(srv, d) for d in (old_unused, old_v2, old_v3, recent)}
    assert requests.post(srv.url + "checkout/create/gc_job", data=cdf((old_v2, "a/b.png")), headers=TEXT,
                         timeout=10).status_code == 200
    r = requests.post(srv.v3 + "shaman/checkout/create", timeout=10, json={
        "checkoutPath": "shots/gc", "files": [{"sha": sha(old_v3), "size": len(old_v3), "path": "x/y/z.png"}]})
    assert r.status_code == 200
    for d in (old_unused, old_v2, old_v3):
        age(blobs[d], 40)
    age(blobs[recent], 10)

    dry = gc(run_bat, srv, "--older-than", "31d", "--dry-run")
    assert dry.exit_code == 0, dry.stderr
    assert "would delete 1 " in dry.stdout
    assert blobs[old_unused].relative_to(srv.storage).as_posix() in dry.stderr
    assert all(p.exists() for p in blobs.values())

    done = gc(run_bat, srv, "--older-than", "31d")
    assert done.exit_code == 0, done.stderr
    assert "4 blobs, 3 older than 31d, 2 of those linked" in done.stdout and "deleted 1 " in done.stdout
    assert not blobs[old_unused].exists()
    assert not blobs[old_unused].parent.exists() and not blobs[old_unused].parent.parent.exists()
    assert all(blobs[d].exists() for d in (old_v2, old_v3, recent))
    assert (srv.checkouts / "ob" / "gc_job" / "a" / "b.png").read_bytes() == old_v2

    shorter = gc(run_bat, srv, "--older-than", "1w")
    assert shorter.exit_code == 0 and "deleted 1 " in shorter.stdout
    assert not blobs[recent].exists()


def test_gc_keeps_what_a_requirements_request_touched(run_bat, served) -> None:  # type: ignore[no-untyped-def]
    srv = served
    data = b"about to be checked out"
    blob = put(srv, data)
    age(blob, 40)
    r = requests.post(srv.url + "checkout/requirements", data=cdf((data, "a.png")), headers=TEXT, timeout=10)
    assert (r.status_code, r.text) == (200, "")
    assert wait_until(lambda: blob.stat().st_mtime > time.time() - 60)
    assert "deleted 0 " in gc(run_bat, srv).stdout
    assert blob.exists()


def test_gc_never_touches_an_upload_in_flight(run_bat, served) -> None:  # type: ignore[no-untyped-def]
    """The upload's temporary file survives (even when it looks old) and the upload completes."""
    srv = served
    data = b"slow upload " * 100_000
    slow = SlowUpload(srv.port, f"/files/{sha(data)}/{len(data)}", data)
    slow.send(len(data) // 2)
    assert wait_until(lambda: len(temp_files(srv.storage)) == 1)
    for tmp in temp_files(srv.storage):
        age(tmp, 40)
    orphan = srv.storage / "uploading" / "ab" / ("c" * 62) / "5-0123456789abcdef.tmp"
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"dead!")
    age(orphan, 40)
    result = gc(run_bat, srv, "--older-than", "1h")
    assert result.exit_code == 0, result.stderr
    assert "removed 1 stale upload" in result.stdout
    assert not orphan.exists()
    assert len(temp_files(srv.storage)) == 1
    slow.finish()
    assert slow.status() == 204
    assert blob_path(srv.storage, data).read_bytes() == data


def test_gc_puts_back_a_blob_it_was_interrupted_on(run_bat, served) -> None:  # type: ignore[no-untyped-def]
    """A blob left under GC's private name (a GC killed mid-delete) comes back and is judged again."""
    srv = served
    data = b"interrupted gc"
    blob = put(srv, data)
    assert requests.post(srv.url + "checkout/create/keep_me", data=cdf((data, "k.png")), headers=TEXT,
                         timeout=10).status_code == 200
    age(blob, 40)
    doomed = blob.with_name(f"{len(data)}.gc-abcdef012345")
    os.rename(blob, doomed)
    result = gc(run_bat, srv)
    assert result.exit_code == 0, result.stderr
    assert blob.read_bytes() == data and not doomed.exists()
    assert all_blobs(srv.storage) == [blob]


@pytest.mark.parametrize("value,message", [("30m", "at least 1h"), ("forever", "not an age"), ("", "not an age")])
def test_gc_refuses_bad_ages(run_bat, tmp_path: Path, value: str, message: str) -> None:  # type: ignore[no-untyped-def]
    blob = tmp_path / "store" / "stored" / "ab" / ("c" * 62) / "4.blob"
    blob.parent.mkdir(parents=True)
    blob.write_bytes(b"kept")
    age(blob, 400)
    (tmp_path / "co").mkdir()
    result = run_bat("shaman", "gc", "--storage", str(tmp_path / "store"), "--checkouts", str(tmp_path / "co"),
                     "--older-than", value)
    assert result.exit_code == 2 and message in result.stderr
    assert blob.exists()


def test_gc_on_something_that_is_not_a_store(run_bat, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "co").mkdir()
    (tmp_path / "empty").mkdir()
    result = run_bat("shaman", "gc", "--storage", str(tmp_path / "empty"), "--checkouts", str(tmp_path / "co"))
    assert result.exit_code == 1
    assert result.stderr.strip() == f"bat: error: {tmp_path / 'empty'}: not a Shaman store (no stored/ directory)"
