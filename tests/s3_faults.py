"""A fault-injecting HTTP proxy in front of the real S3 server (SeaweedFS).

The faults a healthy server never produces on demand: a storm of ``503
SlowDown`` answers, a connection reset in the middle of a part's body.  Every
request the proxy lets through goes to the real server unchanged (the Host
header too, so the client's SigV4 signature still verifies); one request per
connection, so each can be judged on its own.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

SLOW_DOWN = (b"HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\nContent-Length: %d\r\n"
             b"Connection: close\r\n\r\n%s")
SLOW_DOWN_BODY = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
                  b"<Message>Please reduce your request rate.</Message></Error>")


@dataclass
class Request:
    method: str
    target: str  # path and query
    headers: dict[str, str]

    @property
    def is_part(self) -> bool:
        return self.method == "PUT" and "partNumber=" in self.target and "uploadId=" in self.target


#: A rule: request -> "forward", "503" or "reset" (close with RST after half the body).
Rule = Callable[[Request], str]


@dataclass
class FaultProxy:
    upstream: tuple[str, int]
    rule: Rule
    port: int = 0
    seen: list[tuple[Request, str]] = field(default_factory=list)
    _sock: socket.socket | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        sock = self._sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        self.port = sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def stop(self) -> None:
        if self._sock is not None:
            self._sock.close()

    def count(self, verdict: str) -> int:
        with self._lock:
            return sum(1 for _, v in self.seen if v == verdict)

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
            reader = conn.makefile("rb")
            line = reader.readline().decode("latin-1").rstrip("\r\n")
            if not line:
                return
            method, target, _ = line.split(" ", 2)
            headers: dict[str, str] = {}
            raw_headers = []
            while (h := reader.readline().decode("latin-1").rstrip("\r\n")):
                name, _, value = h.partition(":")
                headers[name.strip().lower()] = value.strip()
                raw_headers.append((name.strip(), value.strip()))
            request = Request(method, target, headers)
            verdict = self.rule(request)
            with self._lock:
                self.seen.append((request, verdict))
            if verdict == "503":
                conn.sendall(SLOW_DOWN % (len(SLOW_DOWN_BODY), SLOW_DOWN_BODY))
                return
            length = int(headers.get("content-length", "0") or 0)
            if headers.get("expect", "").lower() == "100-continue":
                conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            if verdict == "reset":
                reader.read(length // 2)
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                return
            body = reader.read(length) if length else b""
            self._forward(conn, line, raw_headers, body)

    def _forward(self, conn: socket.socket, line: str, raw_headers: list[tuple[str, str]], body: bytes) -> None:
        skip = {"connection", "expect", "keep-alive"}
        head = line + "\r\n" + "".join(f"{n}: {v}\r\n" for n, v in raw_headers if n.lower() not in skip)
        with socket.create_connection(self.upstream) as up:
            up.sendall(head.encode("latin-1") + b"Connection: close\r\n\r\n" + body)
            response = b""
            while chunk := up.recv(1 << 16):
                response += chunk
        head_end = response.find(b"\r\n\r\n")
        status_and_headers = response[:head_end].split(b"\r\n")
        kept = [h for h in status_and_headers[1:] if not h.lower().startswith((b"connection:", b"keep-alive:"))]
        conn.sendall(b"\r\n".join([status_and_headers[0], *kept, b"Connection: close"]) + response[head_end:])


@contextlib.contextmanager
def fault_proxy(upstream_host: str, rule: Rule) -> Iterator[FaultProxy]:
    host, port = upstream_host.rsplit(":", 1)
    proxy = FaultProxy((host, int(port)), rule)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()


def first_n(n: int, verdict: str, which: Callable[[Request], bool]) -> Rule:
    """The first ``n`` requests ``which`` selects get ``verdict``; everything else is forwarded."""
    lock = threading.Lock()
    left = [n]

    def rule(request: Request) -> str:
        if not which(request):
            return "forward"
        with lock:
            if left[0] <= 0:
                return "forward"
            left[0] -= 1
        return verdict

    return rule
