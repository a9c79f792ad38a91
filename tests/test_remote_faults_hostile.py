"""``bat pack`` against HOSTILE SERVERS: answers no real Shaman or S3 server gives.

:class:`HostileServer` is a FAULT SERVER written for these tests: raw sockets
on 127.0.0.1 speaking just enough Shaman v2, Shaman v3 or S3 to lead ``bat``
to the request under test, which it then answers with a path escaping the
checkout, gigabytes, a byte every few tenths of a second, a redirect to
another host, something that is not HTTP, an XML or JSON bomb, a listing
without end.  ``bat`` runs in its own process in an empty working directory.
Each time: one ``bat: error:`` line (or, for an endless listing, a warning and
a finished pack), no traceback, within a bounded time, with a peak memory far
below what the server sent, no file written anywhere but bat's cache, and no
terminal escape from the server on the screen.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from .remote_faults import QUICK_RETRIES, Finished, bat_env, hashes, run_bat, snapshot

DEMO = Path(__file__).resolve().parent.parent / "examples" / "demo"
#: What the servers send when they send "too much"; a bat that kept it all would show it in its memory.
FLOOD = 600 * 1000 * 1000
#: Peak memory a bat process may reach here (it uses about 100 MB for this scene).
MEMORY_LIMIT = 250 * 1000 * 1000
SECONDS = 20
#: Short answer deadlines, so the slow-loris tests end in seconds.
QUICK = {**QUICK_RETRIES, "bat_plugins.shaman.client.transfer:LIST_TIMEOUT": 2.0,
         "bat_plugins.shaman.client.transfer:TIMEOUT": 2.0}


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


#: An answer: bytes to send (then close), or a function that writes to the socket itself.
Answer = bytes | Callable[[socket.socket], None]


@dataclass
class HostileServer:
    """A FAULT SERVER: answers each request with what ``answer`` returns."""

    answer: Callable[[Request], Answer]
    host: str = "127.0.0.1"
    port: int = 0
    seen: list[Request] = field(default_factory=list)
    _sock: socket.socket | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> HostileServer:
        sock = self._sock = socket.socket()
        sock.bind((self.host, 0))
        sock.listen(64)
        self.port = sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._sock is not None
        self._sock.close()

    def _accept(self) -> None:
        assert self._sock is not None
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            conn.settimeout(30)
            reader = conn.makefile("rb")
            line = reader.readline().decode("latin-1").rstrip("\r\n")
            if not line:
                return
            method, path, _ = line.split(" ", 2)
            headers: dict[str, str] = {}
            while h := reader.readline().decode("latin-1").rstrip("\r\n"):
                name, _, value = h.partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0") or 0)
            if headers.get("expect", "").lower() == "100-continue":
                conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            body = reader.read(length) if length else b""
            request = Request(method, path, headers, body)
            self.seen.append(request)
            answer = self.answer(request)
            if callable(answer):
                answer(conn)
            else:
                conn.sendall(answer)


def http(status: int, body: bytes = b"", ctype: str = "text/plain", **headers: str) -> bytes:
    head = [f"HTTP/1.1 {status} X", f"Content-Type: {ctype}", f"Content-Length: {len(body)}", "Connection: close",
            *(f"{k.replace('_', '-')}: {v}" for k, v in headers.items())]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


def flood(head: bytes, unit: bytes, total: int = FLOOD) -> Callable[[socket.socket], None]:
    """Send ``head`` then ``unit`` over and over, ``total`` bytes in all (or until bat hangs up)."""
    def send(conn: socket.socket) -> None:
        conn.sendall(head)
        block = unit * max(1, (1 << 20) // len(unit))
        sent = 0
        while sent < total:
            conn.sendall(block)
            sent += len(block)
    return send


def dribble(data: bytes, every: float = 0.3, seconds: float = 60) -> Callable[[socket.socket], None]:
    """A slow-loris: one byte of ``data`` (repeated) every ``every`` seconds, for up to ``seconds``."""
    def send(conn: socket.socket) -> None:
        end = time.monotonic() + seconds
        i = 0
        while time.monotonic() < end:
            conn.sendall(data[i % len(data): i % len(data) + 1])
            i += 1
            time.sleep(every)
    return send


# --- a Shaman server that is well behaved until the request under test -----------------------------

EMPTY_V3 = json.dumps({"files": []}).encode()


def shaman(api: str, stage: str, hostile: Answer) -> Callable[[Request], Answer]:
    """Answers as ``bat shaman serve`` would, except ``stage`` ("requirements" or "create")."""
    def answer(req: Request) -> Answer:
        p = req.path
        if "checkout/requirements" in p:
            if stage == "requirements":
                return hostile
            return http(200, b"") if api == "v2" else http(200, EMPTY_V3, "application/json")
        if "checkout/create" in p:
            return hostile
        if p == "/get-token":
            return http(200, b"a-token")
        if p == "/my-info":
            return http(200, b"You are subject -")
        if p == "/api/v3/version":
            return http(200, json.dumps({"version": "3.6", "name": "Flamenco"}).encode(), "application/json")
        if p == "/api/v3/configuration":
            return http(200, json.dumps({"shamanEnabled": True}).encode(), "application/json")
        if p.startswith("/api/v3/shaman/files/"):
            return http(200, json.dumps({"status": "unknown"}).encode(), "application/json")
        return http(404, b"not found\n")
    return answer


@pytest.fixture
def place(tmp_path: Path) -> Iterator[Path]:
    """The working directory and home of bat; everything in ``tmp_path`` is checked unchanged afterwards
    but bat's cache and the files holding its output."""
    before = snapshot(tmp_path)
    source = hashes(DEMO)
    yield tmp_path
    after = {k: v for k, v in snapshot(tmp_path).items() if not k.startswith(("cache", "run/bat-"))}
    assert set(after) - set(before) <= {"run", "run/cwd", "home"}, sorted(set(after) - set(before))
    assert {k: after.get(k) for k in before} == before
    assert hashes(DEMO) == source


def bat_pack(place: Path, url: str, **env: str) -> Finished:
    return run_bat(["pack", "--progress", "none", str(DEMO / "shot.blend"), url], place / "run",
                   bat_env(place / "cache", place / "home", **env), timeout=SECONDS + 30, patches=QUICK)


def bounded(done: Finished) -> str:
    """One line, in time, in little memory, no escape character shown: the line."""
    line = done.one_line()
    assert done.seconds < SECONDS, done.seconds
    assert done.max_rss < MEMORY_LIMIT, done.max_rss
    assert "\x1b" not in done.stderr and "\x1b" not in done.stdout
    return line


def url(api: str, port: int, host: str = "127.0.0.1") -> str:
    return f"shaman+http://{host}:{port}/#hostile_job" if api == "v2" else f"flamenco+http://{host}:{port}/jobs/x"


# --- Shaman: paths ---------------------------------------------------------------------------------

LOCATIONS = {"traversal": "../../etc", "absolute": "/etc/cron.d/x", "escape": "jobs/\x1b[2J\x1b]0;pwned\x07x",
             "dotted": "jobs/./../x", "huge": "a/" * 100_000}


@pytest.mark.parametrize("api", ["v2", "v3"])
@pytest.mark.parametrize("kind", sorted(LOCATIONS))
def test_checkout_location_that_cannot_be_one(api: str, kind: str, place: Path) -> None:
    location = LOCATIONS[kind]
    body = location.encode() if api == "v2" else json.dumps({"checkoutPath": location}).encode()
    with HostileServer(shaman(api, "create", http(200, body))) as srv:
        line = bounded(bat_pack(place, url(api, srv.port)))
    assert "the server answered a checkout location that cannot be one" in line, line


REQUIREMENTS = {
    "v2": {"traversal": b"file-unknown ../../x\n", "absolute": b"file-unknown /etc/passwd\n",
           "binary": b"\xff\xfe\x00garbage"},
    "v3": {"traversal": json.dumps({"files": [{"sha": "0" * 64, "size": 1, "path": "../../x",
                                               "status": "unknown"}]}).encode(),
           "absolute": json.dumps({"files": [{"sha": "0" * 64, "size": 1, "path": "/etc/passwd",
                                              "status": "unknown"}]}).encode(),
           "nesting-bomb": b"[" * 200_000 + b"]" * 200_000},
}


@pytest.mark.parametrize(("api", "kind"), [(a, k) for a in REQUIREMENTS for k in REQUIREMENTS[a]])
def test_requirements_answer_that_cannot_be_one(api: str, kind: str, place: Path) -> None:
    ctype = "text/plain" if api == "v2" else "application/json"
    with HostileServer(shaman(api, "requirements", http(200, REQUIREMENTS[api][kind], ctype))) as srv:
        line = bounded(bat_pack(place, url(api, srv.port)))
        assert not [r for r in srv.seen if "/files/" in r.path and r.method == "POST"]  # nothing uploaded
    assert "requirements answer" in line or "asked for a file that is not in the checkout" in line, line


# --- Shaman: too much, too slow, elsewhere, not HTTP ----------------------------------------------


@pytest.mark.parametrize("api", ["v2", "v3"])
@pytest.mark.parametrize("stage", ["requirements", "create"])
@pytest.mark.parametrize("framing", ["length", "close"])
def test_enormous_answer(api: str, stage: str, framing: str, place: Path) -> None:
    """600 MB of answer, announced or not: bat stops reading early, its memory stays small."""
    unit = b"file-unknown shot.blend\n"
    head = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
            + (b"Content-Length: %d\r\n" % FLOOD if framing == "length" else b"Connection: close\r\n") + b"\r\n")
    with HostileServer(shaman(api, stage, flood(head, unit))) as srv:
        line = bounded(bat_pack(place, url(api, srv.port)))
    assert "too large to be one" in line, line


@pytest.mark.parametrize("api", ["v2", "v3"])
@pytest.mark.parametrize("where", ["status-line", "body"])
def test_slow_loris_answer(api: str, where: str, place: Path) -> None:
    """A byte every 0.3 s, for a minute: the answer deadline (2 s here) ends the wait."""
    if where == "status-line":
        slow = dribble(b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 1000)
    else:
        def slow(conn: socket.socket) -> None:
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100000\r\n\r\n")
            dribble(b"file-unknown shot.blend\n")(conn)
    with HostileServer(shaman(api, "requirements", slow)) as srv:
        line = bounded(bat_pack(place, url(api, srv.port)))
    assert "no answer from" in line and "within 2 s" in line, line


@pytest.mark.parametrize("api", ["v2", "v3"])
@pytest.mark.parametrize("stage", ["requirements", "create"])
def test_redirect_to_another_host(api: str, stage: str, place: Path) -> None:
    """Redirects are never followed: nothing reaches the other host."""
    with HostileServer(lambda req: http(200, b"")) as other:
        moved = http(307, b"", Location=f"http://127.0.0.2:{other.port}/steal")
        with HostileServer(shaman(api, stage, moved)) as srv:
            line = bounded(bat_pack(place, url(api, srv.port)))
        assert other.seen == []
    assert "redirected" in line and "give the server's own URL" in line, line


GARBAGE = {"ssh": b"SSH-2.0-OpenSSH_9.6\r\n", "status": b"HTTP/1.1 abc\r\n\r\n",
           "binary": bytes(range(256)) * 4}


@pytest.mark.parametrize("api", ["v2", "v3"])
@pytest.mark.parametrize("kind", sorted(GARBAGE))
def test_answer_that_is_not_http(api: str, kind: str, place: Path) -> None:
    with HostileServer(shaman(api, "requirements", GARBAGE[kind])) as srv:
        line = bounded(bat_pack(place, url(api, srv.port)))
    assert "did not answer in HTTP" in line or "closed the connection" in line, line


# --- S3 ---------------------------------------------------------------------------------------------

LIST_HEAD = (b'<?xml version="1.0" encoding="UTF-8"?>'
             b'<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">')


def listing(keys: list[str], token: str | None = None) -> bytes:
    contents = "".join(f"<Contents><Key>{k}</Key><Size>5</Size><ETag>\"e{i}\"</ETag></Contents>"
                       for i, k in enumerate(keys))
    more = (f"<IsTruncated>true</IsTruncated><NextContinuationToken>{token}</NextContinuationToken>"
            if token else "<IsTruncated>false</IsTruncated>")
    return LIST_HEAD + f"<Name>bkt</Name><Prefix>job/</Prefix>{contents}{more}</ListBucketResult>".encode()


def xml_bomb() -> bytes:
    entities = '<!ENTITY l0 "lollollollollollollollollollol">' + "".join(
        f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
    return (f'<?xml version="1.0"?><!DOCTYPE b [{entities}]>'
            '<ListBucketResult><Name>&l9;</Name><IsTruncated>false</IsTruncated></ListBucketResult>').encode()


def s3(listing_answer: Callable[[Request], Answer]) -> Callable[[Request], Answer]:
    """Enough S3 for a pack of small files: the start's one-key listing, then ``listing_answer``,
    PUTs stored (ETag = nothing checks it), HEADs not found."""
    started = [False]

    def answer(req: Request) -> Answer:
        if req.method == "GET" and "list-type=2" in req.path:
            if not started[0] and "max-keys=1" in req.path:
                started[0] = True
                return http(200, listing([]), "application/xml")
            return listing_answer(req)
        if req.method == "PUT":
            return http(200, b"", ETag='"0123456789abcdef0123456789abcdef"')
        if req.method == "HEAD":
            return http(404, b"")
        return http(501, b"<Error><Code>NotImplemented</Code></Error>", "application/xml")
    return answer


def s3_pack(place: Path, port: int) -> Finished:
    return bat_pack(place, f"s3+http://127.0.0.1:{port}/bkt/job", AWS_ACCESS_KEY_ID="AKIAHOSTILETEST",
                    AWS_SECRET_ACCESS_KEY="hostile-test-secret")


def test_s3_xml_bomb_at_start(place: Path) -> None:
    """A billion-laughs answer to the first request: expat refuses to expand it; botocore takes an
    answer it cannot read for a failing server (500), so after its retries the pack stops there."""
    bomb = http(200, xml_bomb(), "application/xml")
    with HostileServer(lambda req: bomb) as srv:
        line = bounded(s3_pack(place, srv.port))
    assert "is not valid S3 XML" in line or "the server is busy or failing" in line, line


def test_s3_xml_bomb_as_the_listing(place: Path) -> None:
    """The listing is only a shortcut: one that cannot be read makes the next round upload everything."""
    bomb = http(200, xml_bomb(), "application/xml")
    with HostileServer(s3(lambda req: bomb)) as srv:
        done = s3_pack(place, srv.port)
        puts = [r.path for r in srv.seen if r.method == "PUT"]
    assert done.code == 0 and "Traceback" not in done.stderr, done.stderr
    assert done.seconds < SECONDS and done.max_rss < MEMORY_LIMIT
    assert len(puts) == 9  # the seven files, pack-info.txt and the manifest


@pytest.mark.parametrize("framing", ["length", "close"])
def test_s3_enormous_listing_page(framing: str, place: Path) -> None:
    unit = b"<Contents><Key>job/x</Key><Size>5</Size></Contents>"
    head = (b"HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\n"
            + (b"Content-Length: %d\r\n" % FLOOD if framing == "length" else b"Connection: close\r\n")
            + b"\r\n" + LIST_HEAD)
    with HostileServer(s3(lambda req: flood(head, unit))) as srv:
        line = bounded(s3_pack(place, srv.port))
    assert "larger than 16 MiB" in line, line


@pytest.mark.parametrize("kind", ["endless", "circular"])
def test_s3_listing_without_end(kind: str, place: Path) -> None:
    """Pages for ever (new keys and tokens each time, or the same token again): the listing stops,
    every file is checked with a HEAD instead, the pack finishes."""
    pages = [0]

    def page(req: Request) -> Answer:
        pages[0] += 1
        n = pages[0] if kind == "endless" else 1
        return http(200, listing([f"job/other/{n}-{i}" for i in range(1000)], f"token-{n}"), "application/xml")

    with HostileServer(s3(page)) as srv:
        done = run_bat(["pack", "--progress", "none", str(DEMO / "shot.blend"), f"s3+http://127.0.0.1:{srv.port}/bkt/job"],
                       place / "run", bat_env(place / "cache", place / "home", AWS_ACCESS_KEY_ID="AKIAHOSTILETEST",
                                               AWS_SECRET_ACCESS_KEY="hostile-test-secret"),
                       timeout=SECONDS + 60, patches={**QUICK, "bat_plugins.s3.transfer:MAX_LISTED": 20_000})
        heads = [r for r in srv.seen if r.method == "HEAD"]
    assert done.code == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert done.seconds < SECONDS + 20 and done.max_rss < MEMORY_LIMIT
    warning = [ln for ln in done.stderr.splitlines() if ln.startswith("bat: warning: ")]
    assert len(warning) == 1 and "listing stopped" in warning[0], done.stderr
    assert ("goes round in circles" if kind == "circular" else "more than 20000 objects") in warning[0]
    assert len(heads) == 8  # every file of the pack (pack-info.txt too), checked one by one
    assert pages[0] <= (21 if kind == "endless" else 2)


def test_s3_answer_that_is_not_http(place: Path) -> None:
    with HostileServer(lambda req: GARBAGE["ssh"]) as srv:
        line = bounded(s3_pack(place, srv.port))
    assert "cannot reach" in line or "cannot list" in line, line
