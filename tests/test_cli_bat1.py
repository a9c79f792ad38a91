"""BAT 1.x command lines run unchanged on bat, with the same meaning.

BAT 1.23 is installed in a virtual environment of its own (session fixture;
it also has a console script called ``bat``).  Its ``--help`` gives every
option of every command; each one is run against bat.  Where it is cheap the
output is compared with BAT 1.23's own on the same fixture: the listing, the
hashes, the JSON and the packed files.
"""

from __future__ import annotations

import json
import os
import pstats
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from .conftest import BLENDFILES
from .packinfo import INFO, MANIFEST_DIR

IMAGES = BLENDFILES / "v50" / "images" / "images.blend"
SHOT42 = BLENDFILES / "v42" / "libraries" / "shots" / "shot.blend"
GEONODES = BLENDFILES / "v50" / "geonodes" / "geonodes.blend"
VOLUMES = BLENDFILES / "v50" / "volumes" / "volumes.blend"
#: Fixtures on which BAT 1.23 finds what bat finds (on the others bat finds more).
AGREED = [IMAGES, SHOT42, GEONODES, VOLUMES]
COMMANDS = ["list", "blocks", "pack", "version"]


@pytest.fixture(scope="session")
def bat123(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """BAT 1.23's ``bat`` script, in its own venv (kept in pytest's cache between runs).

    ``BAT123_VENV`` may point at an existing venv with ``blender-asset-tracer==1.23``.
    """
    given = os.environ.get("BAT123_VENV")
    if given:
        return Path(given) / "bin" / "bat"
    cache = pytestconfig.cache
    venv = Path(cache.mkdir("bat123-venv")) if cache is not None else tmp_path_factory.mktemp("bat123-venv")
    done = venv / "installed"
    if not done.exists():
        shutil.rmtree(venv)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        # zstandard: BAT 1.23 needs it for zstd-compressed blend files (an optional dependency there).
        subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", "blender-asset-tracer==1.23",
                        "zstandard"], check=True)
        done.write_text("blender-asset-tracer==1.23\n")
    return venv / "bin" / "bat"


def run(exe: list[str], *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BAT_")}
    return subprocess.run([*exe, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=120)


BAT = [sys.executable, "-m", "bat_core"]


def bat1_options(bat123: Path, *command: str) -> list[tuple[str, str, bool]]:
    """(short, long, takes a value) for each option in BAT 1.23's help of ``command``."""
    text = run([str(bat123)], *command, "--help").stdout
    options = text.split("options:", 1)[1]
    found = []
    for m in re.finditer(r"^\s+(-\w)(?: ([A-Z_\[][A-Z_ .\[\]]*?))?, (--[\w-]+)", options, re.M):
        short, value, long = m.group(1), m.group(2), m.group(3)
        if long != "--help":
            found.append((short, long, value is not None))
    return found


def test_bat1_help_lists_the_options_we_test(bat123: Path) -> None:
    """The table below covers every option BAT 1.23's --help shows (so none is forgotten)."""
    seen = {cmd: {o[1] for o in bat1_options(bat123, cmd)} for cmd in COMMANDS}
    seen["(global)"] = {o[1] for o in bat1_options(bat123)}
    assert seen == {
        "(global)": {"--profile", "--verbose", "--debug", "--quiet", "--strict-pointers"},
        "list": {"--json", "--sha256", "--timing"},
        "blocks": {"--dump", "--limit"},
        "pack": {"--project", "--noop", "--exclude", "--compress", "--relative-only"},
        "version": set(),
    }


def _command_lines(bat123: Path, tmp: Path) -> list[list[str]]:
    """Each BAT 1.23 option, short and long, in a command line BAT 1.23 itself accepts."""
    tmp.mkdir(parents=True, exist_ok=True)
    values = {"--limit": ["3"], "--project": [str(SHOT42.parent.parent)], "--exclude": ["*.png", "*.vbo"]}
    lines: list[list[str]] = []
    for short, long, _ in bat1_options(bat123):
        lines += [[short, "list", str(IMAGES)], [long, "list", str(IMAGES)]]
    for cmd, target in (("list", IMAGES), ("blocks", IMAGES)):
        for short, long, _ in bat1_options(bat123, cmd):
            for opt in (short, long):
                lines.append([cmd, opt, *values.get(long, []), str(target)])
    for n, (short, long, _) in enumerate(bat1_options(bat123, "pack")):
        for opt in (short, long):
            out = str(tmp / f"pack-{n}-{opt.strip('-')}")
            # argparse's nargs='*' takes every word after -e: BAT 1.x users put it last.
            if long == "--exclude":
                lines.append(["pack", str(SHOT42), out, opt, *values[long]])
            else:
                lines.append(["pack", opt, *values.get(long, []), str(SHOT42), out])
    lines.append(["version"])
    return lines


def test_every_bat1_command_line_runs_on_bat(bat123: Path, tmp_path: Path, run_bat,  # type: ignore[no-untyped-def]
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    lines = _command_lines(bat123, tmp_path / "bat1")
    with ThreadPoolExecutor(4) as pool:
        theirs = list(pool.map(lambda line: run([str(bat123)], *line, cwd=tmp_path / "bat1"), lines))
    for line, res in zip(lines, theirs, strict=True):
        assert res.returncode == 0, (line, res.stderr)  # a valid BAT 1.23 command line
    ours_lines = _command_lines(bat123, tmp_path / "bat")
    monkeypatch.chdir(tmp_path / "bat")
    for line in ours_lines:
        ours = run_bat(*line)
        # images.blend has missing files: bat says so with exit status 3 (BAT 1.x exits 0).
        expected = 3 if "list" in line and str(IMAGES) in line else 0
        assert ours.exit_code == expected, (line, ours.stderr)
        assert "Traceback" not in ours.stderr
        _check_meaning(line, ours)
    assert (tmp_path / "bat1" / "bam.prof").is_file() and (tmp_path / "bat" / "bam.prof").is_file()


def _check_meaning(line: list[str], res: Any) -> None:
    """What each option is for, shown in bat's output (the same options' long forms are tested at length
    elsewhere; here each short and long spelling of a BAT 1.x command line)."""
    opts = set(line)
    if line[0] == "blocks":
        rows = [r for r in res.stdout.splitlines() if re.match(r"\S+\s+\d+\s+\d+\s+\d+\s+\d+$", r)]
        assert len(rows) == (3 if opts & {"-l", "--limit"} else 10)
        assert ("biggest block:" in res.stdout) == bool(opts & {"-d", "--dump"})
    elif line[0] == "list" and opts & {"-j", "--json"}:
        assert all(Path(d).exists() for deps in json.loads(res.stdout).values() for d in deps)
    elif line[0] == "list" and opts & {"-s", "--sha256"}:
        assert all(re.search(r" [0-9a-f]{64}$", r) for r in res.stdout.splitlines())
    elif line[0] == "list" and opts & {"-t", "--timing"}:
        assert "listed " in res.stderr
    elif len(line) > 1 and line[1] == "list":  # a global option before `list`
        flag = line[0]
        if flag in ("-v", "--verbose"):
            assert "bat: info: tracing " in res.stderr and "bat: debug:" not in res.stderr
        elif flag in ("-d", "--debug"):
            assert "bat: debug: " in res.stderr
        elif flag in ("-q", "--quiet"):
            assert "bat: info" not in res.stderr and "bat: warning" not in res.stderr
        elif flag in ("-p", "--profile"):
            assert "profile written to " in res.stderr
    elif line[0] == "pack":
        target = Path(line[line.index(str(SHOT42)) + 1])
        if opts & {"-n", "--noop"}:
            assert not target.exists() and " -> " in res.stdout
            return
        packed = {p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file()}
        assert ("shots/shot.blend" in packed) == bool(opts & {"-p", "--project"})
        if opts & {"-e", "--exclude"}:
            assert packed and not any(p.endswith(".png") for p in packed)
        if opts & {"-c", "--compress"}:
            assert (target / "shot.blend").read_bytes()[:4] == b"\x28\xb5\x2f\xfd"  # zstd


@pytest.mark.parametrize("blend", AGREED, ids=lambda p: str(p.relative_to(BLENDFILES)))
@pytest.mark.parametrize("options", [[], ["-s"], ["--sha256"]])
def test_list_text_same_as_bat1(bat123: Path, blend: Path, options: list[str], run_bat,  # type: ignore[no-untyped-def]
                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Same lines (BAT's order follows its own walk, so compared as sets): paths, then hashes."""
    cwd = BLENDFILES / blend.relative_to(BLENDFILES).parts[0]
    theirs = run([str(bat123)], "list", *options, str(blend), cwd=cwd)
    monkeypatch.chdir(cwd)  # paths below the working directory are shown relative to it
    ours = run_bat("list", *options, str(blend))
    assert sorted(ours.stdout.splitlines()) == sorted(theirs.stdout.splitlines())
    assert ours.stdout.splitlines()[0] == theirs.stdout.splitlines()[0]  # the main file first


@pytest.mark.parametrize("blend", AGREED, ids=lambda p: str(p.relative_to(BLENDFILES)))
def test_list_json_same_as_bat1(bat123: Path, blend: Path, run_bat) -> None:  # type: ignore[no-untyped-def]
    theirs = json.loads(run([str(bat123)], "list", "-j", str(blend)).stdout)
    ours = json.loads(run_bat("list", "--json", str(blend)).stdout)
    assert ours == theirs
    for deps in ours.values():
        assert all(Path(d).exists() for d in deps)  # missing files are not listed


def test_json_with_sha256_shape(run_bat) -> None:  # type: ignore[no-untyped-def]
    """BAT 1.23 ignores --sha256 with --json; bat maps each dependency to its hash."""
    plain = json.loads(run_bat("list", "-j", str(SHOT42)).stdout)
    hashed = json.loads(run_bat("list", "-j", "-s", str(SHOT42)).stdout)
    assert {k: sorted(v) for k, v in hashed.items()} == plain
    import hashlib

    for deps in hashed.values():
        for path, digest in deps.items():
            assert digest == hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_timing_keeps_stdout_a_listing(run_bat) -> None:  # type: ignore[no-untyped-def]
    res = run_bat("list", "-t", str(SHOT42))
    assert res.stdout == run_bat("list", str(SHOT42)).stdout
    assert re.search(r"listed \d+ references in [\d.]+ s", res.stderr)
    assert "SHA-256" in run_bat("list", "-t", "-s", str(SHOT42)).stderr


def test_pack_same_files_as_bat1(bat123: Path, tmp_path: Path) -> None:
    root = str(SHOT42.parent.parent)
    a, b = tmp_path / "bat1", tmp_path / "bat"
    theirs = run([str(bat123)], "-q", "pack", "-p", root, str(SHOT42), str(a), "-e", "*.png", "x*.vbo")
    ours = run(BAT, "-q", "pack", "-p", root, str(SHOT42), str(b), "-e", "*.png", "x*.vbo")
    assert theirs.returncode == ours.returncode == 0, ours.stderr

    def files(d: Path) -> set[str]:
        return {p.relative_to(d).as_posix() for p in d.rglob("*") if p.is_file()}

    # The same files, pack-info.txt included; the directory target's manifest is bat's alone.
    assert {f for f in files(b) if not f.startswith(MANIFEST_DIR)} == files(a)
    assert (b / INFO).read_bytes() == (a / INFO).read_bytes()
    assert not any(f.endswith(".png") for f in files(b))


@pytest.mark.parametrize("words", [
    ["-e", "*.png", "*.mp4"],                   # BAT 1.x's form, before the positionals (argparse refuses it)
    ["-e", "*.png *.mp4"],                      # one word, space-separated globs
    ["-e", "*.png", "-e", "*.mp4"],             # repeated
    ["--exclude", "*.png", "*.mp4", "-n"],      # ended by the next option
    ["-ne", "*.png", "*.mp4"],                  # short flags together, -e last
])
def test_pack_exclude_forms(words: list[str], run_bat, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    res = run_bat("pack", "--json", "-n", *words, str(IMAGES), str(tmp_path / "out"))
    assert res.exit_code == 3, res.stderr  # done; images.blend has missing files
    excluded = {Path(f["source"]).suffix for f in json.loads(res.stdout)["files"] if f["action"] == "excluded"}
    assert excluded == {".png", ".mp4"}


def test_pack_exclude_after_positionals(run_bat, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    res = run_bat("pack", "--json", "-n", str(IMAGES), str(tmp_path / "out"), "-e", "*.png", "*.mp4")
    assert res.exit_code == 3
    report = json.loads(res.stdout)
    assert report["target"] == str(tmp_path / "out")
    assert {Path(f["source"]).suffix for f in report["files"] if f["action"] == "excluded"} == {".png", ".mp4"}


def test_profile_writes_bam_prof(run_bat, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    res = run_bat("-p", "list", str(SHOT42))
    assert res.exit_code == 0
    assert f"profile written to {tmp_path / 'bam.prof'}" in res.stderr
    stats = pstats.Stats(str(tmp_path / "bam.prof"))
    assert any("trace" in func[2] for func in stats.stats)  # type: ignore[attr-defined]


def test_verbose_and_quiet_exclusive(bat123: Path) -> None:
    for flags in (["-v", "-q"], ["-q", "-d"], ["--quiet", "--verbose"]):
        assert run([str(bat123)], *flags, "version").returncode == 2
        ours = run(BAT, *flags, "version")
        assert ours.returncode == 2
        assert ours.stderr.count("\n") == 1 and ours.stderr.startswith("bat: error: -q/--quiet cannot be used")


def test_no_command_is_a_usage_error(bat123: Path) -> None:
    assert run([str(bat123)]).returncode == 2
    res = run(BAT)
    assert res.returncode == 2 and "Commands:" in res.stderr


def test_noop_plan_same_lines_as_bat1(bat123: Path, tmp_path: Path) -> None:
    """`pack -n` prints BAT 1.x's `source -> destination` lines on stdout, and only those."""
    args = ["pack", "-n", "-p", str(SHOT42.parent.parent), str(SHOT42), str(tmp_path / "out"), "-e", "*.png"]
    theirs = run([str(bat123)], *args)
    ours = run(BAT, *args)
    assert theirs.returncode == ours.returncode == 0, ours.stderr
    assert sorted(ours.stdout.splitlines()) == sorted(theirs.stdout.splitlines())
    assert "excluded: " in ours.stderr and not (tmp_path / "out").exists()


def test_project_given_as_a_file_means_its_directory(run_bat, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """BAT 1.x takes `-p some/file` as the file's directory (with a warning); so does bat."""
    res = run_bat("pack", "--json", "-n", "-p", str(SHOT42.parent.parent / "set.blend"), str(SHOT42),
                  str(tmp_path / "out"))
    assert res.exit_code == 0, res.stderr
    assert "is a file; using its directory" in res.stderr
    report = json.loads(res.stdout)
    assert report["output"] == str(tmp_path / "out" / "shots" / "shot.blend")
