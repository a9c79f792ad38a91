"""Uploads in flight, parallel receivers, killed clients and servers, two servers on one store."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from .shaman_server import (
    Server,
    SlowUpload,
    all_blobs,
    blob_path,
    cdf,
    requests,
    sha,
    start_server,
    start_servers,
    temp_files,
    wait_until,
)

TEXT = {"Content-Type": "text/plain"}
OCTET = {"Content-Type": "application/octet-stream"}


@pytest.fixture
def pair_of_servers(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Two server processes on one storage and checkouts directory."""
    a, b = start_servers(2, tmp_path / "store", tmp_path / "co", "--no-auth")
    yield a, b
    a.stop()
    b.stop()


@pytest.fixture
def server(pair_of_servers: tuple[Server, Server]) -> Server:
    return pair_of_servers[0]


def content(tag: str, size: int) -> bytes:
    seed = f"{tag}-{time.monotonic_ns()}".encode()
    return (seed * (size // len(seed) + 1))[:size]


def v2_path(data: bytes) -> str:
    return f"/files/{sha(data)}/{len(data)}"


def requirements_v2(server: Server, *entries: tuple[bytes, str]) -> str:
    r = requests.post(server.url + "checkout/requirements", data=cdf(*entries), headers=TEXT, timeout=10)
    assert r.status_code == 200
    return r.text


def requirements_v3(server: Server, data: bytes, path: str) -> list[dict[str, object]]:
    r = requests.post(server.v3 + "shaman/checkout/requirements",
                      json={"files": [{"sha": sha(data), "size": len(data), "path": path}]}, timeout=10)
    assert r.status_code == 200
    return r.json()["files"]  # type: ignore[no-any-return]


def verify_store(storage: Path) -> int:
    """Every blob holds exactly the content its name claims; returns how many."""
    blobs = all_blobs(storage)
    for blob in blobs:
        data = blob.read_bytes()
        assert len(data) == int(blob.name[:-len(".blob")])
        assert hashlib.sha256(data).hexdigest() == blob.parent.parent.name + blob.parent.name
    return len(blobs)


def test_upload_in_progress_is_seen_by_both_apis_and_both_processes(pair_of_servers: tuple[Server, Server]) -> None:
    """v2 4, 13, 18; v3 3, 6, 9: "uploading" comes from the temporary file, so the other process sees it too."""
    a, b = pair_of_servers
    data = content("inflight", 1 << 20)
    slow = SlowUpload(a.port, v2_path(data), data)
    slow.send(300_000)
    assert wait_until(lambda: len(temp_files(a.storage)) == 1)
    for srv in (a, b):
        assert requirements_v2(srv, (data, "tex/big.exr")) == "already-uploading tex/big.exr\n"
        assert requirements_v3(srv, data, "tex/big.exr")[0]["status"] == "uploading"
        assert requests.options(srv.url + v2_path(data)[1:], timeout=10).status_code == 420
        r = requests.get(f"{srv.v3}shaman/files/{sha(data)}/{len(data)}", timeout=10)
        assert r.json() == {"status": "uploading"}
        r = requests.post(srv.url + v2_path(data)[1:], data=data[:1000] + b"?" * (len(data) - 1000),
                          headers={"X-Shaman-Can-Defer-Upload": "true"}, timeout=10)
        assert (r.status_code, r.text) == (208, "File being uploaded, please defer")
        assert "Location" not in r.headers
        r = requests.post(f"{srv.v3}shaman/files/{sha(data)}/{len(data)}", data=data,
                          headers={**OCTET, "X-Shaman-Can-Defer-Upload": "True"}, timeout=10)
        assert r.status_code == 425
    assert len(temp_files(a.storage)) == 1
    slow.finish()
    assert slow.status() == 204
    assert blob_path(a.storage, data).read_bytes() == data
    assert temp_files(a.storage) == []
    for srv in (a, b):
        assert requirements_v2(srv, (data, "tex/big.exr")) == ""


@pytest.mark.parametrize("api", ["v2", "v3"])
@pytest.mark.parametrize("where", ["one process", "two processes"])
def test_parallel_receivers_of_one_pair(pair_of_servers: tuple[Server, Server], where: str, api: str) -> None:
    """v2 14, v3 10: both accepted; the first to finish stores it, the other stops writing and gets 208.

    v2 answers at once (and closes); v3 reads the rest of the body first, so its client sees the 208.
    """
    a, b = pair_of_servers
    second = a if where == "one process" else b
    data = content("parallel", 2 << 20)
    first_up = SlowUpload(a.port, v2_path(data), data)
    if api == "v2":
        second_up = SlowUpload(second.port, v2_path(data), data)
    else:
        second_up = SlowUpload(second.port, f"/api/v3/shaman/files/{sha(data)}/{len(data)}", data, OCTET)
    first_up.send(500_000)
    second_up.send(400_000)
    assert wait_until(lambda: len(temp_files(a.storage)) == 2)
    first_up.finish()
    assert first_up.status() == 204
    # The second stops writing once it learns the blob exists (at once in-process, within a second across).
    assert wait_until(lambda: temp_files(a.storage) == [], timeout=5)
    if api == "v3":
        second_up.finish()
    assert second_up.status() == 208
    assert all_blobs(a.storage) == [blob_path(a.storage, data)]
    assert verify_store(a.storage) == 1


def test_failed_receiver_does_not_stop_its_peer(server: Server) -> None:
    data = content("peer-fail", 1 << 20)
    good = SlowUpload(server.port, v2_path(data), data)
    bad = SlowUpload(server.port, v2_path(data), data[::-1])
    good.send(100_000)
    bad.send(100_000)
    assert wait_until(lambda: len(temp_files(server.storage)) == 2)
    bad.finish()
    assert bad.status() == 417
    good.finish()
    assert good.status() == 204
    assert blob_path(server.storage, data).read_bytes() == data


def test_many_clients_same_files(server: Server) -> None:
    """Eight clients upload the same five files at once, half of them willing to defer."""
    files = [content(f"many-{i}", 300_000 + i * 77_777) for i in range(5)]

    def client(n: int) -> list[int]:
        codes = []
        with requests.Session() as s:
            for data in files[n % 5:] + files[:n % 5]:
                headers = {"X-Shaman-Can-Defer-Upload": "true"} if n % 2 else {}
                try:
                    codes.append(s.post(server.url + v2_path(data)[1:], data=data, headers=headers,
                                        timeout=30).status_code)
                except requests.ConnectionError:
                    codes.append(0)  # an early 208 the client could not read
        return codes

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(client, range(8)))
    assert all(code in (204, 208, 0) for codes in results for code in codes), results
    assert sum(code == 204 for codes in results for code in codes) == len(files)
    assert verify_store(server.storage) == len(files)
    assert temp_files(server.storage) == []


def test_killed_client_leaves_nothing(server: Server) -> None:
    """v2 16: a client killed mid-upload; no blob, no temporary file; the next upload works."""
    data = content("killed", 4 << 20)
    script = (
        "import socket, sys, time\n"
        "port, path, src = int(sys.argv[1]), sys.argv[2], sys.argv[3]\n"
        "data = open(src, 'rb').read()\n"
        "s = socket.create_connection(('127.0.0.1', port))\n"
        "s.sendall(f'POST {path} HTTP/1.1\\r\\nHost: x\\r\\nContent-Length: {len(data)}\\r\\n\\r\\n'.encode())\n"
        "s.sendall(data[:len(data) // 2])\n"
        "print('half', flush=True)\n"
        "time.sleep(60)\n")
    src = server.storage.parent / "killed.bin"
    src.write_bytes(data)
    proc = subprocess.Popen([sys.executable, "-c", script, str(server.port), v2_path(data), str(src)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "half"
        assert wait_until(lambda: len(temp_files(server.storage)) == 1)
    finally:
        proc.kill()
        proc.wait(10)
    assert wait_until(lambda: temp_files(server.storage) == [])
    assert not blob_path(server.storage, data).exists()
    assert requirements_v2(server, (data, "k.bin")) == "file-unknown k.bin\n"
    assert requests.post(server.url + v2_path(data)[1:], data=data, timeout=30).status_code == 204


def test_killed_server_leftovers_are_cleaned_live_uploads_are_not(tmp_path: Path) -> None:
    """A server killed mid-upload leaves an unlocked temporary file: the next start removes it.

    A live upload of another process is never removed, even when it looks old.
    """
    store, co = tmp_path / "store", tmp_path / "co"
    live_server, doomed_server = start_servers(2, store, co, "--no-auth")
    live_data, dead_data = content("live", 1 << 20), content("dead", 1 << 20)
    live = SlowUpload(live_server.port, v2_path(live_data), live_data)
    dead = SlowUpload(doomed_server.port, v2_path(dead_data), dead_data)
    live.send(200_000)
    dead.send(200_000)
    assert wait_until(lambda: len(temp_files(store)) == 2)
    doomed_server.kill()
    dead.close()
    assert len(temp_files(store)) == 2
    old = time.time() - 3600
    for tmp in temp_files(store):
        os.utime(tmp, (old, old))
    fresh = start_server(store, co, "--no-auth")
    try:
        # The start-up clean-up removes the dead one; the live one is locked by its writer.
        assert wait_until(lambda: len(temp_files(store)) == 1)
        assert temp_files(store)[0].parent.parent.name == sha(live_data)[:2]
        assert requirements_v2(fresh, (dead_data, "d"), (live_data, "l")) == (
            "file-unknown d\nalready-uploading l\n")
        live.finish()
        assert live.status() == 204
        assert blob_path(store, live_data).read_bytes() == live_data
        assert temp_files(store) == []
    finally:
        fresh.stop()
        live_server.stop()


def test_stale_file_found_by_a_requirements_request(server: Server) -> None:
    """An orphan temporary file (nobody holds its lock) makes nothing "uploading" and is reaped, however
    young: a server killed a moment ago must not block the client's next try."""
    data = content("orphan", 1000)
    h = sha(data)
    orphan = server.storage / "uploading" / h[:2] / h[2:] / f"{len(data)}-deadbeef.tmp"
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(data[:10])
    assert requirements_v2(server, (data, "o")) == "file-unknown o\n"
    assert not orphan.exists()


def test_concurrent_creates(pair_of_servers: tuple[Server, Server]) -> None:
    """Same v2 ID and files from many clients: one checkout, every client told it is there; other files
    under that ID: 409 for all; same v3 path: all different paths."""
    a, b = pair_of_servers
    data = content("creates", 5000)
    assert requests.post(a.url + v2_path(data)[1:], data=data, timeout=10).status_code == 204
    body = cdf(*((data, f"dir{i}/file{i}.png") for i in range(50)))

    def v2(n: int, body: bytes = body) -> int:
        srv = (a, b)[n % 2]
        return requests.post(srv.url + "checkout/create/race_job", data=body, headers=TEXT, timeout=30).status_code

    def v2_other(n: int) -> int:
        return v2(n, cdf(*((data, f"other{i}.png") for i in range(50))))

    def v3(n: int) -> str:
        srv = (a, b)[n % 2]
        r = requests.post(srv.v3 + "shaman/checkout/create", timeout=30, json={
            "checkoutPath": "race/job",
            "files": [{"sha": sha(data), "size": len(data), "path": f"f{i}.png"} for i in range(50)]})
        assert r.status_code == 200
        return r.json()["checkoutPath"]  # type: ignore[no-any-return]

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(v2, range(8)))
        others = list(pool.map(v2_other, range(8)))
        paths = list(pool.map(v3, range(8)))
    assert codes == [200] * 8 and others == [409] * 8
    assert len(set(paths)) == 8 and "race/job" in paths
    for p in paths:
        assert len(list((a.checkouts / p).iterdir())) == 50
    assert len(list((a.checkouts / "ob" / "race_job").rglob("*.png"))) == 50
    assert not list(a.checkouts.rglob(".bat-creating-*"))


def test_stopped_server_removes_its_temporary_files(tmp_path: Path) -> None:
    """SIGTERM with an upload in flight: the upload is cut off and its temporary file removed."""
    srv = start_server(tmp_path / "store", tmp_path / "co", "--no-auth")
    data = content("stopped", 1 << 20)
    slow = SlowUpload(srv.port, v2_path(data), data)
    slow.send(1000)
    assert wait_until(lambda: len(temp_files(srv.storage)) == 1)
    srv.stop()
    assert srv.proc.returncode == 0
    assert temp_files(srv.storage) == []
    assert not blob_path(srv.storage, data).exists()
    slow.close()
