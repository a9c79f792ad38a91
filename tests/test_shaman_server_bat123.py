"""BAT 1.23's own Shaman client (``blender-asset-tracer==1.23``, in its own venv) packing into our server.

Its checkout must hold exactly what its own directory pack of the same scene
holds, byte for byte.  BAT 1.23 reads the Blender 4.2 fixtures used here
(with ``zstandard`` installed for the zstd ones); of the Blender 5.0
libraries scenario it packs only part (it does not follow every library of a
5.0 file), so that one is not used.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from .conftest import BLENDFILES
from .shaman_server import (
    Server,
    SlowUpload,
    all_blobs,
    bat123_venv,
    blob_path,
    requests,
    sha,
    start_server,
    temp_files,
    wait_until,
)

SCENES = {
    "libraries": ("v42/libraries", "shots/shot.blend"),
    "images": ("v42/images", "images.blend"),
    "images-zstd": ("v42/images", "images-zstd.blend"),
    "sound": ("v42/sound_sequencer", "edit.blend"),
}


@pytest.fixture(scope="module")
def bat123() -> Path:
    """The ``bat`` console script of BAT 1.23."""
    return bat123_venv() / "bin" / "bat"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    base = tmp_path_factory.mktemp("shaman-bat123")
    srv = start_server(base / "store", base / "checkouts", "--jwt-secret", "bat123-secret")
    yield srv
    srv.stop()


def run_bat123(bat: Path, scene: str, target: str, home: Path) -> subprocess.Popen[str]:
    """Start ``bat pack`` of BAT 1.23; HOME is private so its checksum cache is too."""
    project, blend = SCENES[scene]
    home.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "SHAMAN_JWT_TOKEN"}
    env["HOME"] = str(home)
    return subprocess.Popen([str(bat), "pack", "-p", str(BLENDFILES / project), str(BLENDFILES / project / blend),
                             target], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(proc: subprocess.Popen[str], timeout: float = 120) -> str:
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out
    return out


@pytest.fixture(scope="module")
def reference(bat123: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, bytes]]:
    """What BAT 1.23 packs into a plain directory, per scene: path -> bytes."""
    base = tmp_path_factory.mktemp("bat123-dirpacks")
    procs = {scene: run_bat123(bat123, scene, str(base / scene), base / "home" / scene) for scene in SCENES}
    out = {}
    for scene, proc in procs.items():
        finish(proc)
        out[scene] = files_of(base / scene)
        assert out[scene], scene
    return out


def files_of(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (following the checkout's symlinks), by relative path."""
    found = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = Path(dirpath) / name
            found[path.relative_to(root).as_posix()] = path.read_bytes()
    return found


def assert_checkout(server: Server, checkout_id: str, expected: dict[str, bytes]) -> None:
    root = server.checkouts / checkout_id[-2:] / checkout_id
    got = files_of(root)
    assert sorted(got) == sorted(expected)
    for path, data in expected.items():
        assert got[path] == data, path
        link = root / path
        assert link.is_symlink() and not os.path.isabs(os.readlink(link))


def assert_store_clean(server: Server) -> None:
    for blob in all_blobs(server.storage):
        data = blob.read_bytes()
        assert len(data) == int(blob.name[:-len(".blob")]) and sha(data) == blob.parent.parent.name + blob.parent.name
    assert temp_files(server.storage) == []
    assert not list(server.checkouts.rglob(".bat-creating-*"))


def test_bat123_packs_into_our_server(bat123: Path, server: Server, reference: dict[str, dict[str, bytes]],
                                      tmp_path: Path) -> None:
    """The libraries scene (linked libraries two levels deep, a cycle, zstd): a complete checkout."""
    out = finish(run_bat123(bat123, "libraries", f"shaman+http://127.0.0.1:{server.port}/#job1", tmp_path))
    assert "Giving up" not in out
    assert_checkout(server, "job1", reference["libraries"])
    assert len(reference["libraries"]) >= 10
    assert_store_clean(server)
    # A second pack of the same scene uploads nothing new and makes a second checkout.
    blobs = all_blobs(server.storage)
    mtimes = [b.stat().st_mtime_ns for b in blobs]
    finish(run_bat123(bat123, "libraries", f"shaman+http://127.0.0.1:{server.port}/#job1_again", tmp_path))
    assert_checkout(server, "job1_again", reference["libraries"])
    assert all_blobs(server.storage) == blobs
    assert [b.stat().st_mtime_ns for b in blobs] != mtimes  # touched, not rewritten
    assert [b.stat().st_ino for b in blobs] == [b.stat().st_ino for b in all_blobs(server.storage)]


def test_bat123_refused_checkout_id_fails_its_pack(bat123: Path, server: Server, reference: dict[str, dict[str, bytes]],
                                                   tmp_path: Path) -> None:
    """An existing checkout ID: BAT reports the 409, and the existing checkout is unchanged."""
    finish(run_bat123(bat123, "sound", f"shaman+http://127.0.0.1:{server.port}/#taken_id", tmp_path))
    before = files_of(server.checkouts / "id" / "taken_id")
    proc = run_bat123(bat123, "images", f"shaman+http://127.0.0.1:{server.port}/#taken_id", tmp_path)
    out, _ = proc.communicate(timeout=120)
    assert "checkout 'taken_id' already exists" in out
    assert files_of(server.checkouts / "id" / "taken_id") == before == reference["sound"]


def test_eight_bat123_clients_at_once(bat123: Path, tmp_path: Path, reference: dict[str, dict[str, bytes]]) -> None:
    """Eight BAT 1.23 clients, overlapping scenes, one fresh store: every checkout complete, the store clean."""
    srv = start_server(tmp_path / "store", tmp_path / "co", "--jwt-secret", "eight")
    try:
        jobs = {f"job_{i}": list(SCENES)[i % len(SCENES)] for i in range(8)}
        started = time.monotonic()
        procs = {job: run_bat123(bat123, scene, f"shaman+http://127.0.0.1:{srv.port}/#{job}", tmp_path / job)
                 for job, scene in jobs.items()}
        for proc in procs.values():
            finish(proc, timeout=max(10.0, 180 - (time.monotonic() - started)))
        for job, scene in jobs.items():
            assert_checkout(srv, job, reference[scene])
        assert_store_clean(srv)
        distinct = {(sha(d), len(d)) for files in reference.values() for d in files.values()}
        assert len(all_blobs(srv.storage)) == len(distinct)
    finally:
        srv.stop()


def test_bat123_uploads_beside_a_stalled_upload_of_the_same_file(bat123: Path, server: Server,
                                                                  tmp_path: Path) -> None:
    """A 2 MiB texture is being uploaded (stalled) by someone else when BAT 1.23 packs.

    BAT uploads it too, in parallel (it is its last file, so it sends no defer
    header); its upload stores the blob, the stalled one is stopped with 208,
    and BAT's checkout is complete.
    """
    scene = tmp_path / "scene"
    shutil.copytree(BLENDFILES / "v42" / "images", scene)
    big = os.urandom(2 << 20)
    (scene / "textures" / "single.png").write_bytes(big)
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "SHAMAN_JWT_TOKEN"}
    env["HOME"] = str(home)

    def pack(target: str) -> str:
        done = subprocess.run([str(bat123), "pack", "-p", str(scene), str(scene / "images.blend"), target],
                              env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout + done.stderr

    pack(str(tmp_path / "dirpack"))
    token = requests.get(server.url + "get-token", timeout=10).text
    stalled = SlowUpload(server.port, f"/files/{sha(big)}/{len(big)}", big, {"Authorization": f"Bearer {token}"})
    stalled.send(300_000)
    assert wait_until(lambda: len(temp_files(server.storage)) == 1)
    pack(f"shaman+http://127.0.0.1:{server.port}/#stalled_job")
    assert_checkout(server, "stalled_job", files_of(tmp_path / "dirpack"))
    assert blob_path(server.storage, big).read_bytes() == big
    assert stalled.status() == 208
    assert_store_clean(server)
