"""Eight clients at once into one ``bat shaman serve``: five of ours (v2 and v3), three of BAT 1.23.

Every client packs its own copy of one project (the Blender 4.2 libraries
scene, which BAT 1.23 reads): a large texture the same in every copy, so the
clients race to upload it and defer to each other; one texture shared by half
of them; one unique to each.  Every checkout must hold exactly its project's
files, every blob must match its name, and no temporary file may be left.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

from .conftest import BLENDFILES
from .packinfo import INFO, check_info
from .shaman_server import all_blobs, bat123_venv, sha, start_server, temp_files

SCENE = BLENDFILES / "v42" / "libraries"
BLEND = "shots/shot.blend"


def project_copy(root: Path, n: int, shared: bytes, half: bytes) -> dict[str, bytes]:
    shutil.copytree(SCENE, root, ignore=shutil.ignore_patterns("*.json"))
    (root / "libs" / "textures" / "char.png").write_bytes(shared)
    if n % 2:
        (root / "shots" / "textures" / "shot.png").write_bytes(half)
    (root / "textures" / "set.png").write_bytes(random.Random(n).randbytes(300_000 + n))
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def checkout_files(root: Path) -> dict[str, bytes]:
    out = {}
    for p in root.rglob("*"):
        if p.is_file():
            assert p.is_symlink(), p
            out[p.relative_to(root).as_posix()] = p.read_bytes()
    return out


def test_eight_clients_at_once(tmp_path: Path) -> None:
    bat123 = bat123_venv() / "bin" / "bat"
    srv = start_server(tmp_path / "store", tmp_path / "co", "--jwt-secret", "eight-clients")
    rng = random.Random(8)
    shared, half = rng.randbytes(6 << 20), rng.randbytes(2 << 20)
    clients: list[tuple[str, str, str]] = [  # (who, api, checkout)
        ("bat", "v2", "ours_0"), ("bat", "v3", "ours/1"), ("bat123", "v2", "theirs_2"), ("bat", "v2", "ours_3"),
        ("bat123", "v2", "theirs_4"), ("bat", "v3", "ours/5"), ("bat123", "v2", "theirs_6"), ("bat", "v2", "ours_7"),
    ]
    expected: dict[str, dict[str, bytes]] = {}
    procs: dict[str, subprocess.Popen[str]] = {}
    try:
        for n, (who, api, checkout) in enumerate(clients):
            project = tmp_path / f"project{n}"
            expected[checkout] = project_copy(project, n, shared, half)
            url = (f"shaman+http://127.0.0.1:{srv.port}/#{checkout}" if api == "v2"
                   else f"flamenco+http://127.0.0.1:{srv.port}/{checkout}")
            env = {k: v for k, v in os.environ.items() if k not in ("SHAMAN_JWT_TOKEN", "FLAMENCO_SHAMAN_TOKEN")}
            env["HOME"] = str(tmp_path / f"home{n}")  # BAT 1.23's checksum cache
            env["BAT_CACHE_DIR"] = str(tmp_path / f"cache{n}")
            cmd = ([str(bat123), "pack"] if who == "bat123"
                   else [sys.executable, "-m", "bat_core", "pack", "--json", "--progress", "none"])
            procs[checkout] = subprocess.Popen([*cmd, "-p", str(project), str(project / BLEND), url], env=env,
                                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        started = time.monotonic()
        outputs = {}
        for checkout, proc in procs.items():
            out, err = proc.communicate(timeout=max(10.0, 240 - (time.monotonic() - started)))
            assert proc.returncode == 0, (checkout, out[-2000:], err[-3000:])
            assert "Giving up" not in out + err and "Traceback" not in err
            outputs[checkout] = out

        extra: set[str] = set()
        for who, api, checkout in clients:
            location = checkout if api == "v3" else f"{checkout[-2:]}/{checkout}"
            if who == "bat":
                report = json.loads(outputs[checkout])
                assert report["target_info"]["checkout_path"] == location
            got = checkout_files(srv.checkouts / location)
            # Both write BAT's note of the blend file to open, in the same three lines.
            info = got.pop(INFO)
            check_info(info, "shots/shot.blend")
            extra.add(sha(info))
            assert got == expected[checkout], checkout
        for blob in all_blobs(srv.storage):
            data = blob.read_bytes()
            assert sha(data) == blob.parent.parent.name + blob.parent.name and len(data) == int(blob.stem)
        distinct = {sha(d) for files in expected.values() for d in files.values()} | extra
        assert len(all_blobs(srv.storage)) == len(distinct)
        assert temp_files(srv.storage) == []
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
        srv.stop()
