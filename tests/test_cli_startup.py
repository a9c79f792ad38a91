"""Start-up: ``bat version`` and ``bat --help`` import only what they need.

The speed is measured by ``benchmarks/``; these tests pin the reasons for it:
what each command leaves unimported, and the help lines kept beside the
lazily imported built-in commands.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from bat_core.cli import BUILTIN_COMMANDS, OWN_PLUGIN_COMMANDS

HEAVY = ["bat_core.pack", "bat_core.trace", "bat_core.blendfile", "rich", "boto3", "aiohttp", "requests",
         "zstandard", "sqlite3"]


def modules_after(*args: str) -> set[str]:
    code = ("import sys, json\nfrom bat_core.cli import main\n"
            "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "print(json.dumps(sorted(sys.modules)), file=sys.stderr)")
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True)
    return set(json.loads(proc.stderr.strip().splitlines()[-1]))


@pytest.mark.parametrize("args", [("version",), ("--help",)])
def test_start_up_leaves_the_engine_unimported(args: tuple[str, ...]) -> None:
    loaded = modules_after(*args)
    assert not [m for m in HEAVY if m in loaded]
    # No plugin is loaded: bat --help knows the commands of bat's own plugins (OWN_PLUGIN_COMMANDS)
    # when no other plugin is installed (test_plugins_installed: one that is gets loaded).
    assert "pluggy" not in loaded and "bat_core.plugins" not in loaded


def test_pack_without_a_bar_leaves_rich_and_sqlite_unimported(tmp_path: Path) -> None:
    """rich draws the bar only, sqlite3 keeps checksums only for content-addressed targets."""
    demo = Path(__file__).resolve().parent.parent / "examples" / "demo" / "shot.blend"
    loaded = modules_after("pack", "--progress", "none", str(demo), str(tmp_path / "out"))
    assert (tmp_path / "out" / "shot.blend").is_file()
    assert "bat_core.pack" in loaded
    assert "rich" not in loaded and "sqlite3" not in loaded and "bat_plugins.progress.bar" not in loaded


def test_help_lists_builtin_and_plugin_commands(run_bat) -> None:  # type: ignore[no-untyped-def]
    res = run_bat("--help")
    assert res.exit_code == 0
    for name in [*BUILTIN_COMMANDS, "shaman"]:
        assert f"\n  {name} " in res.stdout


@pytest.mark.parametrize("name", sorted([*BUILTIN_COMMANDS, *OWN_PLUGIN_COMMANDS]))
def test_help_lines_match_the_commands(name: str) -> None:
    spec = {**BUILTIN_COMMANDS, **OWN_PLUGIN_COMMANDS}[name]
    command = getattr(importlib.import_module(spec.module), spec.attr)
    assert command.name == name
    assert command.get_short_help_str(1000) == spec.summary
