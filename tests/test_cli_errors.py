"""Messages, exit statuses and logging of every command (docs/cli.md, "Exit statuses").

0 done, 1 error, 2 bad usage, 3 done but dependencies are missing (list,
pack), 130 interrupted (pack).  Every error is one line on stderr, ``bat:
error: <file>: <what>``; with ``--json`` it is also JSON on stdout.
"""

from __future__ import annotations

import json
import os
import re
import signal
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import bat_core
from bat_core import plugins
from bat_core.blendfile import open_blend
from bat_core.progress import PackCallback

from .conftest import BLENDFILES

BASIC = BLENDFILES / "v50" / "basic" / "basic.blend"
IMAGES = BLENDFILES / "v50" / "images" / "images.blend"
SHOT = BLENDFILES / "v50" / "libraries" / "shots" / "shot.blend"


def _one_error_line(res: Any) -> str:
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("bat: error: ") and "Traceback" not in res.stderr
    return lines[0]  # type: ignore[no-any-return]


# --- one line, everywhere -----------------------------------------------------------------


@pytest.mark.parametrize("command", [["list"], ["blocks"], ["pack", "{tmp}/out"]])
def test_no_such_file(command: list[str], run_bat, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    nope = tmp_path / "nope.blend"
    args = [a.format(tmp=tmp_path) for a in command[1:]]
    res = run_bat(command[0], str(nope), *args)
    assert res.exit_code == 1
    assert _one_error_line(res) == f"bat: error: {nope}: no such file"
    assert res.stdout == ""


@pytest.mark.parametrize("command", [["list"], ["blocks"], ["pack", "{tmp}/out"]])
def test_directory_as_blend_file(command: list[str], run_bat, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    args = [a.format(tmp=tmp_path) for a in command[1:]]
    res = run_bat(command[0], str(tmp_path), *args)
    assert res.exit_code == 1
    assert _one_error_line(res) == f"bat: error: {tmp_path}: is a directory, not a blend file"
    assert not (tmp_path / "out").exists()


def test_not_a_blend_file(run_bat, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "project").mkdir()
    text = tmp_path / "project" / "notes.blend"
    text.write_text("hello")
    for command in (["list"], ["blocks"], ["pack"]):
        extra = [str(tmp_path / "out")] if command == ["pack"] else []
        res = run_bat(*command, str(text), *extra)
        assert res.exit_code == 1
        assert _one_error_line(res).startswith(f"bat: error: {text}: not a blend file")


@pytest.mark.parametrize("args", [
    ["list", "--bogus", str(BASIC)],
    ["blocks", "--limit", "many", str(BASIC)],
    ["pack", str(BASIC)],                        # TARGET missing
    ["nosuchcommand"],
    ["list", "--format", "dot", "--missing", str(BASIC)],
    ["list", "--json", "--format", "dot", str(BASIC)],
    ["list", "--json", "--format", "json-full", str(BASIC)],
    ["list", "--format", "dot", "--sha256", str(BASIC)],
    ["list", "--missing", "--sha256", str(BASIC)],
    ["-v", "-q", "list", str(BASIC)],
    ["plugins", "--bogus"],
])
def test_usage_errors_are_one_line_exit_2(args: list[str], run_bat) -> None:  # type: ignore[no-untyped-def]
    res = run_bat(*args)
    assert res.exit_code == 2
    line = _one_error_line(res)
    assert "--help" in line  # where to look


def test_contradictions_name_both_options(run_bat) -> None:  # type: ignore[no-untyped-def]
    line = _one_error_line(run_bat("list", "--format", "dot", "--missing", str(BASIC)))
    assert "--missing" in line and "--format dot" in line
    line = _one_error_line(run_bat("list", "--json", "--format", "dot", str(BASIC)))
    assert "--json" in line and "--format dot" in line


# --- with --json, errors are JSON on stdout too ------------------------------------------------


@pytest.mark.parametrize("args, code", [
    (["list", "--json", "{nope}"], 1),
    (["list", "-j", "{nope}"], 1),
    (["list", "--format", "json-full", "{nope}"], 1),
    (["list", "--json", "--format", "dot", "{basic}"], 2),
    (["blocks", "--json", "{nope}"], 1),
    (["blocks", "--json", "--limit", "x", "{basic}"], 2),
    (["pack", "--json", "{nope}", "{tmp}/out"], 1),
    (["pack", "--json", "--target-scheme", "nope", "{basic}", "{tmp}/out"], 1),
    (["plugins", "--json", "--bogus"], 2),
])
def test_json_errors_on_stdout(args: list[str], code: int, run_bat, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    fill = {"nope": str(tmp_path / "nope.blend"), "basic": str(BASIC), "tmp": str(tmp_path)}
    res = run_bat(*[a.format(**fill) for a in args])
    assert res.exit_code == code
    line = _one_error_line(res)
    report = json.loads(res.stdout)
    assert report == {"error": line.removeprefix("bat: error: "), "exit_status": code}


def test_pack_error_with_a_result_is_one_json_document(run_bat, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    plain = tmp_path / "notes.txt"
    plain.write_text("keep me")
    res = run_bat("pack", "--json", str(BASIC), str(plain))
    assert res.exit_code == 1
    report = json.loads(res.stdout)  # one document, whatever the packer had done
    assert report["error"] and report["error"] in res.stderr
    assert plain.read_text() == "keep me"


def test_broken_library_in_json_listing(run_bat, copy_scenario) -> None:  # type: ignore[no-untyped-def]
    """A trace that fails half-way (the main file is fine) still ends in valid JSON on stdout."""
    root = copy_scenario("v50", "basic")
    blend = root / "basic.blend"
    data = bytearray(blend.read_bytes())
    (root / "cut.blend").write_bytes(bytes(data[: len(data) // 3]))
    res = run_bat("list", "--json", str(root / "cut.blend"))
    assert res.exit_code == 1
    assert json.loads(res.stdout)["error"].startswith(str(root / "cut.blend"))


# --- exit statuses -----------------------------------------------------------------------------


def test_exit_statuses_of_list(run_bat) -> None:  # type: ignore[no-untyped-def]
    assert run_bat("list", str(SHOT)).exit_code == 0
    res = run_bat("list", str(IMAGES))
    assert res.exit_code == 3
    assert res.stderr.strip().splitlines()[-1] == "bat: 3 missing file(s)"
    assert run_bat("list", "--missing", str(SHOT)).exit_code == 0
    assert run_bat("list", "--format", "dot", str(IMAGES)).exit_code == 3


def test_exit_statuses_of_blocks_version_plugins(run_bat) -> None:  # type: ignore[no-untyped-def]
    assert run_bat("blocks", str(IMAGES)).exit_code == 0  # missing dependencies are no concern of blocks
    assert run_bat("version").exit_code == 0
    assert run_bat("plugins").exit_code == 0
    assert run_bat("--help").exit_code == 0
    assert run_bat("list", "--help").exit_code == 0


def test_exit_statuses_of_pack(run_bat, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert run_bat("pack", str(SHOT), str(tmp_path / "a")).exit_code == 0
    assert run_bat("pack", str(IMAGES), str(tmp_path / "b")).exit_code == 3
    assert run_bat("pack", "-n", str(IMAGES), str(tmp_path / "c")).exit_code == 3
    assert run_bat("pack", "--target-scheme", "nope", str(SHOT), str(tmp_path / "d")).exit_code == 1


class _InterruptOnFirstFile(PackCallback):
    """Presses Ctrl-C (sends this process SIGINT) when the plan is made, before any transfer."""

    def __init__(self) -> None:
        self.sent = False

    def pack_start(self, file_count: int, byte_count: int) -> None:
        if not self.sent:
            self.sent = True
            os.kill(os.getpid(), signal.SIGINT)


class _InterruptPlugin:
    def __init__(self) -> None:
        self.callback = _InterruptOnFirstFile()

    @bat_core.hookimpl
    def register_callbacks(self, register: Any) -> None:
        register(self.callback)


def test_pack_interrupted_exit_130(run_bat, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    plugin = _InterruptPlugin()
    plugins.register(plugin, name="interrupt-test")
    try:
        res = run_bat("pack", "--progress", "none", str(SHOT), str(tmp_path / "out"))
    finally:
        plugins.unregister(plugin)
    assert plugin.callback.sent
    assert res.exit_code == 130
    assert "interrupted" in res.stderr and "Traceback" not in res.stderr


# --- -v, -d, -q --------------------------------------------------------------------------------


def test_verbose_logs_what_is_done(run_bat) -> None:  # type: ignore[no-untyped-def]
    plain = run_bat("list", str(SHOT))
    assert plain.stderr == ""
    verbose = run_bat("-v", "list", str(SHOT))
    assert verbose.stdout == plain.stdout
    info = [line for line in verbose.stderr.splitlines() if line.startswith("bat: info: ")]
    assert f"bat: info: tracing {SHOT}" in info
    assert sum(1 for line in info if line.startswith("bat: info: tracing ")) == 7  # shot + 6 libraries
    assert "bat: debug:" not in verbose.stderr


def test_debug_logs_everything(run_bat) -> None:  # type: ignore[no-untyped-def]
    verbose = run_bat("-v", "list", str(SHOT))
    debug = run_bat("-d", "list", str(SHOT))
    assert debug.stdout == verbose.stdout
    assert len(debug.stderr.splitlines()) > len(verbose.stderr.splitlines())
    assert re.search(r"^bat: debug: bat_core\.cli: found .*shot\.png$", debug.stderr, re.M)
    assert f"arguments ['-d', 'list', '{SHOT}']" in debug.stderr
    # Plugins load once per process: in a fresh one, -d shows them loading.
    fresh = subprocess.run([sys.executable, "-m", "bat_core", "-d", "plugins"], capture_output=True, text=True)
    assert re.search(r"^bat: debug: bat_core\.plugins: plugin readers loaded from bat ", fresh.stderr, re.M)


def test_verbose_pack_and_blocks(run_bat, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    res = run_bat("-v", "pack", "--progress", "none", str(SHOT), str(tmp_path / "out"))
    assert res.exit_code == 0
    assert "bat: info: plan: 14 files" in res.stderr  # 13 of the project's, pack-info.txt
    assert "bat: info: rewriting paths in a copy of " in res.stderr
    assert "bat: info: pack done: " in res.stderr
    res = run_bat("-d", "pack", "--progress", "none", str(SHOT), str(tmp_path / "out"))
    assert res.stderr.count("bat: debug: bat_core.cli: skipped ") == 14  # all there already
    assert f"bat: info: opening {BASIC}" in run_bat("-v", "blocks", str(BASIC)).stderr


def test_quiet_hides_warnings_not_errors(run_bat, copy_scenario) -> None:  # type: ignore[no-untyped-def]
    root = copy_scenario("v50", "libraries")
    shot = root / "shots" / "shot.blend"
    broken = shot.with_name("broken.blend")
    with open_blend(shot) as bf:  # a linked-ID placeholder whose library pointer leads nowhere
        ph = next(b for b in bf.blocks if b.code == b"ID")
        off, _field, _n = ph.dna_type.locate(b"lib")
        struct.pack_into("<Q", bf.buf, ph.offset + off, 0xDEADBEEF)
        bf.save(broken)
    loud = run_bat("list", str(broken))
    assert "bat: warning: " in loud.stderr and "0xdeadbeef" in loud.stderr
    quiet = run_bat("-q", "list", str(broken))
    assert "bat: warning: " not in quiet.stderr and quiet.stdout == loud.stdout
    assert _one_error_line(run_bat("-q", "list", str(root / "nope.blend")))


# --- bat pack --json -n ------------------------------------------------------------------------


def test_noop_json_counts_what_the_text_says(run_bat, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    demo = Path(__file__).resolve().parent.parent / "examples" / "demo" / "shot.blend"
    text = run_bat("pack", "-n", str(demo), str(tmp_path / "out"))
    planned = int(re.search(r"would pack (\d+) files", text.stderr).group(1))  # type: ignore[union-attr]
    assert planned == 7
    report = json.loads(run_bat("pack", "--json", "-n", str(demo), str(tmp_path / "out")).stdout)
    assert report["noop"] is True
    assert report["summary"]["files"] == planned
    assert report["summary"]["bytes"] == sum(f["size"] for f in report["files"] if f["action"] != "excluded")
    assert not (tmp_path / "out").exists()
