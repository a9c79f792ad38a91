"""The Shaman client against unreachable, refusing, failing and lying servers: one line, no traceback.

Where the real ``bat shaman serve`` can produce the fault (a port nobody
listens on, plain HTTP behind an https URL, bad tokens, Shaman off, a full
disk, a file someone else is still uploading) it does; the faults it never
produces (5xx storms, a server that drops a file it said it stored, hostile
answers) come from ``tests/shaman_fault_proxy.py``, a proxy in front of it.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .packinfo import INFO, check_info

# First: skips this module when the shaman-server extra (aiohttp, requests) is missing.
from .shaman_server import Server, all_blobs, sha, start_server, temp_files, wait_until

# isort: split
from aiohttp import web

from bat_core.pack import pack
from bat_core.progress import PackCallback

from .shaman_fault_proxy import Delay, FaultProxy, HangUp, Seen

DEMO = Path(__file__).resolve().parent.parent / "examples" / "demo"
BLEND = str(DEMO / "shot.blend")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("shaman-client-bad")
    srv = start_server(base / "store", base / "checkouts", "--no-auth")
    yield srv
    srv.stop()


@pytest.fixture(autouse=True)
def _no_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHAMAN_JWT_TOKEN", raising=False)
    monkeypatch.delenv("FLAMENCO_SHAMAN_TOKEN", raising=False)


@pytest.fixture
def quick_rounds(monkeypatch: pytest.MonkeyPatch) -> None:
    """Few rounds and short back-offs, so giving up takes a fraction of a second."""
    from bat_core.pack import engine
    from bat_plugins.shaman.client.transfer import ShamanTransfer

    monkeypatch.setattr(engine, "BACKOFF_FIRST", 0.01)
    monkeypatch.setattr(engine, "BACKOFF_MAX", 0.02)
    monkeypatch.setattr(ShamanTransfer, "max_rounds", 3)


def one_line_error(res: Any) -> str:
    """The run failed with exactly one ``bat: error:`` line and no traceback; that line."""
    assert res.exit_code == 1, (res.stdout, res.stderr)
    assert "Traceback" not in res.stderr
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("bat: error: ")]
    assert len(errors) == 1, res.stderr
    return errors[0].removeprefix("bat: error: ")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def v2(port: int, checkout: str) -> str:
    return f"shaman+http://127.0.0.1:{port}/#{checkout}"


def v3(port: int, checkout: str) -> str:
    return f"flamenco+http://127.0.0.1:{port}/{checkout}"


def checkout_files(server: Server, location: str, packed: bool = True) -> dict[str, bytes]:
    """The checkout's files; of a pack (not a push), without its pack-info.txt, which is checked."""
    root = server.checkouts / location
    files = {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    if packed:
        check_info(files.pop(INFO), "shot.blend")
    return files


def demo_files() -> dict[str, bytes]:
    return {p.relative_to(DEMO).as_posix(): p.read_bytes() for p in DEMO.rglob("*")
            if p.is_file() and p.suffix != ".json"}


# --- the real server -----------------------------------------------------------------------------


@pytest.mark.parametrize("api", ["v2", "v3"])
def test_server_unreachable(api: str, run_bat) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    url = v2(port, "x") if api == "v2" else v3(port, "x")
    started = time.monotonic()
    line = one_line_error(run_bat("pack", BLEND, url))
    assert line == f"cannot reach http://127.0.0.1:{port}/: connection refused"
    assert time.monotonic() - started < 10


@pytest.mark.parametrize("scheme", ["shaman", "flamenco+https"])
def test_tls_to_a_plain_http_server(scheme: str, server: Server, run_bat) -> None:  # type: ignore[no-untyped-def]
    url = f"{scheme}://127.0.0.1:{server.port}/" + ("#x" if scheme == "shaman" else "x")
    line = one_line_error(run_bat("pack", BLEND, url))
    assert line.startswith(f"TLS error talking to https://127.0.0.1:{server.port}/: ")
    assert line.endswith("is it a plain-HTTP server? Then use shaman+http:// or flamenco+http://")


def test_shaman_disabled(tmp_path: Path, run_bat) -> None:  # type: ignore[no-untyped-def]
    srv = start_server(tmp_path / "store", tmp_path / "co", "--api", "v2", "--no-auth")
    try:
        line = one_line_error(run_bat("pack", BLEND, v3(srv.port, "x")))
        assert line.startswith(f"http://127.0.0.1:{srv.port}/: Shaman is disabled on this Flamenco Manager "
                               f"(bat shaman server ")
        assert all_blobs(srv.storage) == []
    finally:
        srv.stop()


class _NotFlamenco(http.server.BaseHTTPRequestHandler):
    """Some other web server: a page at /, 404 elsewhere."""

    def do_GET(self) -> None:
        body = b"<html>hello</html>" if self.path == "/" else b"<html>Not Found</html>"
        self.send_response(200 if self.path == "/" else 404)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_not_a_flamenco_manager(run_bat) -> None:  # type: ignore[no-untyped-def]
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotFlamenco)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        port = httpd.server_address[1]
        line = one_line_error(run_bat("pack", BLEND, v3(port, "x")))
        assert line == (f"http://127.0.0.1:{port}/ is not a Flamenco Manager (GET /api/v3/version answered "
                        f"404 <html>Not Found</html>)")
        # v2 has no version route: the first answer that is not Shaman's stops it.
        line = one_line_error(run_bat("pack", BLEND, v2(port, "x")))
        assert line == (f"http://127.0.0.1:{port}/ does not serve the Shaman v2 API (GET get-token answered 404 "
                        f"<html>Not Found</html>); for a Flamenco 3 Manager use flamenco://")
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_v2_target_to_a_v3_only_server(tmp_path: Path, run_bat) -> None:  # type: ignore[no-untyped-def]
    srv = start_server(tmp_path / "store", tmp_path / "co", "--api", "v3")
    try:
        line = one_line_error(run_bat("pack", BLEND, v2(srv.port, "x")))
        assert line.startswith(f"http://127.0.0.1:{srv.port}/ does not serve the Shaman v2 API (GET get-token "
                               f"answered 404")
    finally:
        srv.stop()


def test_disk_full_on_the_server_then_a_rerun_completes(tmp_path: Path, run_bat) -> None:  # type: ignore[no-untyped-def]
    srv = start_server(tmp_path / "store", tmp_path / "co", "--no-auth", "--min-free", "1000T")
    try:
        line = one_line_error(run_bat("pack", BLEND, v2(srv.port, "full")))
        assert line.startswith(f"http://127.0.0.1:{srv.port}/: upload of ") and "507 Insufficient storage" in line
        assert temp_files(srv.storage) == []
    finally:
        srv.stop()
    srv = start_server(tmp_path / "store", tmp_path / "co", "--no-auth")
    try:
        res = run_bat("pack", BLEND, v2(srv.port, "full"))
        assert res.exit_code == 0, res.stderr
        assert checkout_files(srv, "ll/full") == demo_files()
    finally:
        srv.stop()


def slow_upload(port: int, data: bytes) -> socket.socket:
    """Start a v2 upload of ``data`` and send only half of it: the server sees it "uploading"."""
    s = socket.create_connection(("127.0.0.1", port))
    head = (f"POST /files/{sha(data)}/{len(data)} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(data)}\r\n"
            f"X-Shaman-Original-Filename: slow\r\n\r\n")
    s.sendall(head.encode() + data[: len(data) // 2])
    return s


class Deferrals(PackCallback):
    def __init__(self) -> None:
        self.deferred: list[str] = []

    def transfer_file_deferred(self, src: Path, dst: str, reason: str) -> None:
        self.deferred.append(src.name)


@pytest.mark.parametrize("api", ["v2", "v3"])
def test_files_someone_else_is_uploading_are_deferred_then_confirmed(api: str, server: Server, tmp_path: Path
                                                                     ) -> None:
    """Two big textures are half uploaded by another client that then stalls: we defer one (the
    server answers before reading our body), come back, upload it ourselves, and only then ask for
    the checkout, which is complete (BAT 1.x would ask for it at once and fail)."""
    project = tmp_path / "demo"
    shutil.copytree(DEMO, project)
    big = {}
    for name in ("brick.png", "floor_color.png"):
        path = project / "textures" / name
        path.write_bytes(os.urandom(4 << 20) + api.encode())
        big[name] = path.read_bytes()
    sockets = [slow_upload(server.port, data) for data in big.values()]
    try:
        assert wait_until(lambda: len(temp_files(server.storage)) >= 2)
        events = Deferrals()
        url = v2(server.port, f"deferred_{api}") if api == "v2" else v3(server.port, f"deferred/{api}")
        result = pack(project / "shot.blend", url, callback=events)
        assert result.complete
        assert events.deferred and set(events.deferred) <= set(big)
        location = result.target_info["checkout_path"]
        files = checkout_files(server, location)
        assert files["textures/brick.png"] == big["brick.png"]
        assert files["textures/floor_color.png"] == big["floor_color.png"]
        assert len(files) == 7
    finally:
        for s in sockets:
            s.close()
    assert wait_until(lambda: temp_files(server.storage) == [])


# --- faults from the proxy -------------------------------------------------------------------------


@pytest.fixture
def proxy(server: Server) -> Iterator[FaultProxy]:
    with FaultProxy(f"http://127.0.0.1:{server.port}") as p:
        yield p


def _json(status: int, message: str) -> web.Response:
    return web.json_response({"code": status, "message": message}, status=status)


@pytest.mark.parametrize("api", ["v2", "v3"])
def test_5xx_mid_pack_is_retried(api: str, proxy: FaultProxy, server: Server, run_bat, tmp_path: Path
                                 ) -> None:  # type: ignore[no-untyped-def]
    """The first three uploads and the second requirements request fail with 5xx; the pack completes."""
    project = tmp_path / "demo"
    shutil.copytree(DEMO, project)
    for p in (project / "textures").iterdir():
        p.write_bytes(p.read_bytes() + api.encode())  # content new to the store
    failures = {"files": 3, "requirements": 1}
    lists = [0]

    def fault(seen: Seen) -> web.StreamResponse | None:
        if "/files/" in seen.path and seen.method == "POST" and failures["files"]:
            failures["files"] -= 1
            return web.Response(status=503, text="Service Unavailable: try again")
        if "requirements" in seen.path:
            lists[0] += 1
            if lists[0] == 2 and failures["requirements"]:
                failures["requirements"] -= 1
                return _json(500, "Internal Server Error")
        return None

    proxy.fault = fault
    url = v2(proxy.port, f"retried_{api}") if api == "v2" else v3(proxy.port, f"retried/{api}")
    res = run_bat("pack", "--json", str(project / "shot.blend"), url)
    assert res.exit_code == 0, res.stderr
    report = json.loads(res.stdout)
    copied = {f["relpath"] for f in report["files"] if f["action"] == "copied"}
    assert {f"textures/{p.name}" for p in (project / "textures").iterdir()} <= copied
    assert failures == {"files": 0, "requirements": 0} and lists[0] >= 3
    if api == "v2":  # 26: every request after get-token carries the token
        token = next(s.answer for s in proxy.seen if s.path == "/get-token").decode()
        later = [s for s in proxy.seen if s.path != "/get-token"]
        assert later and all(s.headers.get("Authorization") == f"Bearer {token}" for s in later)
    got = checkout_files(server, report["target_info"]["checkout_path"])
    assert got == {p.relative_to(project).as_posix(): p.read_bytes() for p in project.rglob("*")
                   if p.is_file() and p.suffix != ".json"}


@pytest.mark.parametrize("api", ["v2", "v3"])
def test_5xx_storm_gives_up_with_one_line(api: str, proxy: FaultProxy, run_bat, tmp_path: Path,
                                          quick_rounds: None) -> None:  # type: ignore[no-untyped-def]
    project = tmp_path / "demo"
    shutil.copytree(DEMO, project)
    (project / "textures" / "brick.png").write_bytes(os.urandom(1000))

    def fault(seen: Seen) -> web.StreamResponse | None:
        if "/files/" in seen.path and seen.method == "POST":
            return web.Response(status=502, text="Bad Gateway")
        return None

    proxy.fault = fault
    url = v2(proxy.port, "storm") if api == "v2" else v3(proxy.port, "storm")
    line = one_line_error(run_bat("pack", str(project / "shot.blend"), url))
    assert re.match(rf"gave up after 3 rounds: \d file\(s\) could not be sent to http://127\.0\.0\.1:{proxy.port}/",
                    line), line
    assert re.search(r"\(last error: [^:]+: 502 Bad Gateway\)$", line), line
    assert not proxy.requests_to("checkout/create")


@pytest.mark.parametrize("api", ["v2", "v3"])
def test_a_server_that_drops_a_file_fails_the_checkout_then_a_rerun_completes(
        api: str, proxy: FaultProxy, server: Server, run_bat, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    project = tmp_path / "demo"
    shutil.copytree(DEMO, project)
    texture = project / "textures" / "floor_rough.png"
    texture.write_bytes(os.urandom(5000))
    dropped = f"/files/{sha(texture.read_bytes())}/5000"

    def fault(seen: Seen) -> web.StreamResponse | None:
        if seen.path.endswith(dropped) and seen.method == "POST":
            return web.Response(status=204)  # "stored", but it never reaches the store
        return None

    proxy.fault = fault
    url = v2(proxy.port, f"dropped_{api}") if api == "v2" else v3(proxy.port, f"dropped/{api}")
    line = one_line_error(run_bat("pack", str(project / "shot.blend"), url))
    checkout = f"dropped_{api}" if api == "v2" else f"dropped/{api}"
    assert line.startswith(f"http://127.0.0.1:{proxy.port}/: checkout '{checkout}' not created: the server lacks ")
    assert "textures/floor_rough.png" in line and line.endswith("run the pack again to upload them")
    proxy.fault = None
    res = run_bat("pack", "--json", str(project / "shot.blend"), url)
    assert res.exit_code == 0, res.stderr
    report = json.loads(res.stdout)
    assert [f["relpath"] for f in report["files"] if f["action"] == "copied"] == ["textures/floor_rough.png"]
    assert checkout_files(server, report["target_info"]["checkout_path"])["textures/floor_rough.png"] == \
        texture.read_bytes()


@pytest.mark.parametrize("api", ["v2", "v3"])
def test_corrupted_upload_names_the_file(api: str, proxy: FaultProxy, run_bat, tmp_path: Path
                                         ) -> None:  # type: ignore[no-untyped-def]
    """Bytes changed on the way: the real server answers 417; the error names the file."""
    project = tmp_path / "demo"
    shutil.copytree(DEMO, project)
    texture = project / "textures" / "brick.png"
    texture.write_bytes(os.urandom(3000))

    def fault(seen: Seen) -> bytes | None:
        if seen.method == "POST" and f"/files/{sha(texture.read_bytes())}/" in seen.path:
            return bytes([seen.body[0] ^ 1]) + seen.body[1:]
        return None

    proxy.fault = fault
    url = v2(proxy.port, "corrupt") if api == "v2" else v3(proxy.port, "corrupt")
    line = one_line_error(run_bat("pack", str(project / "shot.blend"), url))
    assert line.startswith(f"{texture}: the server refused the upload of textures/brick.png (417 ")
    assert ("Declared and actual checksums differ" if api == "v2" else "file SHA256 mismatched") in line
    assert not proxy.requests_to("checkout/create")


@pytest.mark.parametrize("api", ["v2", "v3"])
def test_hostile_requirements_answer(api: str, proxy: FaultProxy, run_bat) -> None:  # type: ignore[no-untyped-def]
    """A requirements answer asking for a path we never sent: nothing is uploaded."""
    def rewrite(seen: Seen, status: int, body: bytes) -> tuple[int, bytes] | None:
        if "requirements" not in seen.path:
            return None
        if api == "v2":
            return 200, b"file-unknown ../../etc/passwd\n"
        return 200, json.dumps({"files": [{"sha": "0" * 64, "size": 1, "path": "/etc/passwd",
                                           "status": "unknown"}]}).encode()

    proxy.rewrite = rewrite
    url = v2(proxy.port, "hostile") if api == "v2" else v3(proxy.port, "hostile")
    line = one_line_error(run_bat("pack", BLEND, url))
    assert "the server asked for a file that is not in the checkout" in line and "etc/passwd" in line
    assert not proxy.requests_to("/files/")


def test_checkout_request_fails_then_a_rerun_completes(proxy: FaultProxy, server: Server,
                                                       run_bat) -> None:  # type: ignore[no-untyped-def]
    proxy.fault = lambda seen: web.Response(status=500, text="I/O error\n") if "create" in seen.path else None
    line = one_line_error(run_bat("pack", BLEND, v2(proxy.port, "create_fails")))
    assert line == f"http://127.0.0.1:{proxy.port}/: checkout 'create_fails': 500 I/O error"
    proxy.fault = None
    res = run_bat("pack", BLEND, v2(proxy.port, "create_fails"))
    assert res.exit_code == 0, res.stderr
    assert checkout_files(server, "ls/create_fails") == demo_files()


def test_flamenco_refusing_empty_uploads(proxy: FaultProxy, server: Server, run_bat, tmp_path: Path
                                         ) -> None:  # type: ignore[no-untyped-def]
    """Flamenco 3's Go server refuses empty bodies (shaman-v3-protocol.md 4.3): an empty file is left
    out of the checkout, with a warning; the rest is complete."""
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "empty.txt").write_bytes(b"")
    (tree / "data.bin").write_bytes(b"data")

    def fault(seen: Seen) -> web.StreamResponse | None:
        if seen.method == "POST" and "/shaman/files/" in seen.path and not seen.body:
            return web.json_response({"message": "request body has an error: value is required but missing"},
                                     status=400)
        return None

    proxy.fault = fault
    res = run_bat("shaman", "push", "--json", str(tree), v3(proxy.port, "no-empty"))
    assert res.exit_code == 0, res.stderr
    report = json.loads(res.stdout)
    assert report["target_info"]["left_out_empty_files"] == ["sub/empty.txt"]
    assert "cannot store empty files" in res.stderr and "sub/empty.txt" in res.stderr
    assert checkout_files(server, "no-empty", packed=False) == {"data.bin": b"data"}


def test_a_server_that_does_not_answer(proxy: FaultProxy, run_bat, quick_rounds: None,
                                       monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """Requirements requests time out every round: the pack gives up with the reason."""
    from bat_plugins.shaman.client import transfer

    monkeypatch.setattr(transfer, "LIST_TIMEOUT", 0.3)
    proxy.fault = lambda seen: Delay(2) if "requirements" in seen.path else None
    line = one_line_error(run_bat("pack", BLEND, v2(proxy.port, "silent")))
    assert line.startswith("gave up after 3 rounds: 8 file(s) could not be sent")  # 7 and pack-info.txt
    assert line.endswith(f"(last error: requirements: no answer from http://127.0.0.1:{proxy.port}/ within 0.3 s)")


class Reasons(PackCallback):
    def __init__(self) -> None:
        self.again: list[tuple[str, str]] = []

    def transfer_file_deferred(self, src: Path, dst: str, reason: str) -> None:
        self.again.append((src.name, reason))


@pytest.mark.parametrize("api", ["v2", "v3"])
def test_closed_connections_defer_only_with_the_defer_header(api: str, proxy: FaultProxy, server: Server,
                                                             tmp_path: Path) -> None:
    """The server hangs up on one upload sent with the defer header (someone else has it: defer)
    and on one sent without (it failed: ask again next round); both files end up in the checkout."""
    project = tmp_path / "demo"
    shutil.copytree(DEMO, project)
    for p in (project / "textures").iterdir():
        p.write_bytes(os.urandom(2000))
    hung: dict[bool, str] = {}

    def fault(seen: Seen) -> HangUp | None:
        if seen.method != "POST" or "/files/" not in seen.path:
            return None
        header = {k.lower(): v for k, v in seen.headers.items()}.get("x-shaman-can-defer-upload") == "true"
        if header not in hung:
            hung[header] = seen.path
            return HangUp()
        return None

    proxy.fault = fault
    events = Reasons()
    url = v2(proxy.port, f"hangup_{api}") if api == "v2" else v3(proxy.port, f"hangup/{api}")
    result = pack(project / "shot.blend", url, callback=events)
    assert result.complete and set(hung) == {True, False}
    reasons = [why for _, why in events.again]
    assert "being sent by another client" in reasons
    assert any(why.endswith(f"http://127.0.0.1:{proxy.port}/ closed the connection") for why in reasons), reasons
    files = checkout_files(server, result.target_info["checkout_path"])
    assert files == {p.relative_to(project).as_posix(): p.read_bytes() for p in project.rglob("*")
                     if p.is_file() and p.suffix != ".json"}
