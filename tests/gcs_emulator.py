"""A real GCS-compatible server for the bat-gcs tests, and a fault proxy in front of it.

``gcp-storage-emulator`` (PyPI) runs in a subprocess on 127.0.0.1 at a free
port, in memory, for the whole test session; the Google client finds it
through ``STORAGE_EMULATOR_HOST``.  Faults the emulator cannot produce on
demand (a 503, a dropped connection, a corrupted chunk) come from
:class:`FaultProxy`, a small HTTP proxy that forwards everything else to the
emulator unchanged.  The emulator builds session URLs from the ``Host``
header, so uploads that start through the proxy stay on it.
"""

from __future__ import annotations

import http.client
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "bat-gcs"
BIN = Path(sys.executable).parent


def _missing() -> list[str]:
    out = []
    for name in ("gcp_storage_emulator", "google.cloud.storage", "google_crc32c"):
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            out.append(name)
    return out


#: bat's test extra installs these (pip install -e '.[test]'); under CI their absence fails.
MISSING = _missing()


def require_gcs() -> None:
    """Skip (fail under CI) when bat-gcs or the emulator is not installed."""
    if MISSING:
        message = f"{', '.join(MISSING)} not installed: pip install -e '.[test]'"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Emulator:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def client(self, url: str | None = None):  # type: ignore[no-untyped-def]
        """A storage client for the emulator (or for a proxy in front of it)."""
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        return storage.Client(project="test", credentials=AnonymousCredentials(),
                              client_options={"api_endpoint": url or self.url})

    def create_bucket(self, name: str) -> None:
        self.client().create_bucket(name)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_emulator(workdir: Path) -> Emulator:
    """Start the emulator and wait until it answers (a few tries in case the port was taken)."""
    last = ""
    for _ in range(3):
        port = free_port()
        log = workdir / f"emulator-{port}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", "gcp_storage_emulator", "start", "--host", "127.0.0.1",
                                     "--port", str(port), "--in-memory", "-q"], stdout=out, stderr=out)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(url + "/", timeout=1) as r:
                    if r.read() == b"OK":
                        return Emulator(url, proc, log)
            except OSError:
                time.sleep(0.1)
        last = log.read_text(errors="replace")[-2000:]
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    raise RuntimeError(f"gcp-storage-emulator did not start:\n{last}")


@pytest.fixture(scope="session")
def gcs_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``pip install ./examples/bat-gcs`` into a directory of its own: put it on ``PYTHONPATH``.

    The wheel is built from a copy (no build files in the work tree) without
    build isolation (the test extra has setuptools), and installed without
    dependencies (the test extra has them).  The test environment itself is
    left alone, so no other test sees a third-party plugin it did not ask for.
    """
    require_gcs()
    base = tmp_path_factory.mktemp("bat-gcs")
    src = base / "src"
    shutil.copytree(EXAMPLE, src, ignore=shutil.ignore_patterns("*.egg-info", "build", "__pycache__"))
    site = base / "site"
    proc = subprocess.run([sys.executable, "-m", "pip", "--isolated", "install", "--quiet", "--no-deps",
                           "--no-build-isolation", "--no-index", "--target", str(site), str(src)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"pip install ./examples/bat-gcs failed:\n{proc.stdout}\n{proc.stderr}"
    assert (site / "bat_gcs" / "plugin.py").exists()
    return site


@pytest.fixture(scope="session")
def bat_gcs_code() -> Iterator[None]:
    """Make ``import bat_gcs`` work in this process, from the source (which holds no entry point)."""
    require_gcs()
    path = str(EXAMPLE)
    sys.path.insert(0, path)
    try:
        yield
    finally:
        sys.path.remove(path)


#: One emulator per session, whichever test module asks first (each module imports the fixture).
_RUNNING: dict[str, Emulator] = {}


@pytest.fixture(scope="session")
def emulator(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """The emulator for the session, with ``STORAGE_EMULATOR_HOST`` pointing at it."""
    require_gcs()
    emu = _RUNNING.get("emulator")
    if emu is None:
        emu = start_emulator(tmp_path_factory.mktemp("gcs"))
        _RUNNING["emulator"] = emu
        request.config.add_cleanup(emu.stop)
    mp = pytest.MonkeyPatch()
    mp.setenv("STORAGE_EMULATOR_HOST", emu.url)
    try:
        yield emu
    finally:
        mp.undo()


# --- the fault proxy ------------------------------------------------------------------------

@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body_size: int


#: A fault decides, per request, what to do instead of forwarding: None forwards it.
#: It returns a status code to answer with, or "drop" to close the connection unanswered,
#: or a callable that changes the body before it is forwarded.
Fault = Callable[[Seen], "int | str | Callable[[bytes], bytes] | None"]


@dataclass
class FaultProxy:
    upstream: str
    faults: list[Fault] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def requests(self, method: str, contains: str = "") -> list[Seen]:
        return [s for s in self.seen if s.method == method and contains in s.path]


def start_proxy(upstream: str) -> FaultProxy:
    proxy = FaultProxy(upstream)
    host, port = upstream.removeprefix("http://").split(":")
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            seen = Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, len(body))
            with lock:
                proxy.seen.append(seen)
                action = None
                for fault in proxy.faults:
                    action = fault(seen)
                    if action is not None:
                        break
            if action == "drop":
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if isinstance(action, int):
                payload = b'{"error": {"code": %d, "message": "injected by the test proxy"}}' % action
                self.send_response(action)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                return
            if callable(action):
                body = action(body)
            conn = http.client.HTTPConnection(host, int(port), timeout=60)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("content-length", "connection")}
            if body or self.command in ("PUT", "POST", "PATCH"):
                headers["Content-Length"] = str(len(body))
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            conn.close()
            self.send_response(resp.status)
            for k, v in resp.getheaders():
                if k.lower() not in ("content-length", "connection", "transfer-encoding", "server", "date"):
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = _handle

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    proxy.server = server
    threading.Thread(target=server.serve_forever, args=(0.05,), name="gcs-fault-proxy", daemon=True).start()
    return proxy


@pytest.fixture
def fault_proxy(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultProxy]:
    """A proxy in front of the emulator, with ``STORAGE_EMULATOR_HOST`` pointing at it for one test."""
    proxy = start_proxy(emulator.url)
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", proxy.url)
    try:
        yield proxy
    finally:
        assert proxy.server is not None
        proxy.server.shutdown()
        proxy.server.server_close()
