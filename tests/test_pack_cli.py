"""``bat pack`` from the command line: options, reports, exit statuses, targets."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from bat_core.pack import OUTSIDE_PROJECT

from .conftest import BLENDFILES
from .packinfo import INFO, check_info

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "examples" / "demo" / "shot.blend"
IMAGES = BLENDFILES / "v50" / "images" / "images.blend"
SHOT = BLENDFILES / "v50" / "libraries" / "shots" / "shot.blend"


def _json(res) -> dict:  # type: ignore[no-untyped-def, type-arg]
    return json.loads(res.stdout)  # type: ignore[no-any-return]


def test_pack_demo(run_bat, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    res = run_bat("pack", str(DEMO), str(tmp_path / "out"))
    assert res.exit_code == 0, res.stderr
    assert (tmp_path / "out" / "shot.blend").is_file()
    assert (tmp_path / "out" / "lib" / "textures" / "wood.png").is_file()
    # The demo's 7 files and pack-info.txt, which names the blend file to open.
    assert "packed" in res.stderr and "8 files" in res.stderr
    check_info((tmp_path / "out" / INFO).read_bytes(), "shot.blend")


def test_noop_prints_plan_and_writes_nothing(run_bat, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    res = run_bat("pack", "-n", str(SHOT), str(tmp_path / "out"))
    assert res.exit_code == 0, res.stderr
    assert not (tmp_path / "out").exists()
    assert f"{SHOT} -> {tmp_path / 'out' / 'shot.blend'}\n" in res.stdout
    assert f"rewritten: {SHOT} (its paths change in the pack)" in res.stderr
    assert OUTSIDE_PROJECT in res.stdout
    assert "would pack 13 files" in res.stderr


def test_json_report_and_missing_exit_status(run_bat, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    res = run_bat("pack", "--json", str(IMAGES), str(tmp_path / "out"))
    assert res.exit_code == 3, res.stderr
    report = _json(res)
    assert report["output"] == str(tmp_path / "out" / "images.blend")
    actions = {Path(f["source"]).name: f["action"] for f in report["files"]}
    assert actions["single.png"] == "copied" and actions["images.blend"] == "copied"
    for f in report["files"]:
        assert set(f) >= {"source", "destination", "action", "size"}
        assert Path(f["destination"]).stat().st_size == f["size"]
    missing = {Path(m["path"]).name for m in report["missing"]}
    assert missing == {"missing.png", "abs.png", "C:\\textures\\win.png"}  # a Windows path: as stored
    assert all(m["referenced_by"] for m in report["missing"])
    assert report["summary"]["missing"] == 3 and report["summary"]["files"] == len(report["files"])
    assert "missing: " in res.stderr


def test_repack_copies_nothing_and_recopies_changed_files(run_bat, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "out"
    first = run_bat("pack", "--json", str(SHOT), str(out))
    assert first.exit_code == 0, first.stderr
    assert {f["action"] for f in _json(first)["files"]} == {"copied", "rewritten"}
    again = run_bat("pack", "--json", str(SHOT), str(out))
    assert {f["action"] for f in _json(again)["files"]} == {"skipped"}
    assert _json(again)["summary"]["files"] == 0
    # Same size, other content: someone changed the packed copy; it is theirs now.
    texture = out / "textures" / "shot.png"
    data = bytearray(texture.read_bytes())
    data[-1] ^= 0xFF
    texture.write_bytes(bytes(data))
    refused = run_bat("pack", str(SHOT), str(out))
    assert refused.exit_code == 1
    assert refused.stderr.strip().splitlines()[-1] == (
        f"bat: error: refusing to pack into {out}: {texture} exists and was not written by a pack into "
        "this target (or was changed since) (move them away, or choose another target)")
    assert texture.read_bytes() == bytes(data)
    # Moved away, it is packed again (and only it).
    texture.unlink()
    third = _json(run_bat("pack", "--json", str(SHOT), str(out)))
    changed = [f for f in third["files"] if f["action"] != "skipped"]
    assert [Path(f["source"]).name for f in changed] == ["shot.png"]
    assert texture.read_bytes() == (SHOT.parent / "textures" / "shot.png").read_bytes()


def test_zip_target(run_bat, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / "pack.zip"
    res = run_bat("pack", "--json", str(SHOT), str(target))
    assert res.exit_code == 0, res.stderr
    with zipfile.ZipFile(target) as zf:
        infos = {i.filename: i for i in zf.infolist()}
        assert zf.testzip() is None
    assert "shot.blend" in infos and "textures/shot.png" in infos
    assert all(not n.startswith("/") and ".." not in n.split("/") for n in infos)
    assert infos["textures/shot.png"].compress_type == zipfile.ZIP_STORED
    assert infos["shot.blend"].compress_type == zipfile.ZIP_DEFLATED  # plain blend file
    zstd_lib = next(n for n in infos if n.endswith("cycle_a.blend"))  # saved zstd-compressed
    assert infos[zstd_lib].compress_type == zipfile.ZIP_STORED
    assert _json(res)["output"] == str(target / "shot.blend")
    assert not list(tmp_path.glob(".*partial"))


def test_target_scheme_by_name(run_bat, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / "archive.bin"
    res = run_bat("pack", "--target-scheme", "zip", str(DEMO), str(target))
    assert res.exit_code == 0, res.stderr
    assert zipfile.is_zipfile(target)


def test_unknown_target_scheme_lists_installed(run_bat, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    res = run_bat("pack", "--target-scheme", "nope", str(DEMO), str(tmp_path / "out"))
    assert res.exit_code == 1
    assert res.stderr.startswith("bat: error: unknown target scheme 'nope'; installed: ")
    assert "directory" in res.stderr and "zip" in res.stderr
    assert not (tmp_path / "out").exists()


def test_target_file_that_is_not_a_directory_or_zip(run_bat, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    plain = tmp_path / "notes.txt"
    plain.write_text("keep me")
    res = run_bat("pack", str(DEMO), str(plain))
    assert res.exit_code == 1
    assert res.stderr.startswith("bat: error: ") and "not a directory" in res.stderr
    fake = tmp_path / "fake.zip"
    fake.write_text("not a zip")
    res = run_bat("pack", str(DEMO), str(fake))
    assert res.exit_code == 1 and "not a ZIP file" in res.stderr
    assert plain.read_text() == "keep me" and fake.read_text() == "not a zip"


def test_target_inside_project(run_bat, copy_scenario) -> None:  # type: ignore[no-untyped-def]
    """BAT 1.x packs into a target inside the project; so does bat, without packing it into itself."""
    root = copy_scenario("v50", "images")
    for target in (root / "packed", root / "textures" / "packed.zip"):
        for _ in range(2):
            res = run_bat("pack", str(root / "images.blend"), str(target))
            assert res.exit_code == 3, res.stderr  # packed; the scenario has missing files
        assert target.exists()
    assert not (root / "packed" / "packed").exists()
    with zipfile.ZipFile(root / "textures" / "packed.zip") as zf:
        assert not [n for n in zf.namelist() if "packed" in n]


def test_compress(run_bat, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    res = run_bat("pack", "--json", "-c", str(IMAGES), str(tmp_path / "out"))
    assert res.exit_code == 3
    main = next(f for f in _json(res)["files"] if f["source"] == str(IMAGES))
    assert main["action"] == "rewritten"
    assert (tmp_path / "out" / "images.blend").read_bytes()[:4] == b"\x28\xb5\x2f\xfd"


@pytest.mark.parametrize("mode", ["log", "bar"])
def test_progress_display(run_bat, tmp_path: Path, mode: str) -> None:  # type: ignore[no-untyped-def]
    res = run_bat("pack", "--progress", mode, str(SHOT), str(tmp_path / "out"))
    assert res.exit_code == 0, res.stderr
    if mode == "log":
        assert "tracing " in res.stderr and "packing 14 files" in res.stderr  # with pack-info.txt
        assert res.stderr.count(" -> ") == 14
    else:
        assert "packing" in res.stderr
    assert "packed " in res.stderr


def test_quiet_json_only_on_stdout(run_bat, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    res = run_bat("pack", "--json", "--progress", "none", str(SHOT), str(tmp_path / "out"))
    assert res.exit_code == 0
    assert _json(res)["summary"]["copied"] == 13  # 12 of the project's, pack-info.txt


def test_global_quiet(run_bat, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    res = run_bat("-q", "pack", str(SHOT), str(tmp_path / "out"))
    assert res.exit_code == 0
    assert res.stderr == "" and res.stdout == ""
    res = run_bat("-q", "pack", str(IMAGES), str(tmp_path / "out2"))
    assert res.exit_code == 3
    assert res.stderr.count("missing: ") == 3 and "packed" not in res.stderr


def test_zip_of_files_older_than_1980(run_bat, copy_scenario, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import os

    root = copy_scenario("v50", "images")
    os.utime(root / "textures" / "single.png", (0, 0))
    res = run_bat("pack", str(root / "images.blend"), str(tmp_path / "old.zip"))
    assert res.exit_code == 3, res.stderr
    with zipfile.ZipFile(tmp_path / "old.zip") as zf:
        assert zf.getinfo("textures/single.png").date_time[0] == 1980


# --- pack-info.txt: BAT 1.x's note of which blend file to open ------------------------------


def test_pack_info_names_the_blend_file_to_open(run_bat, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """In a directory and a ZIP, listed in the report; a no-op pack writes nothing."""
    res = run_bat("pack", "--json", "--progress", "none", str(SHOT), str(tmp_path / "out"))
    assert res.exit_code == 0, res.stderr
    check_info((tmp_path / "out" / INFO).read_bytes(), "shot.blend")
    entry = next(f for f in _json(res)["files"] if f["relpath"] == INFO)
    assert entry["action"] == "copied" and entry["size"] == (tmp_path / "out" / INFO).stat().st_size
    res = run_bat("pack", "--progress", "none", str(SHOT), str(tmp_path / "out.zip"))
    assert res.exit_code == 0, res.stderr
    with zipfile.ZipFile(tmp_path / "out.zip") as zf:
        check_info(zf.read(INFO), "shot.blend")
    res = run_bat("pack", "-n", "--json", str(SHOT), str(tmp_path / "noop"))
    assert res.exit_code == 0 and not (tmp_path / "noop").exists()
    assert not [f for f in _json(res)["files"] if f["relpath"] == INFO]


def test_pack_info_of_a_blend_file_in_a_sub_directory(run_bat, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The note gives the packed blend file's path inside the pack, as BAT 1.x does."""
    res = run_bat("pack", "--progress", "none", "--project", str(SHOT.parent.parent), str(SHOT), str(tmp_path / "out"))
    assert res.exit_code == 0, res.stderr
    check_info((tmp_path / "out" / INFO).read_bytes(), "shots/shot.blend")
    assert (tmp_path / "out" / "shots" / "shot.blend").is_file()


def test_a_repack_leaves_pack_info_alone(run_bat, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert run_bat("pack", "--progress", "none", str(DEMO), str(tmp_path / "out")).exit_code == 0
    before = (tmp_path / "out" / INFO).stat().st_mtime_ns
    res = run_bat("pack", "--json", "--progress", "none", str(DEMO), str(tmp_path / "out"))
    assert res.exit_code == 0, res.stderr
    assert next(f for f in _json(res)["files"] if f["relpath"] == INFO)["action"] == "skipped"
    assert (tmp_path / "out" / INFO).stat().st_mtime_ns == before


def test_a_project_file_called_pack_info_wins(run_bat, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A text of the project called pack-info.txt is packed as it is; bat's note is not written."""
    notes = BLENDFILES / "v50" / "pack_info" / "notes.blend"
    res = run_bat("pack", "--json", "--progress", "none", str(notes), str(tmp_path / "out"))
    assert res.exit_code == 0, res.stderr
    assert (tmp_path / "out" / INFO).read_bytes() == (notes.parent / INFO).read_bytes()
    assert f"a packed file is called {INFO}; not writing bat's own" in res.stderr
    assert [f["source"] for f in _json(res)["files"] if f["relpath"] == INFO] == [str(notes.parent / INFO)]
