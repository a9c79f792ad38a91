"""Faults mid-pack against a real ``bat shaman serve``, v2 and v3: the server killed and restarted,
``bat pack`` killed or terminated, at exact points of the transfer.

``bat pack`` runs in its own process (it is what gets killed) with short
back-offs; the server in another, on one storage directory that outlives its
restarts.  Between them a :class:`~tests.remote_faults.GateProxy` passes every
byte through and holds the traffic at the moment a test needs: 5 MB into the
upload of a 30 MB texture, at the requirements request, at the checkout
request or at its answer.  After every fault: ``bat`` ended with one line
within a bounded time, the source is untouched, the store holds only verified
blobs and no temporary file that makes a pair look "uploading", and the same
``bat pack`` run again completes; Blender then opens the checkout and finds
every dependency inside it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# First: skips this module when the shaman-server extra (aiohttp, requests) is missing.
from .shaman_server import Server, all_blobs, sha, start_server, temp_files, wait_until

# isort: split
import requests

from .blender_probe import blender_report
from .remote_faults import Finished, GateProxy, bat_env, hashes, make_project, run_bat, start_bat

SECRET = "remote-faults-secret"
PACK_INFO = "pack-info.txt"
BIG = 5 * 1000 * 1000  # how far into the 30 MB texture the faults strike
#: "Bounded time" for a pack against a server that died: its rounds, with the tests' short back-offs.
GIVE_UP_SECONDS = 30


@dataclass
class Rig:
    """A Shaman server on a storage that outlives it, the gate proxy in front, a project to pack."""

    base: Path
    proxy: GateProxy
    server: Server
    project: Path
    env: dict[str, str]

    @property
    def storage(self) -> Path:
        return self.base / "store"

    @property
    def checkouts(self) -> Path:
        return self.base / "checkouts"

    @property
    def blend(self) -> Path:
        return self.project / "shot.blend"

    @property
    def big(self) -> Path:
        return self.project / "textures" / "brick.png"

    def url(self, api: str, name: str) -> str:
        if api == "v2":
            return f"shaman+http://127.0.0.1:{self.proxy.port}/#{name}"
        return f"flamenco+http://127.0.0.1:{self.proxy.port}/jobs/{name}"

    def kill(self) -> None:
        self.server.kill()

    def restart(self) -> Server:
        """A new server process on the same storage and checkouts; the proxy now leads to it."""
        self.server.kill()
        self.server = start_server(self.storage, self.checkouts, "--jwt-secret", SECRET)
        self.proxy.upstream = ("127.0.0.1", self.server.port)
        return self.server

    def pack(self, api: str, name: str, *more: str, timeout: float = 60) -> Finished:
        return run_bat(["pack", "--progress", "none", *more, str(self.blend), self.url(api, name)],
                       self.base / "run", self.env, timeout=timeout)

    def start_pack(self, api: str, name: str, *more: str) -> Any:
        return start_bat(["pack", "--progress", "none", *more, str(self.blend), self.url(api, name)],
                         self.base / "run", self.env)


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    server = start_server(tmp_path / "store", tmp_path / "checkouts", "--jwt-secret", SECRET)
    proxy = GateProxy(("127.0.0.1", server.port)).start()
    rig = Rig(tmp_path, proxy, server, make_project(tmp_path / "src"),
              bat_env(tmp_path / "cache", tmp_path / "home"))
    try:
        yield rig
    finally:
        proxy.stop()
        rig.server.kill()


# --- what must hold after every fault ------------------------------------------------------------


def big_pair(rig: Rig) -> tuple[str, int]:
    data = rig.big.read_bytes()
    return sha(data), len(data)


def state_of(rig: Rig, pair: tuple[str, int]) -> str:
    """What the server (v3 route, straight, not through the proxy) says about a pair."""
    answer = requests.get(f"{rig.server.v3}shaman/files/{pair[0]}/{pair[1]}", timeout=10)
    return str(answer.json()["status"])


def assert_store_clean(rig: Rig) -> None:
    """Only verified blobs; no temporary file left to make a pair look "uploading"."""
    for blob in all_blobs(rig.storage):
        data = blob.read_bytes()
        assert sha(data) == blob.parent.parent.name + blob.parent.name and len(data) == int(blob.stem), blob
    assert wait_until(lambda: temp_files(rig.storage) == [], timeout=10), temp_files(rig.storage)


def project_files(project: Path) -> dict[str, str]:
    return {k: v for k, v in hashes(project).items() if not k.endswith(".json")}


def assert_checkout_complete(rig: Rig, location: str) -> Path:
    """Every file of the project, at its place, with its bytes, as links into the store."""
    root = rig.checkouts / location
    stored = (rig.storage / "stored").resolve()
    links = [p for p in root.rglob("*") if p.is_symlink()]
    assert links and all(p.resolve().is_relative_to(stored) for p in links)
    files, project = hashes(root), project_files(rig.project)
    assert {k: files.get(k) for k in project} == project
    assert set(files) - set(project) <= {PACK_INFO}  # BAT's note of what to open, where bat writes one
    return root


def assert_blender_finds_everything(rig: Rig, root: Path) -> None:
    """Blender opens the checkout's blend file; every path it knows is inside the checkout and exists."""
    packed = root / "shot.blend"
    report = blender_report([packed, rig.blend], rig.base)
    got, source = report[str(packed)], report[str(rig.blend)]
    assert "error" not in got, got
    assert len(got["blend_paths"]) == len(source["blend_paths"]) >= 5
    assert all(lib["found"] for lib in got["libraries"].values()), got["libraries"]
    for path in got["blend_paths"]:
        assert os.path.normpath(path).startswith(str(root) + os.sep) and os.path.exists(path), path


def rerun_completes(rig: Rig, api: str, name: str) -> Path:
    """The same ``bat pack`` again: done, the checkout complete; its root."""
    done = rig.pack(api, name, "--json")
    assert done.code == 0, done.stderr
    assert "Traceback" not in done.stderr
    report = json.loads(done.stdout)
    root = assert_checkout_complete(rig, report["target_info"]["checkout_path"])
    assert_store_clean(rig)
    return root


@pytest.fixture
def source_untouched(rig: Rig) -> Iterator[None]:
    before = hashes(rig.project)
    yield
    assert hashes(rig.project) == before


# --- the server goes away -------------------------------------------------------------------------


@pytest.mark.parametrize("api", ["v2", "v3"])
def test_server_killed_mid_upload_then_rerun(api: str, rig: Rig, source_untouched: None) -> None:
    """SIGKILL to the server 5 MB into a 30 MB upload; it stays down until bat gives up."""
    rig.proxy.hold_after(BIG)
    bat = rig.start_pack(api, "killed_mid_upload")
    rig.proxy.wait_held()
    assert wait_until(lambda: temp_files(rig.storage) != []), "the upload was not under way"
    rig.kill()
    rig.proxy.release()
    line = bat.wait(GIVE_UP_SECONDS + 30).one_line()
    assert re.match(r"gave up after 4 rounds: [1-8] file\(s\) could not be sent to ", line), line
    # Through the proxy a dead server is a connection closed at once; without it, refused.
    assert line.endswith(("closed the connection)", "connection refused)")), line
    assert bat.wait().seconds < GIVE_UP_SECONDS

    rig.restart()
    pair = big_pair(rig)
    assert state_of(rig, pair) == "unknown"  # not "uploading": the dead upload's file is gone
    assert_store_clean(rig)
    root = rerun_completes(rig, api, "killed_mid_upload")
    assert_blender_finds_everything(rig, root)


@pytest.mark.parametrize("api", ["v2", "v3"])
def test_server_restarted_mid_upload_the_same_pack_completes(api: str, rig: Rig, source_untouched: None) -> None:
    """The network stalls 5 MB into the upload while the server is killed and started again:
    the upload fails, the next round sends it to the new server, the pack completes."""
    rig.proxy.hold_after(BIG, freeze=True)
    bat = rig.start_pack(api, "restarted_mid_upload", "--json")
    rig.proxy.wait_held()
    rig.restart()
    rig.proxy.release()
    done = bat.wait(60)
    assert done.code == 0, done.stderr
    report = json.loads(done.stdout)
    # 7 and pack-info.txt.  A small file whose upload finished on the old server as the connection
    # closed is retried, and then the new server (same storage) already has it: skipped, not copied.
    summary = report["summary"]
    assert summary["copied"] + summary["skipped"] == 8 and summary["copied"] >= 1
    assert_checkout_complete(rig, report["target_info"]["checkout_path"])
    assert_store_clean(rig)


@pytest.mark.parametrize("api", ["v2", "v3"])
def test_server_gone_during_the_requirements_request_then_rerun(api: str, rig: Rig, source_untouched: None
                                                               ) -> None:
    rig.proxy.hold_at(b"checkout/requirements")
    bat = rig.start_pack(api, "gone_in_prepare")
    rig.proxy.wait_held()
    rig.kill()
    rig.proxy.release()
    line = bat.wait(GIVE_UP_SECONDS + 30).one_line()
    assert line.startswith("gave up after 4 rounds: ") and "requirements: " in line, line
    rig.restart()
    assert_store_clean(rig)
    assert not [p for p in rig.checkouts.rglob("*") if "gone_in_prepare" in p.name]
    rerun_completes(rig, api, "gone_in_prepare")


@pytest.mark.parametrize("api", ["v2", "v3"])
def test_server_gone_before_the_checkout_request_then_rerun(api: str, rig: Rig, source_untouched: None) -> None:
    """Every file uploaded, the server dies as the checkout is asked for: nothing was created."""
    rig.proxy.hold_at(b"checkout/create")
    bat = rig.start_pack(api, "gone_at_create")
    rig.proxy.wait_held()
    rig.kill()
    rig.proxy.release()
    line = bat.wait(60).one_line()
    assert "gone_at_create" in line and "closed the connection" in line, line
    rig.restart()
    assert [p for p in rig.checkouts.rglob("*") if "gone_at_create" in p.name] == []
    root = rerun_completes(rig, api, "gone_at_create")
    assert root.name == "gone_at_create"


@pytest.mark.parametrize("api", ["v2", "v3"])
def test_checkout_made_but_its_answer_lost_then_rerun(api: str, rig: Rig, source_untouched: None) -> None:
    """The server creates the checkout and dies before its answer reaches bat.  The re-run must not be
    blocked by the checkout the lost answer was about: v2 keeps its checkout ID usable."""
    rig.proxy.hold_at(b"checkout/create", answer=True)
    bat = rig.start_pack(api, "answer_lost")
    rig.proxy.wait_held()
    made = rig.checkouts / ("st/answer_lost" if api == "v2" else "jobs/answer_lost")
    assert made.is_dir()  # the server answered: it has made it
    rig.kill()
    rig.proxy.cut()
    rig.proxy.release()
    line = bat.wait(60).one_line()
    assert "answer_lost" in line and "closed the connection" in line, line
    rig.restart()
    done = rig.pack(api, "answer_lost", "--json")
    assert done.code == 0, done.stderr
    location = json.loads(done.stdout)["target_info"]["checkout_path"]
    if api == "v2":
        assert location == "st/answer_lost"
    root = assert_checkout_complete(rig, location)
    assert_checkout_complete(rig, made.relative_to(rig.checkouts).as_posix())
    assert_blender_finds_everything(rig, root)


@pytest.mark.parametrize("api", ["v2", "v3"])
def test_server_killed_while_building_the_checkout_then_rerun(api: str, rig: Rig, tmp_path: Path) -> None:
    """A push of 20000 files (one content): the server is killed while it builds the checkout under
    its hidden name.  Nothing is visible at the checkout's place, the re-run creates it, and GC
    removes the abandoned build once it is old."""
    tree = tmp_path / "tree"
    for d in range(100):
        (tree / f"d{d:03}").mkdir(parents=True)
        for f in range(200):
            (tree / f"d{d:03}" / f"f{f:03}.txt").write_bytes(b"same content\n")
    name = "half_built"
    url = (f"shaman+http://127.0.0.1:{rig.proxy.port}/#{name}" if api == "v2"
           else f"flamenco+http://127.0.0.1:{rig.proxy.port}/jobs/{name}")
    parent = rig.checkouts / ("lt" if api == "v2" else "jobs")
    rig.proxy.hold_at(b"checkout/create")
    bat = start_bat(["shaman", "push", str(tree), url], tmp_path / "run", rig.env)
    rig.proxy.wait_held()
    rig.proxy.release()
    assert wait_until(lambda: parent.is_dir() and any(p.name.startswith(".bat-creating-") for p in parent.iterdir()),
                      timeout=30, interval=0.001)
    rig.kill()
    builds = [p for p in parent.iterdir() if p.name.startswith(".bat-creating-")]
    assert builds and not (parent / name).exists(), "the server finished the checkout before it was killed"
    assert bat.wait(60).code == 1
    rig.restart()
    done = run_bat(["shaman", "push", "--json", str(tree), url], tmp_path / "run", rig.env)
    assert done.code == 0, done.stderr
    assert json.loads(done.stdout)["target_info"]["checkout_path"].endswith(name)
    assert len([p for p in (parent / name).rglob("*.txt") if p.is_symlink()]) == 20000
    old = time.time() - 2 * 86400
    for build in builds:
        os.utime(build, (old, old))
    gc = run_bat(["shaman", "gc", "--storage", str(rig.storage), "--checkouts", str(rig.checkouts),
                  "--older-than", "1h"], tmp_path / "run", rig.env)
    assert gc.code == 0, gc.stderr
    assert not any(p.exists() for p in builds)
    assert (parent / name / "d000" / "f000.txt").read_bytes() == b"same content\n"


# --- bat goes away ---------------------------------------------------------------------------------


@pytest.mark.parametrize("api", ["v2", "v3"])
def test_bat_killed_mid_upload_then_rerun(api: str, rig: Rig, source_untouched: None) -> None:
    rig.proxy.hold_after(BIG)
    bat = rig.start_pack(api, "bat_killed")
    rig.proxy.wait_held()
    bat.signal(signal.SIGKILL)
    assert bat.wait(10).code == -signal.SIGKILL
    rig.proxy.release()
    assert_store_clean(rig)  # the server saw its client go and removed the upload's file
    assert state_of(rig, big_pair(rig)) == "unknown"
    root = rerun_completes(rig, api, "bat_killed")
    # What a later GC sees: nothing to trip over, the checkout keeps every blob it links.
    gc = run_bat(["shaman", "gc", "--storage", str(rig.storage), "--checkouts", str(rig.checkouts),
                  "--older-than", "1h"], rig.base / "run", rig.env)
    assert gc.code == 0, gc.stderr
    assert_checkout_complete(rig, root.relative_to(rig.checkouts).as_posix())
    assert_blender_finds_everything(rig, root)


@pytest.mark.parametrize("api", ["v2", "v3"])
def test_sigterm_mid_upload_stops_cleanly(api: str, rig: Rig, source_untouched: None) -> None:
    """SIGTERM ends the pack as Ctrl-C does (docs/cli.md: exit status 143): within seconds, nothing
    half stored on the server, no checkout."""
    rig.proxy.hold_after(BIG)
    bat = rig.start_pack(api, "terminated")
    rig.proxy.wait_held()
    bat.signal(signal.SIGTERM)
    signalled = time.monotonic()
    rig.proxy.release()
    done = bat.wait(30)
    assert done.code == 143, done.stderr
    assert time.monotonic() - signalled < 5
    assert "Traceback" not in done.stderr and done.errors() == []
    assert "bat: terminated (SIGTERM)" in done.stderr.splitlines()
    assert_store_clean(rig)
    assert state_of(rig, big_pair(rig)) == "unknown"
    assert not [p for p in rig.checkouts.rglob("*") if "terminated" in p.name]
    rerun_completes(rig, api, "terminated")


@pytest.mark.parametrize("api", ["v2", "v3"])
def test_sigterm_mid_push_stops_cleanly(api: str, rig: Rig, source_untouched: None) -> None:
    """``bat shaman push`` stops on SIGTERM as on Ctrl-C: exit status 143, one line, no half-stored file."""
    rig.proxy.hold_after(BIG)
    push = start_bat(["shaman", "push", "--progress", "none", str(rig.project), rig.url(api, "pushed")],
                     rig.base / "run", rig.env)
    rig.proxy.wait_held()
    push.signal(signal.SIGTERM)
    signalled = time.monotonic()
    rig.proxy.release()
    done = push.wait(30)
    assert done.code == 143, done.stderr
    assert time.monotonic() - signalled < 5
    assert "Traceback" not in done.stderr
    assert "bat: terminated (SIGTERM); the files uploaded so far stay on the server" in done.stderr.splitlines()
    assert_store_clean(rig)
    assert state_of(rig, big_pair(rig)) == "unknown"
    assert not [p for p in rig.checkouts.rglob("*") if "pushed" in p.name]


# --- the store's side of a dead upload ------------------------------------------------------------


def test_a_writer_that_loses_its_new_file_to_a_cleaner_starts_another(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Dead uploads' files are removed without a grace period, so a cleaner in another process may take
    a writer's file in the instant between its create and its lock: the writer must notice (the lock is
    held, or the file unlinked) and make a new file, never write to one that is gone."""
    import fcntl

    from bat_plugins.shaman.server import store as store_module
    from bat_plugins.shaman.server.store import FileStore, Pair

    store = FileStore(tmp_path / "store")
    store.ensure_layout()
    pair = Pair("ab" * 32, 10)
    real_try_lock = store_module.try_lock
    cleaner: list[int] = []

    def racing_try_lock(fd: int) -> Any:
        if not cleaner:  # the cleaner, another open file description, gets there first
            (victim,) = store.upload_dir(pair).iterdir()
            other = os.open(victim, os.O_RDWR)
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.unlink(victim)
            cleaner.append(other)
        return real_try_lock(fd)

    monkeypatch.setattr(store_module, "try_lock", racing_try_lock)
    temp = store.open_temp(pair)
    try:
        assert cleaner
        assert temp.path.exists() and os.fstat(temp.fd).st_nlink == 1
        assert [p.name for p in store.upload_dir(pair).iterdir()] == [temp.path.name]
        monkeypatch.setattr(store_module, "try_lock", real_try_lock)
        assert store.is_uploading(pair)  # its own file: never probed
        other_process = FileStore(tmp_path / "store")
        assert other_process.is_uploading(pair)  # locked by its writer
    finally:
        os.close(cleaner[0])
        store.discard(temp)
    assert not store.is_uploading(pair)
