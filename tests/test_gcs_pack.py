"""bat-gcs end to end: the installed plugin, ``bat pack ... gs://bucket/job`` against a real GCS emulator.

``examples/bat-gcs`` is pip-installed for the session into a directory of its
own (``gcs_emulator.gcs_site``) and found through its entry point by fresh
``bat`` processes that have it on ``PYTHONPATH``, as a user's would be.
Packs are downloaded again and Blender opens the downloaded blend files:
every dependency it reports must be inside the download.  A re-pack must
upload nothing (object generations unchanged).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from .conftest import fixture
from .gcs_emulator import BIN, Emulator, emulator, free_port, gcs_site
from .packcheck import assert_same_files
from .packinfo import INFO
from .test_pack_blender import DEMO, NO_BPY, run_blender

#: Session fixtures from gcs_emulator, used here by name.
FIXTURES = (emulator, gcs_site)

BUCKET = "bat-packs"
DEMO_FILES = sorted(p.relative_to(DEMO).as_posix() for p in DEMO.rglob("*") if p.is_file() and p.suffix != ".json")
LIBS = fixture("v50", "libraries/shots/shot.blend")


#: Where the session installed bat-gcs (set by the ``site`` fixture below).
SITE: list[Path] = []


@pytest.fixture(scope="module", autouse=True)
def site(gcs_site: Path) -> Path:
    SITE[:] = [gcs_site]
    return gcs_site


def bat(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The ``bat`` console script in its own process, with the pip-installed bat-gcs beside it."""
    path = os.pathsep.join([str(SITE[0]), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return subprocess.run([str(BIN / "bat"), *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": path, **(env or {})})


def pack_json(*args: str) -> dict[str, Any]:
    proc = bat("pack", "--progress", "none", "--json", *args)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def listing(emu: Emulator, prefix: str) -> dict[str, Any]:
    return {b.name: b for b in emu.client().list_blobs(BUCKET, prefix=prefix + "/")}


def download(emu: Emulator, prefix: str, into: Path) -> list[str]:
    """Every object under ``prefix/`` into ``into``; each one's content must match its bat-sha256."""
    names = []
    for name, blob in listing(emu, prefix).items():
        rel = name[len(prefix) + 1:]
        dest = into / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        blob.download_to_filename(str(dest))
        assert blob.metadata["bat-sha256"] == hashlib.sha256(dest.read_bytes()).hexdigest(), name
        names.append(rel)
    return sorted(names)


@pytest.fixture(scope="module")
def packs(emulator: Emulator, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    emulator.create_bucket(BUCKET)
    base = tmp_path_factory.mktemp("gcs-packs")
    demo = pack_json(str(DEMO / "shot.blend"), f"gs://{BUCKET}/job")
    libs = pack_json("--target-scheme", "gs", "--project", str(LIBS.root), str(LIBS.blend), f"{BUCKET}/libs")
    got = {"job": download(emulator, "job", base / "job"), "libs": download(emulator, "libs", base / "libs")}
    blends = {"job": (DEMO / "shot.blend", base / "job" / "shot.blend"),
              "libs": (LIBS.blend, base / "libs" / LIBS.blend.relative_to(LIBS.root))}
    reports: dict[str, Any] | str = NO_BPY
    if importlib.util.find_spec("bpy") is not None:
        reports = run_blender(sorted({p for pair in blends.values() for p in pair}), base)
    return {"json": {"job": demo, "libs": libs}, "files": got, "blends": blends, "reports": reports,
            "base": base}


def test_bat_plugins_lists_the_gs_scheme() -> None:
    proc = bat("plugins")
    assert proc.returncode == 0, proc.stderr
    after = proc.stdout[proc.stdout.index("bat-gcs"):]  # the plugin's entry, from its distribution on
    schemes = next(line for line in after.splitlines() if "schemes:" in line)
    assert "gs" in schemes.replace(",", " ").split()


def test_packs_land_complete_in_the_bucket(packs: dict[str, Any]) -> None:
    assert [f for f in packs["files"]["job"] if f != INFO] == DEMO_FILES and INFO in packs["files"]["job"]
    expected = [*LIBS.expected["existing_files"], *LIBS.expected["baked_files"]]
    missing = [rel for rel in expected if rel not in packs["files"]["libs"]]
    assert not missing
    demo = packs["json"]["job"]
    assert demo["output"] == f"gs://{BUCKET}/job/shot.blend"
    assert demo["summary"]["copied"] + demo["summary"]["rewritten"] == len(DEMO_FILES) + 1  # and pack-info.txt
    assert all(f["destination"].startswith(f"gs://{BUCKET}/job/") for f in demo["files"])
    libs = packs["json"]["libs"]
    assert libs["output"] == f"gs://{BUCKET}/libs/shots/shot.blend" and libs["summary"]["skipped"] == 0


@pytest.mark.parametrize("which", ["job", "libs"])
def test_blender_finds_everything_inside_the_download(packs: dict[str, Any], which: str) -> None:
    reports = packs["reports"]
    if isinstance(reports, str):
        pytest.skip(reports)
    source, packed = packs["blends"][which]
    assert len(reports[str(source)]) > 0
    assert_same_files(reports, source, packed, packs["base"] / which)


def test_repack_uploads_nothing(packs: dict[str, Any], emulator: Emulator) -> None:
    generations = {n: b.generation for n, b in listing(emulator, "job").items()}
    again = pack_json("--no-hash-cache", str(DEMO / "shot.blend"), f"gs://{BUCKET}/job")
    s = again["summary"]
    assert (s["copied"], s["rewritten"], s["skipped"]) == (0, 0, len(DEMO_FILES) + 1)
    assert {n: b.generation for n, b in listing(emulator, "job").items()} == generations
    libs = pack_json("--target-scheme", "gs", "--project", str(LIBS.root), str(LIBS.blend), f"gs://{BUCKET}/libs")
    assert libs["summary"]["copied"] == libs["summary"]["rewritten"] == 0


def test_a_changed_file_is_uploaded_again(emulator: Emulator, tmp_path: Path) -> None:
    import shutil

    demo = tmp_path / "demo"
    shutil.copytree(DEMO, demo)
    pack_json(str(demo / "shot.blend"), f"gs://{BUCKET}/changed")
    png = demo / "textures" / "brick.png"
    data = bytearray(png.read_bytes())
    data[-5] ^= 0xFF  # same size, other content: only the checksum can tell
    png.write_bytes(bytes(data))
    again = pack_json(str(demo / "shot.blend"), f"gs://{BUCKET}/changed")
    copied = [f["relpath"] for f in again["files"] if f["action"] == "copied"]
    assert copied == ["textures/brick.png"]
    assert again["summary"]["skipped"] == len(DEMO_FILES) - 1 + 1  # pack-info.txt unchanged
    blob = emulator.client().bucket(BUCKET).blob("changed/textures/brick.png")
    assert blob.download_as_bytes() == bytes(data)


def test_objects_uploaded_by_other_tools_are_compared_by_crc32c(emulator: Emulator) -> None:
    """Same size, no bat-sha256: the CRC32C GCS keeps decides; a different one is replaced."""
    bucket = emulator.client().bucket(BUCKET)
    for rel in DEMO_FILES:
        data = (DEMO / rel).read_bytes()
        if rel == "audio/ambience.wav":
            data = data[:-1] + bytes([data[-1] ^ 1])
        bucket.blob(f"foreign/{rel}").upload_from_string(data)
    result = pack_json(str(DEMO / "shot.blend"), f"gs://{BUCKET}/foreign")
    actions = {f["relpath"]: f["action"] for f in result["files"]}
    assert actions.pop("audio/ambience.wav") == "copied"
    assert actions.pop(INFO) == "copied"  # not among the foreign objects
    assert set(actions.values()) == {"skipped"}
    wav = bucket.get_blob("foreign/audio/ambience.wav")
    assert wav.download_as_bytes() == (DEMO / "audio" / "ambience.wav").read_bytes()
    assert wav.metadata["bat-sha256"] == hashlib.sha256(wav.download_as_bytes()).hexdigest()


@pytest.mark.parametrize(("target", "message"), [
    ("gs://no-such-bucket/job", "gs://no-such-bucket/job: no such bucket 'no-such-bucket'"),
    ("gs://Not_A_Bucket/job", "'Not_A_Bucket' is not a valid bucket name"),
    (f"gs://{BUCKET}/a/../b", "'.' and '..' are not allowed"),
    ("gs:///job", "no bucket given"),
])
def test_bad_targets_are_one_line_errors(emulator: Emulator, target: str, message: str) -> None:
    proc = bat("pack", "--progress", "none", str(DEMO / "shot.blend"), target)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("bat: error: ") and message in lines[-1], proc.stderr
    assert "Traceback" not in proc.stderr


def test_an_unreachable_server_is_a_one_line_error(emulator: Emulator) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    proc = bat("pack", "--progress", "none", str(DEMO / "shot.blend"), f"gs://{BUCKET}/job",
               env={"STORAGE_EMULATOR_HOST": dead})
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("bat: error: cannot reach Google Cloud Storage: gs://bat-packs/job: ")
    assert "Connection refused" in last and len(last) < 300, last
    assert "Traceback" not in proc.stderr

