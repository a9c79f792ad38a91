"""``bat pack`` into ``bat shaman serve`` over both APIs, and ``bat shaman push``: real server, real files.

The server runs in a subprocess on 127.0.0.1 (``tests/shaman_server.py``);
``bat`` runs in-process through its CLI.  Checkouts are checked on disk (every
path a link to a verified blob with the source's bytes) and, for the packs of
real scenes, by Blender itself: it opens the blend file in the checkout and
must find every dependency there, libraries included.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from .conftest import BLENDFILES
from .packinfo import check_info
from .shaman_server import Server, all_blobs, sha, start_server, temp_files

DEMO = Path(__file__).resolve().parent.parent / "examples" / "demo"
LIBRARIES = BLENDFILES / "v50" / "libraries"
SECRET = "client-test-secret"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    base = tmp_path_factory.mktemp("shaman-client")
    srv = start_server(base / "store", base / "checkouts", "--jwt-secret", SECRET)
    yield srv
    srv.stop()


@pytest.fixture(autouse=True)
def _no_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHAMAN_JWT_TOKEN", raising=False)
    monkeypatch.delenv("FLAMENCO_SHAMAN_TOKEN", raising=False)


def v2(server: Server, checkout: str) -> str:
    return f"shaman+http://127.0.0.1:{server.port}/#{checkout}"


def v3(server: Server, checkout: str) -> str:
    return f"flamenco+http://127.0.0.1:{server.port}/{checkout}"


def pack_json(run_bat, *args: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    res = run_bat("pack", "--json", *args)
    assert res.exit_code == 0, res.stderr
    assert "Traceback" not in res.stderr
    return json.loads(res.stdout)  # type: ignore[no-any-return]


def check_checkout(server: Server, report: dict[str, Any], rewritten: set[str] | None = None) -> Path:
    """Every packed file is a link in the checkout to a verified blob; unrewritten ones hold the source's bytes.

    ``rewritten``: the files rewritten by the pack (default: those this report says it rewrote).
    """
    if rewritten is None:
        rewritten = {f["relpath"] for f in report["files"] if f["action"] == "rewritten"}
    root = server.checkouts / report["target_info"]["checkout_path"]
    stored = (server.storage / "stored").resolve()
    packed = [f for f in report["files"] if f["action"] != "excluded"]
    assert packed
    for f in packed:
        link = root / f["relpath"]
        assert link.is_symlink(), link
        blob = link.resolve()
        assert blob.is_relative_to(stored), blob
        data = blob.read_bytes()
        assert sha(data) == blob.parent.parent.name + blob.parent.name and len(data) == int(blob.stem)
        assert len(data) == f["size"]
        if f.get("own"):
            check_info(data, report["output"].removeprefix(report["target_info"]["checkout_path"] + "/"))
        elif f["relpath"] not in rewritten:
            assert data == Path(f["source"]).read_bytes(), f["relpath"]
        assert f["destination"] == f"{report['target_info']['checkout_path']}/{f['relpath']}"
    links = [p for p in root.rglob("*") if p.is_symlink()]
    assert len(links) == len(packed)  # each file once
    assert temp_files(server.storage) == []
    return root


# --- round trips, checked by Blender -----------------------------------------------------------------

BLENDER_CHECK = r"""
import json, os, sys
import bpy
cases = json.load(open(sys.argv[1]))
out = {}
for blend in cases:
    bpy.ops.wm.open_mainfile(filepath=blend, load_ui=False)
    out[blend] = {"filepath": bpy.data.filepath,
                  "paths": bpy.utils.blend_paths(absolute=True, packed=False, local=False)}
json.dump(out, open(sys.argv[2], "w"))
"""


def blender_paths(blends: list[Path], work: Path) -> dict[str, Any]:
    """What Blender reports for each blend file (opened in one Blender process)."""
    import subprocess
    import sys

    if importlib.util.find_spec("bpy") is None:
        pytest.skip("bpy (Blender as a Python module) is not importable in this Python")
    listing, report = work / "blends.json", work / "blender.json"
    listing.write_text(json.dumps([str(b) for b in blends]))
    proc = subprocess.run([sys.executable, "-c", BLENDER_CHECK, str(listing), str(report)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(report.read_text())  # type: ignore[no-any-return]


def _inside(path: str, root: Path) -> bool:
    """Inside the checkout as Blender sees it: by path, not following the links into the store."""
    return os.path.normpath(path).startswith(os.path.normpath(root) + os.sep)


def test_v2_and_v3_packs_open_in_blender_with_everything_in_the_checkout(server: Server, run_bat, tmp_path: Path
                                                                         ) -> None:  # type: ignore[no-untyped-def]
    """The demo shot over v2; the libraries shot (libraries two deep, files outside the project,
    rewritten blend files) over v3."""
    shot = LIBRARIES / "shots" / "shot.blend"
    demo = pack_json(run_bat, str(DEMO / "shot.blend"), v2(server, "demo_v2"))
    libs = pack_json(run_bat, str(shot), v3(server, "jobs/libraries v3"))
    assert demo["target_info"]["checkout_path"] == "v2/demo_v2"
    assert demo["output"] == "v2/demo_v2/shot.blend" and demo["summary"]["copied"] == 8  # 7 and pack-info.txt
    assert libs["target_info"]["checkout_path"] == "jobs/libraries v3"
    assert libs["summary"]["rewritten"] >= 1 and any("_outside_project/" in f["relpath"] for f in libs["files"])
    roots = {"demo": check_checkout(server, demo), "libs": check_checkout(server, libs)}
    packed = {"demo": roots["demo"] / "shot.blend", "libs": roots["libs"] / libs["output"].split("/", 2)[2]}
    assert packed["libs"] == server.checkouts / libs["output"]
    sources = {"demo": DEMO / "shot.blend", "libs": shot}
    seen = blender_paths([*packed.values(), *sources.values()], tmp_path)
    for name, blend in packed.items():
        got = seen[str(blend)]
        assert got["filepath"] == str(blend)  # Blender keeps the checkout's path, not the blob's
        source = seen[str(sources[name])]["paths"]
        assert len(got["paths"]) == len(source) > 3
        libraries = [p for p in got["paths"] if p.endswith(".blend")]
        assert libraries, name
        for path in got["paths"]:
            assert os.path.exists(path) and _inside(path, roots[name]), (name, path)


def test_repack_uploads_nothing_and_hashes_nothing(server: Server, run_bat, tmp_path: Path
                                                   ) -> None:  # type: ignore[no-untyped-def]
    project = tmp_path / "demo"
    shutil.copytree(DEMO, project)
    blend = str(project / "shot.blend")
    first = pack_json(run_bat, blend, v2(server, "repack_1"))
    assert first["checksums"]["hashed_files"] == 7
    blobs = all_blobs(server.storage)
    for target in (v2(server, "repack_2"), v3(server, "repack/3")):
        again = pack_json(run_bat, blend, target)
        assert again["summary"]["bytes"] == 0 and again["summary"]["skipped"] == 8
        assert again["checksums"] == {"hashed_files": 0, "hashed_bytes": 0, "cached": 7}
        assert all_blobs(server.storage) == blobs
        check_checkout(server, again)

    # One texture changed: only that file travels.
    texture = project / "textures" / "floor_rough.png"
    texture.write_bytes(texture.read_bytes() + b"changed")
    changed = pack_json(run_bat, blend, v3(server, "repack/4"))
    assert [f["relpath"] for f in changed["files"] if f["action"] == "copied"] == ["textures/floor_rough.png"]
    assert changed["summary"]["bytes"] == texture.stat().st_size
    assert changed["checksums"]["hashed_files"] == 1
    assert len(all_blobs(server.storage)) == len(blobs) + 1
    check_checkout(server, changed)


def test_rewritten_blend_files_repack_to_the_same_blobs(tmp_path: Path, run_bat) -> None:  # type: ignore[no-untyped-def]
    """Rewritten copies are made afresh each pack (and hashed: they are not source files),
    but come out byte-identical, so nothing is uploaded."""
    server = start_server(tmp_path / "store", tmp_path / "co", "--jwt-secret", SECRET)
    try:
        shot = str(LIBRARIES / "shots" / "shot.blend")
        first = pack_json(run_bat, shot, v2(server, "rewrite_1"))
        assert first["summary"]["rewritten"] == 1
        blobs = all_blobs(server.storage)
        again = pack_json(run_bat, shot, v3(server, "rewrite/2"))
        assert again["summary"]["bytes"] == 0 and again["summary"]["skipped"] == len(first["files"])
        assert again["checksums"]["hashed_files"] == 1  # the rewritten copy; no source file
        assert all_blobs(server.storage) == blobs
        check_checkout(server, again, rewritten={"shot.blend"})
    finally:
        server.stop()


@pytest.mark.parametrize("first", ["v2", "v3"])
def test_one_api_then_the_other_uploads_nothing(first: str, tmp_path: Path, run_bat) -> None:  # type: ignore[no-untyped-def]
    srv = start_server(tmp_path / "store", tmp_path / "co", "--jwt-secret", SECRET)
    try:
        make = {"v2": v2, "v3": v3}
        second = "v3" if first == "v2" else "v2"
        one = pack_json(run_bat, str(DEMO / "shot.blend"), make[first](srv, "cross_a"))
        assert one["summary"]["copied"] == 8
        blobs = all_blobs(srv.storage)
        two = pack_json(run_bat, str(DEMO / "shot.blend"), make[second](srv, "cross_b"))
        assert two["summary"]["bytes"] == 0 and two["target_info"]["shaman_api"] == second
        assert all_blobs(srv.storage) == blobs
        check_checkout(srv, two)
    finally:
        srv.stop()


def test_v3_checkout_path_taken_gets_the_servers_suffix(server: Server, run_bat) -> None:  # type: ignore[no-untyped-def]
    blend = str(DEMO / "shot.blend")
    pack_json(run_bat, blend, v3(server, "jobs/taken"))
    res = run_bat("pack", blend, v3(server, "jobs/taken"))
    assert res.exit_code == 0
    line = next(ln for ln in res.stderr.splitlines() if ln.startswith("checkout path: "))
    used = line.removeprefix("checkout path: ")
    assert used.startswith("jobs/taken-") and len(used) == len("jobs/taken-") + 4
    assert f"packed {used}/shot.blend:" in res.stderr
    assert "requested checkout path: jobs/taken" in res.stderr
    again = pack_json(run_bat, blend, v3(server, "jobs/taken"))
    assert again["target_info"]["requested_checkout_path"] == "jobs/taken"
    assert again["target_info"]["checkout_path"] not in ("jobs/taken", used)
    assert again["output"] == again["target_info"]["checkout_path"] + "/shot.blend"
    check_checkout(server, again)


def test_v2_existing_checkout_id_is_one_line(server: Server, run_bat) -> None:  # type: ignore[no-untyped-def]
    """Another scene under a checkout ID that is taken: one line saying what to do.  The same scene
    again is done (the server has exactly that checkout: a re-run after a lost answer)."""
    blend = str(DEMO / "shot.blend")
    pack_json(run_bat, blend, v2(server, "taken_v2"))
    before = sorted(p.name for p in (server.checkouts / "v2" / "taken_v2").rglob("*"))
    res = run_bat("pack", "--progress", "none", str(LIBRARIES / "shots" / "shot.blend"), v2(server, "taken_v2"))
    assert res.exit_code == 1 and "Traceback" not in res.stderr
    assert res.stderr.splitlines()[-1] == (
        f"bat: error: http://127.0.0.1:{server.port}/: checkout 'taken_v2' already exists on the server with "
        f"other files; choose another ID, or remove v2/taken_v2 from the server's checkouts directory if an "
        f"interrupted pack left it there")
    assert sorted(p.name for p in (server.checkouts / "v2" / "taken_v2").rglob("*")) == before
    again = pack_json(run_bat, blend, v2(server, "taken_v2"))
    assert again["target_info"]["checkout_path"] == "v2/taken_v2"
    assert sorted(p.name for p in (server.checkouts / "v2" / "taken_v2").rglob("*")) == before


def test_target_scheme_option_and_no_checkout(server: Server, run_bat) -> None:  # type: ignore[no-untyped-def]
    """--target-scheme takes a plain http:// URL; without a checkout ID the files are uploaded, no checkout made."""
    blend = str(DEMO / "shot.blend")
    report = pack_json(run_bat, "--target-scheme", "shaman", blend, f"http://127.0.0.1:{server.port}/#by_name")
    assert report["target_info"]["checkout_path"] == "me/by_name"
    report = pack_json(run_bat, "--target-scheme", "flamenco", blend, f"http://127.0.0.1:{server.port}/by/name")
    assert report["target_info"]["checkout_path"] == "by/name"
    before = sorted(server.checkouts.iterdir())
    res = run_bat("pack", blend, f"shaman+http://127.0.0.1:{server.port}/")
    assert res.exit_code == 0 and "no checkout ID given" in res.stderr
    assert sorted(server.checkouts.iterdir()) == before


def test_noop_pack_makes_no_request(tmp_path: Path, run_bat) -> None:  # type: ignore[no-untyped-def]
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    res = run_bat("pack", "-n", str(DEMO / "shot.blend"), f"shaman+http://127.0.0.1:{port}/#x")
    assert res.exit_code == 0 and "would pack 7 files" in res.stderr


def test_tokens(tmp_path: Path, run_bat, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """SHAMAN_JWT_TOKEN is used as it is (here: with get-token off); FLAMENCO_SHAMAN_TOKEN for --v3-token."""
    srv = start_server(tmp_path / "store", tmp_path / "co", "--jwt-secret", SECRET, "--no-get-token",
                       "--v3-token", "v3-secret")
    try:
        blend = str(DEMO / "shot.blend")
        res = run_bat("pack", blend, v2(srv, "tok"))
        assert res.exit_code == 1
        assert res.stderr.splitlines()[-1].startswith(f"bat: error: http://127.0.0.1:{srv.port}/: cannot get a "
                                                      f"token (GET get-token: 403 get-token is disabled")
        assert "SHAMAN_JWT_TOKEN" in res.stderr
        monkeypatch.setenv("SHAMAN_JWT_TOKEN", "not.a.token")
        res = run_bat("pack", blend, v2(srv, "tok"))
        assert res.exit_code == 1 and "the server refuses our token (401 JWT token authorization required" \
            in res.stderr.splitlines()[-1]
        from bat_plugins.shaman.server.auth import make_token
        monkeypatch.setenv("SHAMAN_JWT_TOKEN", make_token(SECRET.encode(), "tester"))
        assert pack_json(run_bat, blend, v2(srv, "tok"))["target_info"]["checkout_path"] == "ok/tok"

        res = run_bat("pack", blend, v3(srv, "tok3"))
        assert res.exit_code == 1 and "FLAMENCO_SHAMAN_TOKEN" in res.stderr
        assert "the server refuses our token (401 missing or wrong bearer token)" in res.stderr
        monkeypatch.setenv("FLAMENCO_SHAMAN_TOKEN", "v3-secret")
        done = pack_json(run_bat, blend, v3(srv, "tok3"))
        assert done["target_info"]["checkout_path"] == "tok3" and done["summary"]["bytes"] == 0
    finally:
        srv.stop()


# --- bat shaman push ----------------------------------------------------------------------------------


def make_tree(root: Path) -> dict[str, bytes]:
    files = {"a.txt": b"alpha\n", "sub/deeper/b.bin": os.urandom(3 << 20), "sub/š name.txt": "héllo".encode(),
             "empty": b"", "same-as-a.txt": b"alpha\n"}
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    os.symlink("a.txt", root / "link-to-a")
    os.symlink("/etc/hostname", root / "outside")
    os.symlink("sub", root / "dirlink")
    os.symlink("nowhere", root / "dangling")
    return {**files, "link-to-a": files["a.txt"]}


@pytest.mark.parametrize("api", ["v2", "v3"])
def test_push_a_directory(api: str, server: Server, run_bat, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tree = tmp_path / "tree"
    expected = make_tree(tree)
    url = v2(server, f"push_{api}") if api == "v2" else v3(server, f"pushed/{api}")
    res = run_bat("shaman", "push", "--json", str(tree), url)
    assert res.exit_code == 0, res.stderr
    report = json.loads(res.stdout)
    assert report["files"] == len(expected) and report["rounds"] == 1
    assert "outside" in res.stderr and "a symbolic link to a directory" in res.stderr and "nowhere" in res.stderr
    root = server.checkouts / report["target_info"]["checkout_path"]
    got = {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    assert got == expected
    # Again, with another checkout given on the command line: nothing uploaded.
    again = run_bat("shaman", "push", "--json", str(tree), url, "--checkout", f"again_{api}")
    assert again.exit_code == 0, again.stderr
    report = json.loads(again.stdout)
    assert report["uploaded"] == 0 and report["already_there"] == len(expected)
    assert report["checksums"]["hashed_files"] == 0


def test_push_refuses_special_files_and_other_urls(server: Server, run_bat, tmp_path: Path
                                                   ) -> None:  # type: ignore[no-untyped-def]
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "ok.txt").write_text("ok")
    os.mkfifo(tree / "pipe")
    res = run_bat("shaman", "push", str(tree), v2(server, "fifo"))
    assert res.exit_code == 1
    assert res.stderr.strip() == f"bat: error: {tree}/pipe: a fifo; bat shaman push uploads regular files only"
    assert not (server.checkouts / "fo" / "fifo").exists()
    res = run_bat("shaman", "push", str(tmp_path), f"http://127.0.0.1:{server.port}/")
    assert res.exit_code == 1 and "not a Shaman URL" in res.stderr
    res = run_bat("shaman", "push", str(tmp_path), v2(server, "x"), "--checkout", "a/b")
    assert res.exit_code == 1 and "may only hold letters, digits and _" in res.stderr


def test_store_holds_only_verified_blobs(server: Server) -> None:
    """After everything above: every blob in the shared store has the checksum and size of its name."""
    for blob in all_blobs(server.storage):
        data = blob.read_bytes()
        assert hashlib.sha256(data).hexdigest() == blob.parent.parent.name + blob.parent.name
        assert len(data) == int(blob.stem)


def test_abort_mid_upload_leaves_nothing_half_stored(server: Server, tmp_path: Path) -> None:
    """Packer.abort() while a 64 MiB texture streams: the pack stops within a second, and the
    server keeps no blob and no temporary file of it."""
    import threading
    import time

    from bat_core.pack import Packer
    from bat_core.progress import PackCallback

    project = tmp_path / "demo"
    shutil.copytree(DEMO, project)
    big = project / "textures" / "brick.png"
    big.write_bytes(os.urandom(64 << 20))

    class AbortWhenStreaming(PackCallback):
        def __init__(self) -> None:
            self.packer: Packer | None = None
            self.at = 0.0

        def transfer_progress(self, total_bytes: int, transferred_bytes: int) -> None:
            if transferred_bytes > (2 << 20) and self.packer is not None and not self.at:
                self.at = time.monotonic()
                threading.Thread(target=self.packer.abort, args=("test abort",)).start()

    events = AbortWhenStreaming()
    with Packer(project / "shot.blend", v2(server, "aborted"), callback=events) as packer:
        events.packer = packer
        result = packer.execute()
    assert result.aborted and events.at and time.monotonic() - events.at < 3
    data = big.read_bytes()
    blob = server.storage / "stored" / sha(data)[:2] / sha(data)[2:] / f"{len(data)}.blob"
    assert not blob.exists()
    assert not (server.checkouts / "ed" / "aborted").exists()
    from .shaman_server import wait_until
    assert wait_until(lambda: temp_files(server.storage) == [])


def test_file_body_streams_in_chunks_and_notices_a_shrunk_file(tmp_path: Path) -> None:
    import threading

    from bat_core.targets import CHUNK_SIZE, Aborted, TransferIO
    from bat_plugins.shaman.client.connection import FileBody, FileChanged

    path = tmp_path / "f.bin"
    path.write_bytes(b"x" * (CHUNK_SIZE * 2 + 10))
    seen: list[int] = []
    abort = threading.Event()
    io = TransferIO(abort, seen.append)
    with FileBody(path, CHUNK_SIZE * 2 + 10, io) as body:
        assert len(body) == CHUNK_SIZE * 2 + 10
        sizes = [len(body.read(CHUNK_SIZE * 4)), len(body.read(-1)), len(body.read(100)), len(body.read(100))]
    assert sizes == [CHUNK_SIZE, CHUNK_SIZE, 10, 0] and seen == [CHUNK_SIZE, CHUNK_SIZE, 10]
    # Hashed at 20 bytes more than it now has: never sends past the end, says so.
    with FileBody(path, CHUNK_SIZE * 2 + 30, io) as body, pytest.raises(FileChanged):
        while body.read(CHUNK_SIZE):
            pass
    # A file hashed smaller than it now is: only the hashed size goes out.
    with FileBody(path, 5, io) as body:
        assert body.read(100) == b"xxxxx" and body.read(100) == b""
    abort.set()
    with FileBody(path, 5, io) as body, pytest.raises(Aborted):
        body.read(100)
