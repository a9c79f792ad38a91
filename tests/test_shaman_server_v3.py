"""The v3 API (Flamenco 3) of ``bat shaman serve``, over raw HTTP.

Numbers in the docstrings are the server items of the conformance checklist
in shaman-v3-protocol.md, section 13.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

from .shaman_server import Server, blob_path, cdf, raw_request, requests, sha, start_server, temp_files, wait_until

V3_TOKEN = "v3-test-token"
OCTET = {"Content-Type": "application/octet-stream"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    base = tmp_path_factory.mktemp("shaman-v3")
    srv = start_server(base / "store", base / "checkouts", "--no-auth", "--v3-token", V3_TOKEN,
                       "--worker-path", "windows=S:/jobs")
    yield srv
    srv.stop()


@pytest.fixture
def http():  # type: ignore[no-untyped-def]
    with requests.Session() as s:
        s.headers["Authorization"] = f"Bearer {V3_TOKEN}"
        yield s


def unique(tag: str, size: int = 100) -> bytes:
    seed = f"{tag}-{time.monotonic_ns()}-{os.getpid()}".encode()
    return (seed * (size // len(seed) + 1))[:size]


def spec(data: bytes, path: str) -> dict[str, object]:
    return {"sha": sha(data), "size": len(data), "path": path}


def upload(http: requests.Session, server: Server, data: bytes, **headers: str) -> requests.Response:
    return http.post(f"{server.v3}shaman/files/{sha(data)}/{len(data)}", data=data,
                     headers={**OCTET, **headers}, timeout=30)


def requirements(http: requests.Session, server: Server, files: list[dict[str, object]]) -> requests.Response:
    return http.post(server.v3 + "shaman/checkout/requirements", json={"files": files}, timeout=30)


def create(http: requests.Session, server: Server, path: str, files: list[dict[str, object]]) -> requests.Response:
    return http.post(server.v3 + "shaman/checkout/create", json={"files": files, "checkoutPath": path}, timeout=30)


def snapshot(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


def test_discovery(server: Server) -> None:
    """21: version and configuration answer without the token."""
    v = requests.get(server.v3 + "version", timeout=10).json()
    assert set(v) == {"version", "shortversion", "name", "git"} and all(isinstance(x, str) for x in v.values())
    c = requests.get(server.v3 + "configuration", timeout=10).json()
    assert c == {"storageLocation": str(server.checkouts.resolve()), "shamanEnabled": True, "isFirstRun": False}
    s = requests.get(server.v3 + "configuration/shared-storage/users/linux", timeout=10).json()
    assert s == {"location": str(server.checkouts.resolve()), "audience": "users", "platform": "linux",
                 "shamanEnabled": True}
    s = requests.get(server.v3 + "configuration/shared-storage/workers/windows", timeout=10).json()
    assert s["location"] == "S:/jobs"
    assert requests.get(server.v3 + "configuration/shared-storage/gods/linux", timeout=10).status_code == 400
    r = requests.get(server.v3 + "no/such/route", timeout=10)
    assert r.status_code == 404 and r.json() == {"message": "Not Found"}


def test_bearer_token(server: Server) -> None:
    data = unique("token")
    url = f"{server.v3}shaman/files/{sha(data)}/{len(data)}"
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": V3_TOKEN}):
        r = requests.get(url, headers=headers, timeout=10)
        assert r.status_code == 401 and r.json()["code"] == 401
        r = requests.post(url, data=data, headers={**OCTET, **headers}, timeout=10)
        assert r.status_code == 401
    assert not blob_path(server.storage, data).exists()
    assert requests.get(url, headers={"Authorization": f"Bearer {V3_TOKEN}"}, timeout=10).json() == {
        "status": "unknown"}


def test_requirements(http: requests.Session, server: Server) -> None:
    """1, 2, 4: unknown in request order and echoed, each content once, stored ones touched."""
    stored, a, b = unique("r-stored"), unique("r-a"), unique("r-b")
    assert upload(http, server, stored).status_code == 204
    old = time.time() - 40 * 86400
    os.utime(blob_path(server.storage, stored), (old, old))
    r = requirements(http, server, [spec(b, "z/b.png"), spec(stored, "s.png"), spec(a, "a.png"),
                                    spec(b, "b again.png")])
    assert r.status_code == 200
    assert r.json() == {"files": [{**spec(b, "z/b.png"), "status": "unknown"},
                                  {**spec(a, "a.png"), "status": "unknown"}]}
    assert wait_until(lambda: blob_path(server.storage, stored).stat().st_mtime > time.time() - 60)
    assert requirements(http, server, [spec(stored, "s.png")]).json() == {"files": []}


@pytest.mark.parametrize("body", [
    {},
    {"files": "nope"},
    {"files": [{"sha": "0" * 64, "size": 1}]},
    {"files": [{"sha": "0" * 64, "size": "1", "path": "a"}]},
    {"files": [{"sha": "0" * 64, "size": True, "path": "a"}]},
    {"files": [{"sha": "0" * 64, "size": -1, "path": "a"}]},
    {"files": [{"sha": "abc", "size": 1, "path": "a"}]},
    {"files": [{"sha": "0" * 64, "size": 1, "path": "../a"}]},
    {"files": [{"sha": "0" * 64, "size": 1, "path": "a"}, {"sha": "1" * 64, "size": 1, "path": "a"}]},
    [],
], ids=["no files", "files not array", "no path", "size string", "size bool", "size negative", "short sha",
        "traversal", "conflicting duplicate", "not an object"])
def test_requirements_schema_errors(http: requests.Session, server: Server, body: object) -> None:
    """5."""
    r = http.post(server.v3 + "shaman/checkout/requirements", json=body, timeout=10)
    assert r.status_code == 400
    assert r.json()["message"].startswith("request body has an error")


def test_requirements_needs_json(http: requests.Session, server: Server) -> None:
    r = http.post(server.v3 + "shaman/checkout/requirements", data=b'{"files": []}',
                  headers={"Content-Type": "text/plain"}, timeout=10)
    assert r.status_code == 400
    r = http.post(server.v3 + "shaman/checkout/requirements", data=b'{"files": [',
                  headers={"Content-Type": "application/json"}, timeout=10)
    assert r.status_code == 400 and "invalid JSON" in r.json()["message"]


def test_file_status(http: requests.Session, server: Server) -> None:
    """6."""
    data = unique("status")
    url = f"{server.v3}shaman/files/{sha(data)}/{len(data)}"
    assert http.get(url, timeout=10).json() == {"status": "unknown"}
    assert upload(http, server, data).status_code == 204
    assert http.get(url, timeout=10).json() == {"status": "stored"}
    assert http.get(f"{server.v3}shaman/files/{sha(data)}/abc", timeout=10).status_code == 400
    assert http.get(f"{server.v3}shaman/files/x/1", timeout=10).status_code == 400


def test_upload(http: requests.Session, server: Server) -> None:
    """7, 8: 204, then 208 without Location and nothing rewritten; zero bytes work too."""
    data = unique("v3-upload", 2 << 20)
    r = upload(http, server, data, **{"X-Shaman-Original-Filename": "=?utf-8?q?tex/a=2Epng?="})
    assert (r.status_code, r.content) == (204, b"")
    blob = blob_path(server.storage, data)
    assert blob.read_bytes() == data
    before = blob.stat()
    r = upload(http, server, data, **{"X-Shaman-Can-Defer-Upload": "False"})
    assert r.status_code == 208 and "Location" not in r.headers and r.content == b""
    assert (blob.stat().st_ino, blob.stat().st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert not temp_files(server.storage)
    assert upload(http, server, b"").status_code in (204, 208)
    assert blob_path(server.storage, b"").read_bytes() == b""


def test_upload_needs_octet_stream(http: requests.Session, server: Server) -> None:
    data = unique("ct")
    for headers in ({}, {"Content-Type": "text/plain"}):
        r = http.post(f"{server.v3}shaman/files/{sha(data)}/{len(data)}", data=data, headers=headers, timeout=10)
        assert r.status_code == 400
    assert not blob_path(server.storage, data).exists()


@pytest.mark.parametrize("value", ["maybe", "yes", ""])
def test_bad_defer_header(http: requests.Session, server: Server, value: str) -> None:
    """11."""
    data = unique("defer-bad")
    assert upload(http, server, data, **{"X-Shaman-Can-Defer-Upload": value}).status_code == 400
    assert not blob_path(server.storage, data).exists()


def test_repeated_defer_header(server: Server) -> None:
    data = unique("defer-twice")
    head = (f"POST /api/v3/shaman/files/{sha(data)}/{len(data)} HTTP/1.1\nHost: x\n"
            f"Authorization: Bearer {V3_TOKEN}\nContent-Type: application/octet-stream\n"
            f"X-Shaman-Can-Defer-Upload: true\nX-Shaman-Can-Defer-Upload: false\nContent-Length: {len(data)}\n")
    assert raw_request(server.port, head, data).startswith(b"HTTP/1.1 400 ")


def test_wrong_size_or_digest_is_417(http: requests.Session, server: Server) -> None:
    """12."""
    data = unique("v3-417", 10_000)
    url = f"{server.v3}shaman/files/{sha(data)}"
    r = http.post(f"{url}/{len(data) - 1}", data=data, headers=OCTET, timeout=10)
    assert r.status_code == 417 and r.json()["code"] == 417
    assert r.json()["message"].startswith(f"file size mismatched, declared {len(data) - 1} but received")
    r = http.post(f"{url}/{len(data)}", data=data[::-1], headers=OCTET, timeout=10)
    assert r.status_code == 417
    assert r.json()["message"] == f"file SHA256 mismatched, declared {sha(data)} but received {sha(data[::-1])}"
    assert not blob_path(server.storage, data).exists()
    assert not temp_files(server.storage)


@pytest.mark.parametrize("header", [
    "scenes/a.blend",
    "=?utf-8?b?dGV4L8WhdS5wbmc=?=",
    "=?utf-8?q?" + "very_long_name_" * 300 + "=2Epng?=",
])
def test_original_filename_accepted(http: requests.Session, server: Server, header: str) -> None:
    """13: plain ASCII, RFC 2047 with non-ASCII, a very long one."""
    data = unique("name")
    assert upload(http, server, data, **{"X-Shaman-Original-Filename": header}).status_code == 204


def test_original_filename_other_charset_is_400(http: requests.Session, server: Server) -> None:
    data = unique("charset")
    r = upload(http, server, data, **{"X-Shaman-Original-Filename": "=?iso-8859-1?q?caf=E9.png?="})
    assert r.status_code == 400 and "X-Shaman-Original-Filename" in r.json()["message"]
    assert not blob_path(server.storage, data).exists()


def test_create_checkout(http: requests.Session, server: Server) -> None:
    """14, 15, 19: relative links, parents, touched blobs; a taken path gets a suffix, the first stays."""
    a, b = unique("c-a"), unique("c-b")
    for d in (a, b):
        assert upload(http, server, d).status_code == 204
    old = time.time() - 40 * 86400
    os.utime(blob_path(server.storage, b), (old, old))
    files = [spec(a, "scenes/shot.blend"), spec(b, "tex/b.png"), spec(b, "tex/b.png"), spec(a, "á hausinn.blend")]
    r = create(http, server, "project/á job", files)
    assert (r.status_code, r.json()) == (200, {"checkoutPath": "project/á job"})
    root = server.checkouts / "project" / "á job"
    for path, data in (("scenes/shot.blend", a), ("tex/b.png", b), ("á hausinn.blend", a)):
        link = root / path
        assert link.is_symlink() and not os.path.isabs(os.readlink(link))
        assert link.read_bytes() == data
    assert blob_path(server.storage, b).stat().st_mtime > time.time() - 60
    first = snapshot(root)
    r = create(http, server, "project/á job", [spec(b, "other.png")])
    assert r.status_code == 200
    second = r.json()["checkoutPath"]
    assert re.fullmatch(r"project/á job-[a-z0-9]{4}", second)
    assert snapshot(root) == first
    assert (server.checkouts / second / "other.png").read_bytes() == b
    r = create(http, server, "project/empty/", [])
    assert (r.status_code, r.json()) == (200, {"checkoutPath": "project/empty"})
    assert (server.checkouts / "project" / "empty").is_dir()


@pytest.mark.parametrize("path", ["/abs", "c:/x", "a/../b", "..", ".", "x?y", "a;b", "", "a\\b", "a\x00b",
                                  "a//b", ".bat-creating-x"])
def test_bad_checkout_paths(http: requests.Session, server: Server, path: str) -> None:
    """16: refused with 400, nothing created."""
    a = unique("badpath")
    assert upload(http, server, a).status_code == 204
    before = snapshot(server.checkouts)
    r = create(http, server, path, [spec(a, "a.png")])
    assert r.status_code == 400 and r.json()["message"].startswith("invalid checkout path")
    assert snapshot(server.checkouts) == before


def test_missing_files_fail_without_touching_others(http: requests.Session, server: Server) -> None:
    """17: 424; no new directory; an existing checkout of that path untouched (Flamenco deletes it)."""
    a, missing = unique("424-a"), unique("424-missing")
    assert upload(http, server, a).status_code == 204
    assert create(http, server, "shots/keep", [spec(a, "a.png")]).status_code == 200
    before = snapshot(server.checkouts)
    r = create(http, server, "shots/keep", [spec(a, "a.png"), spec(missing, "sub/m.png")])
    assert r.status_code == 424
    assert r.json() == {"code": 424, "message": "unknown files requested in checkout: sub/m.png"}
    assert snapshot(server.checkouts) == before
    r = create(http, server, "shots/new/deep", [spec(missing, "m.png")])
    assert r.status_code == 424
    assert snapshot(server.checkouts) == before


@pytest.mark.parametrize("path", ["../evil.png", "/etc/evil.png", "ok/../../evil.png", "a\\..\\evil.png"])
def test_file_paths_cannot_escape(http: requests.Session, server: Server, path: str) -> None:
    """18."""
    a = unique("escape")
    assert upload(http, server, a).status_code == 204
    before = snapshot(server.checkouts)
    r = create(http, server, "escape job", [spec(a, "fine.png"), spec(a, path)])
    assert r.status_code == 400
    assert snapshot(server.checkouts) == before
    assert not (server.checkouts.parent / "evil.png").exists()


def test_clashing_paths_are_400(http: requests.Session, server: Server) -> None:
    a, b = unique("clash-a"), unique("clash-b")
    for d in (a, b):
        assert upload(http, server, d).status_code == 204
    before = snapshot(server.checkouts)
    assert create(http, server, "clash", [spec(a, "x"), spec(b, "x/y")]).status_code == 400
    assert create(http, server, "clash", [spec(a, "x"), spec(b, "x")]).status_code == 400
    assert snapshot(server.checkouts) == before


def test_checkout_path_through_a_symlink_is_refused(http: requests.Session, server: Server, tmp_path: Path) -> None:
    a = unique("symlink")
    assert upload(http, server, a).status_code == 204
    outside = tmp_path / "outside"
    outside.mkdir()
    (server.checkouts / "linked").symlink_to(outside)
    try:
        r = create(http, server, "linked/job", [spec(a, "a.png")])
        assert r.status_code == 400 and "symbolic link" in r.json()["message"]
        assert list(outside.iterdir()) == []
    finally:
        (server.checkouts / "linked").unlink()


def test_one_store_for_both_apis(http: requests.Session, server: Server) -> None:
    """A file uploaded over v2 is stored for v3 and the other way round."""
    via_v2, via_v3 = unique("via-v2"), unique("via-v3")
    assert requests.post(f"{server.url}files/{sha(via_v2)}/{len(via_v2)}", data=via_v2, timeout=10).status_code == 204
    assert upload(http, server, via_v3).status_code == 204
    assert requirements(http, server, [spec(via_v2, "a"), spec(via_v3, "b")]).json() == {"files": []}
    r = requests.post(server.url + "checkout/requirements", data=cdf((via_v2, "a"), (via_v3, "b")),
                      headers={"Content-Type": "text/plain"}, timeout=10)
    assert (r.status_code, r.text) == (200, "")


def test_v2_routes_are_off_with_api_v3(tmp_path: Path) -> None:
    srv = start_server(tmp_path / "store", tmp_path / "co", "--api", "v3")
    try:
        data = b"v3 only"
        assert requests.post(f"{srv.v3}shaman/files/{sha(data)}/{len(data)}", data=data, headers=OCTET,
                             timeout=10).status_code == 204
        assert requests.get(srv.url + "get-token", timeout=10).status_code == 404
        assert requests.post(f"{srv.url}files/{sha(data)}/{len(data)}", data=data, timeout=10).status_code == 404
        assert requests.post(srv.url + "checkout/requirements", data=b"",
                             headers={"Content-Type": "text/plain"}, timeout=10).status_code == 404
    finally:
        srv.stop()
