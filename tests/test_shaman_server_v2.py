"""The v2 API (Flamenco 2, BAT 1.x) of ``bat shaman serve``, over raw HTTP.

Numbers in the docstrings are the server items of the conformance checklist
in shaman-protocol.md, section 13.
"""

from __future__ import annotations

import base64
import gzip
import os
import re
import shutil
import socket
import stat
import time
from pathlib import Path

import pytest

from .shaman_server import (
    Server,
    all_blobs,
    blob_path,
    cdf,
    raw_request,
    requests,
    sha,
    start_server,
    temp_files,
    wait_until,
)

SECRET = "test-secret-for-v2"
TEXT = {"Content-Type": "text/plain"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    base = tmp_path_factory.mktemp("shaman-v2")
    srv = start_server(base / "store", base / "checkouts", "--jwt-secret", SECRET)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def token(server: Server) -> str:
    r = requests.get(server.url + "get-token", timeout=10)
    assert r.status_code == 200
    return r.text


@pytest.fixture
def http(server: Server, token: str):  # type: ignore[no-untyped-def]
    with requests.Session() as s:
        s.headers["Authorization"] = f"Bearer {token}"
        yield s


def unique(tag: str, size: int = 100) -> bytes:
    """Content no other test uploads."""
    seed = f"{tag}-{time.monotonic_ns()}-{os.getpid()}".encode()
    return (seed * (size // len(seed) + 1))[:size]


def upload(http: requests.Session, server: Server, data: bytes, **headers: str) -> requests.Response:
    return http.post(f"{server.url}files/{sha(data)}/{len(data)}", data=data, headers=headers, timeout=30)


def requirements(http: requests.Session, server: Server, body: bytes) -> requests.Response:
    return http.post(server.url + "checkout/requirements", data=body, headers=TEXT, timeout=30)


def create(http: requests.Session, server: Server, checkout_id: str, body: bytes) -> requests.Response:
    return http.post(f"{server.url}checkout/create/{checkout_id}", data=body, headers=TEXT, timeout=30)


def tree(root: Path) -> dict[str, str]:
    """Everything below ``root``: path -> 'dir' or the link text."""
    out = {}
    for p in sorted(root.rglob("*")):
        out[p.relative_to(root).as_posix()] = os.readlink(p) if p.is_symlink() else "dir" if p.is_dir() else "file"
    return out


# -- requirements ---------------------------------------------------------------


def test_definition_needs_text_plain(http: requests.Session, server: Server) -> None:
    """1."""
    body = cdf((unique("ct"), "a.txt"))
    for url in ("checkout/requirements", "checkout/create/ct_job"):
        for headers in ({}, {"Content-Type": "application/json"}, {"Content-Type": "text/html"}):
            r = http.post(server.url + url, data=body, headers=headers, timeout=10)
            assert (r.status_code, r.text) == (400, "Expecting text/plain content type\n")
    assert not (server.checkouts / "ob" / "ct_job").exists()


def test_requirements_lists_unknown_in_order_and_each_content_once(http: requests.Session, server: Server) -> None:
    """3, 5."""
    a, b = unique("req-a"), unique("req-b")
    r = requirements(http, server, cdf((b, "z/b.png"), (a, "a.png"), (b, "copy of b.png"), (a, "x/a.png")))
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert r.text == "file-unknown z/b.png\nfile-unknown a.png\n"


def test_requirements_of_stored_files_is_empty_and_touches_them(http: requests.Session, server: Server) -> None:
    """2."""
    data = unique("stored")
    assert upload(http, server, data).status_code == 204
    blob = blob_path(server.storage, data)
    old = time.time() - 40 * 86400
    os.utime(blob, (old, old))
    r = requirements(http, server, cdf((data, "tex/stored.png")))
    assert (r.status_code, r.text) == (200, "")
    assert wait_until(lambda: blob.stat().st_mtime > time.time() - 60)


def test_lenient_line_forms_are_accepted(http: requests.Session, server: Server) -> None:
    """6: CRLF, blank lines, no final LF, extra spaces before the path, inner spaces, '..' inside a name."""
    a, b, c = unique("crlf-a"), unique("crlf-b"), unique("crlf-c")
    body = (f"\r\n{sha(a)} {len(a)} a.png\r\n\n"
            f"{sha(b)} {len(b)}    dir/shot 010.blend  \r\n"
            f"{sha(c)} {len(c)} v1..2.png").encode()
    r = requirements(http, server, body)
    assert r.status_code == 200
    assert r.text == "file-unknown a.png\nfile-unknown dir/shot 010.blend\nfile-unknown v1..2.png\n"


BAD_LINES = [
    ("two fields", "{sha} {size}", "line should consist of three space-separated parts, not 2"),
    ("short checksum", "abc123 {size} a.png", "invalid checksum"),
    ("checksum with dot", "{sha_dot} {size} a.png", "invalid checksum"),
    ("uppercase checksum", "{sha_upper} {size} a.png", "invalid checksum"),
    ("size not int", "{sha} 12a a.png", "invalid file size"),
    ("negative size", "{sha} -1 a.png", "invalid file size"),
    ("double space before size", "{sha}  {size} a.png", "invalid file size"),
    ("absolute", "{sha} {size} /etc/passwd", "no absolute paths allowed"),
    ("drive letter", "{sha} {size} C:/x.png", "no absolute paths allowed"),
    ("dotdot inside", "{sha} {size} a/../b", "paths must be clean and not have any .. in them."),
    ("dotdot first", "{sha} {size} ../x", "paths must be clean and not have any .. in them."),
    ("double slash", "{sha} {size} a//b", "paths must be clean and not have any .. in them."),
    ("dot", "{sha} {size} ./a", "paths must be clean and not have any .. in them."),
    ("trailing slash", "{sha} {size} a/", "paths must be clean and not have any .. in them."),
    ("backslash", "{sha} {size} a\\..\\b", "paths must use / and not contain backslashes"),
    ("NUL", "{sha} {size} a\x00b", "paths must not contain NUL or control characters"),
]


@pytest.mark.parametrize("line,reason", [(line, reason) for _, line, reason in BAD_LINES],
                         ids=[name for name, _, _ in BAD_LINES])
@pytest.mark.parametrize("endpoint", ["checkout/requirements", "checkout/create/bad_lines"])
def test_bad_lines_are_refused_with_their_line_number(http: requests.Session, server: Server, endpoint: str,
                                                      line: str, reason: str) -> None:
    """7, 22: n counts blank lines; nothing is created."""
    good = unique("bad-good")
    h = sha(good)
    bad = line.format(sha=h, size=len(good), sha_dot=h[:30] + "." + h[31:], sha_upper=h.upper())
    body = f"{h} {len(good)} ok.png\n\n{bad}\n".encode()
    r = http.post(server.url + endpoint, data=body, headers=TEXT, timeout=10)
    assert r.status_code == 400
    assert r.text.startswith(f"ERROR invalid line 3: {reason}")
    assert not (server.checkouts / "es" / "bad_lines").exists()


def test_invalid_utf8_is_refused(http: requests.Session, server: Server) -> None:
    data = unique("utf8")
    r = requirements(http, server, f"{sha(data)} {len(data)} ".encode() + b"\xff\xfe.png")
    assert (r.status_code, r.text) == (400, "ERROR invalid line 1: invalid UTF-8\n\n")


def test_conflicting_and_nested_paths_are_refused(http: requests.Session, server: Server) -> None:
    a, b = unique("dup-a"), unique("dup-b")
    r = requirements(http, server, cdf((a, "x.png"), (b, "x.png")))
    assert r.status_code == 400 and r.text.startswith("ERROR invalid line 2: duplicate path")
    r = create(http, server, "nested_job", cdf((a, "x"), (b, "x/y.png")))
    assert r.status_code == 400 and r.text.startswith("ERROR invalid line 2: x is a file")
    assert not (server.checkouts / "ob" / "nested_job").exists()


# -- auth -----------------------------------------------------------------------


def test_tokens(server: Server, token: str) -> None:
    """8, 23."""
    from bat_plugins.shaman.server.auth import make_token

    body = cdf((unique("auth"), "a.png"))
    url = server.url + "checkout/requirements"

    def ask(headers: dict[str, str], **kw) -> requests.Response:  # type: ignore[no-untyped-def]
        return requests.post(url, data=body, headers={**TEXT, **headers}, timeout=10, **kw)

    r = ask({})
    assert r.status_code == 401 and r.text.startswith("JWT token authorization required")
    forged = make_token(b"another secret", "mallory")
    assert ask({"Authorization": f"Bearer {forged}"}).status_code == 401
    claims = token.split(".")[1]
    none_alg = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    assert ask({"Authorization": f"Bearer {none_alg}.{claims}."}).status_code == 401
    assert ask({"Authorization": "Bearer not-a-jwt"}).status_code == 401
    expired = make_token(SECRET.encode(), "late", lifetime_s=3600, now=time.time() - 7200)
    r = ask({"Authorization": f"Bearer {expired}"})
    assert (r.status_code, r.text) == (498, "JWT token expired\n")
    r = ask({"Authorization": f"bearer {token}"})
    assert r.status_code == 200 and r.headers["x-user-id-from-token"] == "bat-shaman-client"
    assert ask({}, cookies={"jwtToken": token}).status_code == 200
    r = requests.get(server.url + "my-info", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert (r.status_code, r.text) == (200, "You are subject bat-shaman-client")


def test_upload_without_token_writes_nothing(server: Server) -> None:
    data = unique("noauth", 3 << 20)
    try:
        r = requests.post(f"{server.url}files/{sha(data)}/{len(data)}", data=data, timeout=10)
        assert r.status_code == 401
    except requests.ConnectionError:
        pass  # answered before the body was read, then closed: the client may not see it
    assert not blob_path(server.storage, data).exists()
    assert not temp_files(server.storage)


def test_token_from_the_cli_works_and_get_token_can_be_off(tmp_path: Path, run_bat) -> None:  # type: ignore[no-untyped-def]
    srv = start_server(tmp_path / "store", tmp_path / "co", "--jwt-secret", "s3cret", "--no-get-token", "--api", "v2")
    try:
        r = requests.get(srv.url + "get-token", timeout=10)
        assert r.status_code == 403 and "SHAMAN_JWT_TOKEN" in r.text
        result = run_bat("shaman", "token", "--jwt-secret", "s3cret", "--subject", "farm")
        assert result.exit_code == 0, result.stderr
        r = requests.get(srv.url + "my-info", headers={"Authorization": f"Bearer {result.stdout.strip()}"},
                         timeout=10)
        assert (r.status_code, r.text) == (200, "You are subject farm")
    finally:
        srv.stop()


# -- uploads --------------------------------------------------------------------


@pytest.mark.parametrize("checksum,size,message", [
    ("abc", "10", "checksum suspiciously short"),
    ("0" * 40, "10", "invalid checksum"),
    ("G" * 64, "10", "invalid checksum"),
    ("0" * 64, "abc", "invalid filesize"),
    ("0" * 64, "-1", "invalid filesize"),
    ("0" * 64, "99999999999999999999", "invalid filesize"),
])
def test_bad_upload_urls(http: requests.Session, server: Server, checksum: str, size: str, message: str) -> None:
    """9."""
    r = http.post(f"{server.url}files/{checksum}/{size}", data=b"x" * 10, timeout=10)
    assert (r.status_code, r.text) == (400, message + "\n")
    assert r.headers["X-Content-Type-Options"] == "nosniff"


def test_upload_stores_verified_blob(http: requests.Session, server: Server) -> None:
    """10."""
    data = unique("upload", 3 << 20)
    r = upload(http, server, data, **{"X-Shaman-Original-Filename": "tex/big.exr"})
    assert (r.status_code, r.text) == (204, "")
    blob = blob_path(server.storage, data)
    assert blob.read_bytes() == data
    assert stat.S_IMODE(blob.stat().st_mode) == 0o644
    assert not temp_files(server.storage)


def test_zero_byte_file(http: requests.Session, server: Server) -> None:
    """11."""
    assert sha(b"") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert upload(http, server, b"").status_code in (204, 208)
    r = create(http, server, "zero_job", cdf((b"", "empty.txt")))
    assert (r.status_code, r.text) == (200, "ob/zero_job")
    assert (server.checkouts / "ob" / "zero_job" / "empty.txt").read_bytes() == b""


def test_stored_pair_answers_208_without_reading(http: requests.Session, server: Server) -> None:
    """12: small body: the 208 is read; big body: 208 or a closed connection; nothing rewritten."""
    small, big = unique("208-small"), unique("208-big", 4 << 20)
    for data in (small, big):
        assert upload(http, server, data).status_code == 204
        before = blob_path(server.storage, data).stat()
        url = f"/files/{sha(data)}/{len(data)}"
        try:
            r = upload(http, server, data)
            assert (r.status_code, r.text) == (208, "File already stored")
            assert r.headers["Location"] == url
        except requests.ConnectionError:
            assert data is big
        after = blob_path(server.storage, data).stat()
        assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    # The 4 MiB body was not read: the answer comes before the client stops sending.
    head = (f"POST /files/{sha(big)}/{len(big)} HTTP/1.1\nHost: x\nAuthorization: {http.headers['Authorization']}\n"
            f"Content-Length: {len(big)}\n")
    answer = raw_request(server.port, head, big[:1024])
    assert answer.startswith(b"HTTP/1.1 208 ") and b"Connection: close" in answer


def test_wrong_size_or_checksum_is_417_and_stores_nothing(http: requests.Session, server: Server) -> None:
    """15."""
    data = unique("417", 50_000)
    h = sha(data)
    r = http.post(f"{server.url}files/{h}/{len(data) + 1}", data=data, timeout=10)
    assert (r.status_code, r.text) == (417, f"Content-Length {len(data)} but you promised {len(data) + 1}\n")
    r = http.post(f"{server.url}files/{h}/{len(data)}", data=data[:-1] + b"!", timeout=10)
    assert (r.status_code, r.text) == (417, "Declared and actual checksums differ\n")
    gz = gzip.compress(data + b"tail")
    r = http.post(f"{server.url}files/{h}/{len(data)}", data=gz, headers={"Content-Encoding": "gzip"}, timeout=10)
    assert r.status_code == 417
    assert re.fullmatch(rf"Received \d+\+ bytes but you promised {len(data)}\n", r.text)
    gz = gzip.compress(data[:-10])
    r = http.post(f"{server.url}files/{h}/{len(data)}", data=gz, headers={"Content-Encoding": "gzip"}, timeout=10)
    assert (r.status_code, r.text) == (417, f"Received {len(data) - 10} bytes but you promised {len(data)}\n")
    assert not blob_path(server.storage, data).exists()
    assert not temp_files(server.storage)


def test_gzip_upload_is_checked_decompressed(http: requests.Session, server: Server) -> None:
    """17."""
    data = unique("gzip", 200_000)
    r = http.post(f"{server.url}files/{sha(data)}/{len(data)}", data=gzip.compress(data),
                  headers={"Content-Encoding": "gzip"}, timeout=10)
    assert r.status_code == 204
    assert blob_path(server.storage, data).read_bytes() == data
    other = unique("br")
    r = http.post(f"{server.url}files/{sha(other)}/{len(other)}", data=other,
                  headers={"Content-Encoding": "br"}, timeout=10)
    assert (r.status_code, r.text) == (400, "Content-Encoding not supported\n")
    r = http.post(f"{server.url}files/{sha(other)}/{len(other)}", data=b"not gzip at all",
                  headers={"Content-Encoding": "gzip"}, timeout=10)
    assert r.status_code == 400
    assert not blob_path(server.storage, other).exists()


def test_lying_content_length(http: requests.Session, server: Server) -> None:
    """Content-Length promising more than is sent, then the client hangs up: nothing stored."""
    data = unique("liar", 100_000)
    auth = http.headers["Authorization"]
    head = (f"POST /files/{sha(data)}/{len(data)} HTTP/1.1\nHost: x\nAuthorization: {auth}\n"
            f"Content-Length: {len(data)}\n")
    raw_request(server.port, head, data[:60_000], hang_up=True, read_timeout=2)
    assert wait_until(lambda: not temp_files(server.storage))
    assert not blob_path(server.storage, data).exists()
    # Content-Length smaller than the size claimed: refused before a byte is written.
    head = (f"POST /files/{sha(data)}/{len(data)} HTTP/1.1\nHost: x\nAuthorization: {auth}\n"
            f"Content-Length: 10\n")
    answer = raw_request(server.port, head, data[:10])
    assert answer.startswith(b"HTTP/1.1 417 ")
    # The right length but other bytes: the digest decides.
    answer = raw_request(server.port, head.replace("Content-Length: 10", f"Content-Length: {len(data)}"),
                         bytes(reversed(data)))
    assert answer.startswith(b"HTTP/1.1 417 ") and b"checksums differ" in answer
    assert not blob_path(server.storage, data).exists()
    assert not temp_files(server.storage)
    assert upload(http, server, data).status_code == 204


def test_size_claim_bigger_than_the_disk_is_507_before_writing(http: requests.Session, server: Server) -> None:
    """A 10 GB (or bigger than the whole disk) claim: refused by a free-space check; nothing written."""
    size = max(10 * 10**9, shutil.disk_usage(server.storage).total + 1)
    h = sha(b"whatever")
    head = (f"POST /files/{h}/{size} HTTP/1.1\nHost: x\nAuthorization: {http.headers['Authorization']}\n"
            f"Content-Length: {size}\n")
    answer = raw_request(server.port, head, b"x" * 65536)
    assert answer.startswith(b"HTTP/1.1 507 "), answer[:200]
    assert b"Insufficient storage" in answer
    assert not temp_files(server.storage)
    assert not (server.storage / "uploading" / h[:2]).exists()


def test_small_disk_refuses_a_10gb_claim_but_takes_small_files(tmp_path: Path) -> None:
    """--min-free leaves the server little room: a 10 GB claim gets 507, a small file still fits.

    (Room for other processes writing to the same disk meanwhile.)
    """
    free = shutil.disk_usage(tmp_path).free
    room = min(1 << 30, free // 2)
    srv = start_server(tmp_path / "store", tmp_path / "co", "--no-auth", "--min-free", str(free - room))
    try:
        data = unique("small-disk", 1000)
        r = requests.post(f"{srv.url}files/{sha(data)}/{10 * 10**9}", data=data, timeout=10)
        assert r.status_code == 507
        r = requests.post(f"{srv.url}files/{sha(data)}/{len(data)}", data=data, timeout=10)
        assert r.status_code == 204
        assert not temp_files(srv.storage)
    finally:
        srv.stop()


def test_options_reports_state(http: requests.Session, server: Server) -> None:
    """18 (the uploading case is in the concurrency tests)."""
    stored, unknown = unique("opt-stored"), unique("opt-unknown")
    assert upload(http, server, stored).status_code == 204
    assert http.options(f"{server.url}files/{sha(stored)}/{len(stored)}", timeout=10).status_code == 200
    assert http.options(f"{server.url}files/{sha(unknown)}/{len(unknown)}", timeout=10).status_code == 404
    r = http.get(f"{server.url}files/{sha(stored)}/{len(stored)}", timeout=10)
    assert r.status_code == 200 and r.content == stored
    assert r.headers["X-Shaman-Checksum"] == sha(stored)
    assert r.headers["ETag"] == f"'{sha(stored)}-{len(stored)}'"
    assert http.get(f"{server.url}files/{sha(unknown)}/{len(unknown)}", timeout=10).status_code == 404


# -- checkouts ------------------------------------------------------------------


@pytest.mark.parametrize("checkout_id", ["a-b", "a.b", "x", "é_job", "a" * 201])
def test_bad_checkout_ids(http: requests.Session, server: Server, checkout_id: str) -> None:
    """19."""
    r = create(http, server, checkout_id, cdf((unique("id"), "a.png")))
    assert (r.status_code, r.text) == (400, f"invalid checkout ID '{checkout_id}'\n")


def test_checkout_ids_with_slash_or_empty_are_404(http: requests.Session, server: Server) -> None:
    body = cdf((unique("id404"), "a.png"))
    for url in ("checkout/create/", "checkout/create/a/b", "checkout/create/..%2Fx"):
        assert http.post(server.url + url, data=body, headers=TEXT, timeout=10).status_code in (400, 404)
    assert not (server.checkouts.parent / "x").exists()


def test_create_links_every_path_and_refuses_an_existing_checkout(http: requests.Session, server: Server) -> None:
    """20, 19 (409), every linked blob touched."""
    a, b = unique("co-a"), unique("co-b", 70_000)
    for d in (a, b):
        assert upload(http, server, d).status_code == 204
    old = time.time() - 40 * 86400
    os.utime(blob_path(server.storage, a), (old, old))
    body = cdf((a, "scenes/shot 010.blend"), (b, "textures/deep/er/b.png"), (b, "b again.png"), (a, "a.blend"))
    r = create(http, server, "jemoeder", body)
    assert r.status_code == 200
    assert r.text == "er/jemoeder"
    root = server.checkouts / "er" / "jemoeder"
    for path, data in (("scenes/shot 010.blend", a), ("textures/deep/er/b.png", b), ("b again.png", b),
                       ("a.blend", a)):
        link = root / path
        assert link.is_symlink()
        assert not os.path.isabs(os.readlink(link))
        assert Path(os.path.realpath(link)) == blob_path(server.storage, data).resolve()
        assert link.read_bytes() == data
    assert blob_path(server.storage, a).stat().st_mtime > time.time() - 60
    before = tree(root)
    r = create(http, server, "jemoeder", cdf((b, "other.png")))
    assert (r.status_code, r.text) == (409, "checkout 'jemoeder' already exists\n")
    assert tree(root) == before
    assert not list((server.checkouts / "er").glob(".bat-creating-*"))


def test_create_with_identical_repeated_entries(http: requests.Session, server: Server) -> None:
    a = unique("repeat")
    assert upload(http, server, a).status_code == 204
    r = create(http, server, "repeat_job", cdf((a, "x.png"), (a, "x.png")))
    assert (r.status_code, r.text) == (200, "ob/repeat_job")


def test_create_with_missing_blob(http: requests.Session, server: Server) -> None:
    """21: 400 with every missing path, no directory left, then the same ID works."""
    present, missing1, missing2 = unique("m-present"), unique("m-missing1"), unique("m-missing2")
    assert upload(http, server, present).status_code == 204
    body = cdf((present, "p.png"), (missing1, "m1.png"), (missing2, "sub/m2.png"), (missing1, "m1 again.png"))
    r = create(http, server, "missing_job", body)
    assert r.status_code == 400
    assert r.text == "file-unknown m1.png\nfile-unknown sub/m2.png\nfile-unknown m1 again.png\n\n"
    assert not (server.checkouts / "ob" / "missing_job").exists()
    assert not list(server.checkouts.rglob(".bat-creating-*"))
    for d in (missing1, missing2):
        assert upload(http, server, d).status_code == 204
    assert create(http, server, "missing_job", body).status_code == 200


def test_checkout_never_goes_through_a_symlink(http: requests.Session, server: Server, tmp_path: Path) -> None:
    """A two-letter directory planted as a symlink to elsewhere: refused, nothing written there."""
    a = unique("escape")
    assert upload(http, server, a).status_code == 204
    outside = tmp_path / "outside"
    outside.mkdir()
    (server.checkouts / "zz").symlink_to(outside)
    try:
        r = create(http, server, "escape_zz", cdf((a, "a.png")))
        assert r.status_code == 400 and "symbolic link" in r.text
        assert list(outside.iterdir()) == []
    finally:
        (server.checkouts / "zz").unlink()


def test_traversal_in_definition_creates_nothing(http: requests.Session, server: Server) -> None:
    a = unique("trav")
    assert upload(http, server, a).status_code == 204
    for path in ("../../evil.png", "/tmp/evil.png", "ok/../../evil.png"):
        r = create(http, server, "trav_job", cdf((a, "fine.png"), (a, path)))
        assert r.status_code == 400 and r.text.startswith("ERROR invalid line 2:")
    assert not (server.checkouts / "ob" / "trav_job").exists()
    assert not (server.checkouts.parent / "evil.png").exists()


def test_v3_routes_are_off_with_api_v2(tmp_path: Path) -> None:
    srv = start_server(tmp_path / "store", tmp_path / "co", "--no-auth", "--api", "v2")
    try:
        data = b"v2 only"
        assert requests.post(f"{srv.url}files/{sha(data)}/{len(data)}", data=data, timeout=10).status_code == 204
        for method, url in (("POST", "shaman/checkout/requirements"), ("POST", "shaman/checkout/create"),
                            ("GET", f"shaman/files/{sha(data)}/{len(data)}"),
                            ("POST", f"shaman/files/{sha(data)}/{len(data)}")):
            r = requests.request(method, srv.v3 + url, json={}, timeout=10)
            assert r.status_code == 503
            assert r.json() == {"code": 503, "message": "shaman server not active"}
        assert requests.get(srv.v3 + "configuration", timeout=10).json()["shamanEnabled"] is False
        r = requests.get(srv.v3 + "configuration/shared-storage/users/linux", timeout=10)
        assert r.json()["shamanEnabled"] is False
    finally:
        srv.stop()


def test_unknown_routes_and_methods(http: requests.Session, server: Server) -> None:
    assert http.get(server.url + "nothing-here", timeout=10).status_code == 404
    assert http.get(server.url + "checkout/requirements", timeout=10).status_code == 405


def test_bad_storage_directory_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "store").write_text("a file, not a directory")
    with pytest.raises(RuntimeError) as info:
        start_server(tmp_path / "store", tmp_path / "co", "--no-auth")
    lines = [line for line in str(info.value).splitlines()[1:] if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("bat: error: ") and "store" in lines[0]


def test_port_in_use_is_one_line(server: Server, tmp_path: Path) -> None:
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "bat_core", "shaman", "serve", "--storage", str(tmp_path / "s"),
                               "--checkouts", str(tmp_path / "c"), "--port", str(port), "--no-auth"],
                              capture_output=True, text=True, timeout=30)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith("bat: error: ")
    assert "Traceback" not in done.stderr
    assert all_blobs(tmp_path / "s") == []


def test_chunked_uploads(http: requests.Session, server: Server) -> None:
    """No Content-Length (chunked): streamed and checked all the same, overflow stopped early."""
    data = unique("chunked", 500_000)

    def pieces(payload: bytes):  # type: ignore[no-untyped-def]
        for i in range(0, len(payload), 50_000):
            yield payload[i:i + 50_000]

    r = http.post(f"{server.url}files/{sha(data)}/{len(data)}", data=pieces(data), timeout=10)
    assert r.status_code == 204
    assert blob_path(server.storage, data).read_bytes() == data
    other = unique("chunked-over", 500_000)
    try:
        r = http.post(f"{server.url}files/{sha(other)}/1000", data=pieces(other), timeout=10)
        assert r.status_code == 417 and r.text.startswith("Received ")
    except requests.ConnectionError:
        pass  # answered and closed while the client was still sending
    assert not blob_path(server.storage, other).exists()
    assert wait_until(lambda: not temp_files(server.storage))
