"""Packs into a real S3 server (SeaweedFS), through ``bat pack`` and the library API.

Every target form is used, with credentials from a credentials file (under
the endpoint's profile, or a named profile) and from the environment.  Each
pack is downloaded whole and must be the directory pack of the same blend
file, byte for byte; then Blender opens the downloaded blend files and must
find every dependency inside the download.  Re-packs must write nothing,
a changed texture only itself; bad credentials, buckets and endpoints give
one line; an abort leaves no multipart upload open.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("boto3", reason="boto3 is not installed (the s3 extra)")

from bat_core.cli import main as bat_main
from bat_core.pack import Packer, PackResult, pack
from bat_core.progress import PackCallback

from .conftest import BLENDFILES, fixture
from .packcheck import assert_same_files
from .packinfo import INFO, MANIFEST_DIR, check_info
from .s3_faults import fault_proxy, first_n
from .s3_server import ACCESS_KEY, SECRET_KEY, AwsEnv, S3Server
from .test_pack_blender import NO_BPY, run_blender

BUCKET = "bat-pack"
MANIFEST = ".bat-manifest.json"
REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "examples" / "demo"
EXTRA = Path(__file__).resolve().parent / "data" / "caches_extra"


@dataclass
class Case:
    id: str
    blend: Path
    project: Path
    #: cli-profile, api-env, bat1x-https, target-scheme-profile, api-https-compress
    form: str
    compress: bool = False
    # Filled in when packed:
    prefix: str = ""
    target: str = ""
    downloaded: Path = Path()
    reference: Path = Path()  # the same pack made into a directory
    output: str = ""
    #: Relative key -> the sha256 in the object's metadata.
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def packed_blend(self) -> Path:
        return self.downloaded / self.blend.relative_to(self.project)


def _cases() -> list[Case]:
    libraries = fixture("v50", "libraries/shots/shot.blend")
    images = fixture("v50", "images/images.blend")
    sound = fixture("v42", "sound_sequencer/edit.blend")
    return [
        Case("libraries@cli-profile", libraries.blend, libraries.root, "cli-profile"),
        Case("images@api-env", images.blend, images.blend.parent, "api-env"),
        Case("demo@bat1x-https", DEMO / "shot.blend", DEMO, "bat1x-https"),
        Case("sound@target-scheme-profile", sound.blend, sound.root, "target-scheme-profile"),
        Case("caches@api-https-compress", EXTRA / "main.blend", EXTRA, "api-https-compress", compress=True),
    ]


CASES = _cases()


def cli(*args: str) -> tuple[int, str, str]:
    """``bat`` in-process; (exit status, stdout, stderr) — capsys is per test, so capture by hand."""
    import io
    from contextlib import redirect_stderr, redirect_stdout

    out, err = io.StringIO(), io.StringIO()
    code: Any = 0
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = bat_main(list(args))
        except SystemExit as exc:
            code = exc.code
    return (code if isinstance(code, int) else (0 if code is None else 1)), out.getvalue(), err.getvalue()


@contextlib.contextmanager
def aws(base: Path) -> Iterator[AwsEnv]:
    base.mkdir(parents=True)
    with pytest.MonkeyPatch.context() as mp:
        yield AwsEnv(mp, base)


def download(server: S3Server, prefix: str, into: Path) -> dict[str, str]:
    """Every object under ``prefix/`` into ``into``; relative key -> sha256 metadata."""
    client = server.client()
    meta = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix + "/"):
        for obj in page.get("Contents", ()):
            rel = obj["Key"][len(prefix) + 1:]
            path = into / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            answer = client.get_object(Bucket=BUCKET, Key=obj["Key"])
            path.write_bytes(answer["Body"].read())
            meta[rel] = answer["Metadata"].get("sha256", "")
    return meta


def state(server: S3Server, prefix: str) -> dict[str, tuple[str, Any]]:
    """Key -> (ETag, LastModified): what changes when an object is written."""
    out = {}
    for page in server.client().get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix + "/"):
        for obj in page.get("Contents", ()):
            out[obj["Key"]] = (obj["ETag"], obj["LastModified"])
    return out


def tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def local_pack(root: Path) -> dict[str, str]:
    """A directory pack's files without the directory target's own manifest (S3 keeps its own)."""
    return {rel: digest for rel, digest in tree(root).items() if not rel.startswith(MANIFEST_DIR)}


def _pack_case(case: Case, server: S3Server, base: Path) -> None:
    case.prefix = f"{case.id.replace('@', '-')}-{uuid.uuid4().hex[:6]}"
    opts = ["-c"] if case.compress else []
    with aws(base / case.prefix) as env:
        if case.form == "cli-profile":
            env.profile(server.host)
            case.target = f"s3+http://{server.host}/{BUCKET}/{case.prefix}"
            code, _, err = cli("pack", "--progress", "none", *opts, "-p", str(case.project), str(case.blend),
                               case.target)
            assert code == 0, err
        elif case.form == "api-env":
            env.environment(AWS_ENDPOINT_URL=server.endpoint_url)
            case.target = f"s3://{BUCKET}/{case.prefix}"
            result = pack(case.blend, case.target, project=case.project, compress=case.compress)
            case.output = result.output
        elif case.form in ("bat1x-https", "api-https-compress"):
            if server.https_host is None:
                pytest.skip("openssl is not installed: no HTTPS gateway for the s3:/ENDPOINT form")
            env.monkeypatch.setenv("AWS_CA_BUNDLE", str(server.ca_bundle))
            if case.form == "bat1x-https":
                env.profile(server.https_host)
                case.target = f"s3:/{server.https_host}/{BUCKET}/{case.prefix}"
                code, _, err = cli("pack", "--progress", "none", *opts, "-p", str(case.project), str(case.blend),
                                   case.target)
                assert code == 0, err
            else:
                env.environment()
                case.target = f"s3+https://{server.https_host}/{BUCKET}/{case.prefix}"
                pack(case.blend, case.target, project=case.project, compress=case.compress)
        elif case.form == "target-scheme-profile":
            env.profile("studio")
            env.config(f"[profile studio]\nendpoint_url = {server.endpoint_url}\nregion = eu-west-1\n")
            env.monkeypatch.setenv("AWS_PROFILE", "studio")
            case.target = f"{BUCKET}/{case.prefix}"
            code, _, err = cli("pack", "--progress", "none", "--target-scheme", "s3", *opts, "-p",
                               str(case.project), str(case.blend), case.target)
            assert code == 0, err
        else:
            raise AssertionError(case.form)
    case.downloaded = base / "downloaded" / case.prefix
    case.metadata = download(server, case.prefix, case.downloaded)
    case.reference = base / "reference" / case.prefix
    pack(case.blend, str(case.reference), project=case.project, compress=case.compress)


@pytest.fixture(scope="module")
def packs(s3_server: S3Server, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    s3_server.make_bucket(BUCKET)
    base = tmp_path_factory.mktemp("s3packs")
    done: dict[str, Case | str] = {}
    for case in CASES:
        try:
            _pack_case(case, s3_server, base)
            done[case.id] = case
        except pytest.skip.Exception as exc:
            done[case.id] = str(exc)
    reports: dict[str, Any] | str = NO_BPY
    packed = [c for c in done.values() if isinstance(c, Case)]
    if importlib.util.find_spec("bpy") is not None:
        reports = run_blender(sorted({c.blend for c in packed} | {c.packed_blend for c in packed}), base)
    return {"cases": done, "reports": reports}


def _case(packs: dict[str, Any], case_id: str) -> Case:
    case = packs["cases"][case_id]
    if isinstance(case, str):
        pytest.skip(case)
    return case  # type: ignore[no-any-return]


@pytest.mark.parametrize("case_id", [c.id for c in CASES])
def test_the_pack_is_the_directory_pack(case_id: str, packs: dict[str, Any]) -> None:
    """Same files at the same places with the same bytes as ``bat pack`` into a directory, plus the manifest."""
    case = _case(packs, case_id)
    downloaded = tree(case.downloaded)
    assert downloaded.pop(MANIFEST, None) is not None
    assert downloaded == local_pack(case.reference)
    check_info((case.downloaded / INFO).read_bytes(), case.blend.relative_to(case.project).as_posix())
    assert len(downloaded) > 1


@pytest.mark.parametrize("case_id", [c.id for c in CASES])
def test_every_object_carries_its_sha256(case_id: str, packs: dict[str, Any]) -> None:
    case = _case(packs, case_id)
    contents = tree(case.downloaded)
    metadata = dict(case.metadata)
    del contents[MANIFEST], metadata[MANIFEST]
    assert metadata == contents


@pytest.mark.parametrize("case_id", [c.id for c in CASES])
def test_blender_finds_everything_inside_the_download(case_id: str, packs: dict[str, Any]) -> None:
    case = _case(packs, case_id)
    reports = packs["reports"]
    if isinstance(reports, str):
        pytest.skip(reports)
    assert_same_files(reports, case.blend, case.packed_blend, case.downloaded)


def test_api_result_shows_s3_places(packs: dict[str, Any], s3_server: S3Server) -> None:
    case = _case(packs, "images@api-env")
    assert case.output == f"s3://{BUCKET}/{case.prefix}/images.blend"


# --- re-packs --------------------------------------------------------------------------


@pytest.fixture
def scenario(copy_scenario: Any, s3_server: S3Server, aws_env: AwsEnv) -> tuple[Path, str]:
    """A copy of the libraries scenario, its S3 target, credentials in the endpoint's profile."""
    s3_server.make_bucket(BUCKET)
    aws_env.profile(s3_server.host)
    root = copy_scenario("v50", "libraries")
    return root, f"s3+http://{s3_server.host}/{BUCKET}/repack-{uuid.uuid4().hex[:8]}"


def _pack_cli(root: Path, target: str, *more: str) -> tuple[int, str, str]:
    return cli("pack", "--progress", "none", *more, "-p", str(root), str(root / "shots" / "shot.blend"), target)


def test_repack_writes_no_object(scenario: tuple[Path, str], s3_server: S3Server) -> None:
    root, target = scenario
    code, _, err = _pack_cli(root, target)
    assert code == 0, err
    prefix = target.split(f"/{BUCKET}/", 1)[1]
    before = state(s3_server, prefix)
    time.sleep(1.1)  # LastModified has a resolution of a second
    code, out, err = _pack_cli(root, target, "--json")
    assert code == 0, err
    assert state(s3_server, prefix) == before
    report = json.loads(out)
    actions = {f["action"] for f in report["files"]}
    assert actions == {"skipped"}, actions
    assert report["target_info"]["requests"] <= 3


def test_changed_texture_is_the_only_object_written(scenario: tuple[Path, str], s3_server: S3Server) -> None:
    root, target = scenario
    assert _pack_cli(root, target)[0] == 0
    prefix = target.split(f"/{BUCKET}/", 1)[1]
    before = state(s3_server, prefix)
    texture = root / "libs" / "textures" / "char.png"
    texture.write_bytes(texture.read_bytes() + b"\0changed")
    time.sleep(1.1)
    code, _, err = _pack_cli(root, target)
    assert code == 0, err
    after = state(s3_server, prefix)
    written = {k for k in after if after[k] != before.get(k)}
    assert written == {f"{prefix}/libs/textures/char.png", f"{prefix}/{MANIFEST}"}
    assert set(after) == set(before)


@pytest.mark.parametrize("grow", [8, -8])
def test_texture_changed_within_the_same_time_is_written_again(scenario: tuple[Path, str], s3_server: S3Server,
                                                               grow: int) -> None:
    """The checksum cache trusts size, time and inode together: other bytes of another size are hashed."""
    root, target = scenario
    assert _pack_cli(root, target)[0] == 0
    prefix = target.split(f"/{BUCKET}/", 1)[1]
    texture = root / "libs" / "textures" / "char.png"
    st = texture.stat()
    data = texture.read_bytes()
    changed = data + b"\0" * grow if grow > 0 else data[:grow]
    with open(texture, "r+b") as fh:  # the same inode
        fh.write(changed)
        fh.truncate(len(changed))
    os.utime(texture, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert texture.stat().st_ino == st.st_ino
    code, _, err = _pack_cli(root, target)
    assert code == 0, err
    got = s3_server.client().get_object(Bucket=BUCKET, Key=f"{prefix}/libs/textures/char.png")
    assert got["Body"].read() == changed
    assert got["Metadata"]["sha256"] == hashlib.sha256(changed).hexdigest()  # hashed again, not the cached one


# --- errors ----------------------------------------------------------------------------


def _one_line(code: int, err: str, *secrets: str) -> str:
    assert code == 1
    lines = [line for line in err.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("bat: error: ")]
    assert len(errors) == 1, err
    assert "Traceback" not in err
    for secret in secrets:
        assert secret not in err
    return errors[0]


def test_wrong_secret(s3_server: S3Server, aws_env: AwsEnv) -> None:
    aws_env.profile(s3_server.host, ACCESS_KEY, "wrong-secret-wrong-secret")
    blend = BLENDFILES / "v50" / "images" / "images.blend"
    code, _, err = cli("pack", "--progress", "none", str(blend), f"s3+http://{s3_server.host}/{BUCKET}/x")
    line = _one_line(code, err, "wrong-secret-wrong-secret", ACCESS_KEY, SECRET_KEY)
    assert "secret key is wrong" in line and f"[{s3_server.host}] profile" in line


def test_unknown_bucket(s3_server: S3Server, aws_env: AwsEnv) -> None:
    aws_env.environment()
    blend = BLENDFILES / "v50" / "images" / "images.blend"
    code, _, err = cli("pack", "--progress", "none", str(blend), f"s3+http://{s3_server.host}/no-such-bucket/x")
    assert "no such bucket" in _one_line(code, err, ACCESS_KEY, SECRET_KEY)


def test_unreachable_endpoint(aws_env: AwsEnv) -> None:
    aws_env.environment()
    blend = BLENDFILES / "v50" / "images" / "images.blend"
    code, _, err = cli("pack", "--progress", "none", str(blend), "s3+http://127.0.0.1:9/bkt/x")
    assert "cannot reach http://127.0.0.1:9" in _one_line(code, err, ACCESS_KEY, SECRET_KEY)


# --- abort and faults ------------------------------------------------------------------


@dataclass
class AbortAfter(PackCallback):
    """Aborts the pack once this many bytes went up (the big file is then mid-upload)."""

    packer: Packer | None = None
    after: int = 0
    aborted_at: float = 0.0
    events: list[str] = field(default_factory=list)

    def transfer_progress(self, total_bytes: int, transferred_bytes: int) -> None:
        if self.packer is not None and transferred_bytes >= self.after and not self.aborted_at:
            self.aborted_at = time.monotonic()
            self.packer.abort("test abort")

    def pack_aborted(self, reason: str) -> None:
        self.events.append(reason)


def test_abort_mid_upload_leaves_no_multipart_upload(copy_scenario: Any, s3_server: S3Server,
                                                      aws_env: AwsEnv) -> None:
    s3_server.make_bucket(BUCKET)
    aws_env.environment()
    root = copy_scenario("v50", "images")
    (root / "textures" / "single.png").write_bytes(os.urandom(40 * 1024 * 1024))
    prefix = f"abort-{uuid.uuid4().hex[:8]}"
    callback = AbortAfter(after=3 * 1024 * 1024)
    with Packer(root / "images.blend", f"s3+http://{s3_server.host}/{BUCKET}/{prefix}",
                callback=callback) as packer:
        callback.packer = packer
        packer.plan()
        result: PackResult = packer.execute()
        ended = time.monotonic()
    assert result.aborted and callback.events == ["test abort"]
    assert ended - callback.aborted_at < 2
    uploads = s3_server.client().list_multipart_uploads(Bucket=BUCKET, Prefix=prefix).get("Uploads", [])
    assert uploads == []
    assert f"{prefix}/textures/single.png" not in state(s3_server, prefix)
    assert f"{prefix}/{MANIFEST}" not in state(s3_server, prefix)


def test_slow_down_storm_is_ridden_out(copy_scenario: Any, s3_server: S3Server, aws_env: AwsEnv,
                                       monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """More 503s than one request's attempts: those files fail their round and go up in the next."""
    monkeypatch.setattr("bat_plugins.s3.retries.MAX_BACKOFF", 0.05)
    s3_server.make_bucket(BUCKET)
    aws_env.environment()
    root = copy_scenario("v50", "libraries")
    prefix = f"storm-{uuid.uuid4().hex[:8]}"
    with fault_proxy(s3_server.host, first_n(12, "503", lambda r: r.method == "PUT")) as proxy:
        result = pack(root / "shots" / "shot.blend", f"s3+http://{proxy.host}/{BUCKET}/{prefix}", project=root)
        assert proxy.count("503") == 12
    assert not result.error and not result.aborted
    got = tmp_path / "got"
    download(s3_server, prefix, got)
    reference = tmp_path / "reference"
    pack(root / "shots" / "shot.blend", str(reference), project=root)
    files = tree(got)
    del files[MANIFEST]
    assert files == local_pack(reference)


def test_pack_without_the_s3_extra_is_refused_clearly(tmp_path: Path) -> None:
    """Not the same process: boto3 is hidden from a fresh interpreter."""
    blend = BLENDFILES / "v50" / "images" / "images.blend"
    code = ("import sys; sys.modules['boto3'] = None\n"
            "from bat_core.cli import main\n"
            f"main(['pack', '--progress', 'none', {str(blend)!r}, 's3://bkt/job'])\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip() == ("bat: error: S3 targets need boto3, which is not installed (boto3): "
                                   "pip install 'bat[s3]'")
    assert not any(tmp_path.iterdir())  # no local directory called "s3:"
