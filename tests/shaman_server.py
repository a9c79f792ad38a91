"""Test helpers: ``bat shaman serve`` in a subprocess, raw HTTP, BAT 1.23 in its own venv.

Every server listens on 127.0.0.1 with a port the kernel picks (``--port 0``);
the helper reads the port from the server's start-up line and waits until it
answers HTTP.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

try:
    import aiohttp  # noqa: F401
    import requests
except ImportError:  # pragma: no cover - the shaman-server extra is missing
    if os.environ.get("CI"):
        raise
    pytest.skip("the Shaman server tests need the shaman-server extra (aiohttp, requests)",
                allow_module_level=True)

_LISTENING = re.compile(r"listening on http://127\.0\.0\.1:(\d+)/")


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    url: str
    port: int
    storage: Path
    checkouts: Path
    log: Path

    @property
    def v3(self) -> str:
        return self.url + "api/v3/"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def launch_server(storage: Path, checkouts: Path, *extra: str) -> tuple[subprocess.Popen[bytes], Path]:
    """Start ``bat shaman serve --port 0``; :func:`wait_ready` waits until it answers."""
    storage.parent.mkdir(parents=True, exist_ok=True)
    log = storage.parent / f"server-{time.monotonic_ns()}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bat_core", "shaman", "serve", "--storage", str(storage),
             "--checkouts", str(checkouts), "--host", "127.0.0.1", "--port", "0", *extra],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    return proc, log


def wait_ready(proc: subprocess.Popen[bytes], log: Path, storage: Path, checkouts: Path,
               timeout: float = 30.0) -> Server:
    deadline = time.monotonic() + timeout
    port = None
    while time.monotonic() < deadline:
        m = _LISTENING.search(log.read_text(errors="replace"))
        if m:
            port = int(m.group(1))
            break
        if proc.poll() is not None:
            raise RuntimeError(f"bat shaman serve exited with {proc.returncode}:\n{log.read_text()}")
        time.sleep(0.02)
    if port is None:
        proc.kill()
        raise RuntimeError(f"bat shaman serve did not start:\n{log.read_text()}")
    server = Server(proc, f"http://127.0.0.1:{port}/", port, storage, checkouts, log)
    while time.monotonic() < deadline:
        try:
            requests.get(server.v3 + "version", timeout=2)
            return server
        except requests.ConnectionError:
            time.sleep(0.02)
    server.kill()
    raise RuntimeError(f"bat shaman serve does not answer:\n{log.read_text()}")


def start_server(storage: Path, checkouts: Path, *extra: str) -> Server:
    """Start ``bat shaman serve`` on a free port and wait until it answers."""
    return wait_ready(*launch_server(storage, checkouts, *extra), storage, checkouts)


def start_servers(count: int, storage: Path, checkouts: Path, *extra: str) -> list[Server]:
    """Several servers on one store, started side by side."""
    launched = [launch_server(storage, checkouts, *extra) for _ in range(count)]
    return [wait_ready(proc, log, storage, checkouts) for proc, log in launched]


# -- content ------------------------------------------------------------------


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def blob_path(storage: Path, data: bytes) -> Path:
    h = sha(data)
    return storage / "stored" / h[:2] / h[2:] / f"{len(data)}.blob"


def _files(top: Path, suffix: str) -> list[Path]:
    # os.walk, not rglob: the server prunes directories while we look.
    return sorted(Path(d) / f for d, _, files in os.walk(top) for f in files if f.endswith(suffix))


def temp_files(storage: Path) -> list[Path]:
    return _files(storage / "uploading", ".tmp")


def all_blobs(storage: Path) -> list[Path]:
    return _files(storage / "stored", ".blob")


def cdf(*entries: tuple[bytes, str]) -> bytes:
    """A v2 checkout definition for (content, path) entries."""
    return "\n".join(f"{sha(d)} {len(d)} {p}" for d, p in entries).encode("utf-8")


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.05) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def raw_request(port: int, head: str, body: bytes = b"", *, hang_up: bool = False,
                read_timeout: float = 10.0) -> bytes:
    """Send exactly these bytes (for lying headers and truncated bodies) and read what comes back.

    The request asks for ``Connection: close``; ``hang_up`` shuts the sending side
    after the body, which aiohttp takes as the client going away.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=read_timeout) as s:
        s.sendall(head.replace("\n", "\r\n").encode("latin-1") + b"Connection: close\r\n\r\n" + body)
        if hang_up:
            s.shutdown(socket.SHUT_WR)
        chunks = []
        try:
            while chunk := s.recv(65536):
                chunks.append(chunk)
        except (TimeoutError, ConnectionResetError):
            pass
        return b"".join(chunks)


# -- BAT 1.23 -----------------------------------------------------------------

BAT123_SPEC = ["blender-asset-tracer==1.23", "zstandard"]


def bat123_venv() -> Path:
    """A virtual environment with BAT 1.23 (and zstandard, for zstd blend files), made once.

    Cached at ``$BAT_TEST_BAT123_VENV``, else in the user cache directory, so
    later runs (and CI on the same machine) reuse it.
    """
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "bat-tests" / (
        f"bat123-py{sys.version_info.major}{sys.version_info.minor}")
    venv = Path(os.environ.get("BAT_TEST_BAT123_VENV", default))
    bat = venv / "bin" / "bat"
    python = venv / "bin" / "python"
    check = [str(python), "-c", "import blender_asset_tracer, zstandard, sys; "
             "sys.exit(blender_asset_tracer.__version__ != '1.23')"]
    if bat.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return venv
    venv.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True, capture_output=True)
    done = subprocess.run([str(python), "-m", "pip", "install", "--quiet", *BAT123_SPEC],
                          capture_output=True, text=True)
    if done.returncode != 0 or subprocess.run(check, capture_output=True).returncode != 0:
        raise RuntimeError(f"cannot install {' '.join(BAT123_SPEC)} into {venv}:\n{done.stderr}")
    return venv


class SlowUpload:
    """An upload over a raw socket, sent in parts, to hold a pair in the "uploading" state."""

    def __init__(self, port: int, path: str, data: bytes, headers: dict[str, str] | None = None) -> None:
        self.data = data
        self.sent = 0
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=15)
        lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(data)}", "Connection: close",
                 *(f"{k}: {v}" for k, v in (headers or {}).items())]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    def send(self, n: int) -> None:
        self.sock.sendall(self.data[self.sent:self.sent + n])
        self.sent += n

    def finish(self) -> None:
        """Send the rest of the body (the server may have stopped reading)."""
        with contextlib.suppress(OSError):
            self.sock.sendall(self.data[self.sent:])
        self.sent = len(self.data)

    def response(self) -> bytes:
        chunks = []
        try:
            while chunk := self.sock.recv(65536):
                chunks.append(chunk)
        except (TimeoutError, ConnectionResetError):
            pass
        self.sock.close()
        return b"".join(chunks)

    def status(self) -> int:
        answer = self.response()
        return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0

    def close(self) -> None:
        self.sock.close()
