"""bat version, bat blocks and bat plugins from the command line."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

import bat_core
from bat_core import plugins
from bat_core.targets import TargetScheme

from .conftest import BLENDFILES, all_fixtures

FIXTURES = all_fixtures()


def test_version(run_bat) -> None:  # type: ignore[no-untyped-def]
    res = run_bat("version")
    assert res.exit_code == 0
    assert res.stdout.startswith(f"bat {bat_core.__version__}")


@pytest.mark.parametrize("fx", FIXTURES, ids=[f.id for f in FIXTURES])
def test_blocks_json_counts_match_blender(fx, run_bat) -> None:  # type: ignore[no-untyped-def]
    res = run_bat("blocks", "--json", str(fx.blend))
    assert res.exit_code == 0, res.stderr
    stats = json.loads(res.stdout)
    assert stats["compression"] == ("zstd" if fx.expected["compressed"] else "none")
    for code, count in fx.expected["id_block_counts"].items():
        assert stats["codes"].get(code, 0) == count, code
    assert sum(t["count"] for t in stats["types"]) == stats["block_count"]


def test_blocks_text_limit_and_dump(run_bat) -> None:  # type: ignore[no-untyped-def]
    path = BLENDFILES / "v50" / "basic" / "basic.blend"
    res = run_bat("blocks", "--limit", "3", "--dump", "--dump-bytes", "32", str(path))
    assert res.exit_code == 0, res.stderr
    lines = res.stdout.splitlines()
    assert "more types (--limit)" in res.stdout
    header = lines.index(next(line for line in lines if line.startswith("type")))
    assert len([line for line in lines[header + 1 : header + 4] if line.strip()]) == 3
    assert "biggest block:" in res.stdout
    assert "00000010" in res.stdout and "00000020" not in res.stdout
    assert "pointed at by" in res.stdout


def test_blocks_dump_names_referrers(run_bat) -> None:  # type: ignore[no-untyped-def]
    res = run_bat("blocks", "--json", "--dump", str(BLENDFILES / "v50" / "images" / "images.blend"))
    stats = json.loads(res.stdout)
    assert stats["biggest_block"]["description"]
    assert isinstance(stats["biggest_block"]["referrers"], list)


def test_plugins_lists_builtin_entry_points(run_bat) -> None:  # type: ignore[no-untyped-def]
    res = run_bat("plugins", "--json", "--all")
    assert res.exit_code == 0
    infos = {p["name"]: p for p in json.loads(res.stdout)}
    assert "readers" in infos and infos["readers"]["builtin"] is True
    assert infos["readers"]["distribution"] == "bat"
    assert "register_block_readers" in infos["readers"]["hooks"]


class _ProgrammaticPlugin:
    """A plugin object registered from code: no packaging, no entry point."""

    @bat_core.hookimpl
    def register_target_schemes(self, register: Callable[[TargetScheme], None]) -> None:
        register(TargetScheme(name="memory-test", help="test scheme",
                              recognises=lambda t: t.startswith("mem://"), resolve=lambda t: None))

    @bat_core.hookimpl
    def register_block_readers(self, register: Callable[[Any, Any], None]) -> None:
        register(b"IM", lambda block, ctx: iter(()))


def test_programmatic_plugin_appears(run_bat) -> None:  # type: ignore[no-untyped-def]
    plugin = _ProgrammaticPlugin()
    plugins.register(plugin, name="my-test-plugin")
    try:
        res = run_bat("plugins")
        assert "my-test-plugin  (registered programmatically)" in res.stdout
        assert "    schemes:         memory-test" in res.stdout
        assert "    block readers:   IM" in res.stdout
        data = {p["name"]: p for p in json.loads(run_bat("plugins", "--json").stdout)}
        assert data["my-test-plugin"]["hooks"] == ["register_block_readers", "register_target_schemes"]
        assert data["my-test-plugin"]["schemes"] == ["memory-test"]
        assert data["my-test-plugin"]["block_readers"] == ["IM"]
        assert data["my-test-plugin"]["distribution"] is None and data["my-test-plugin"]["builtin"] is False
    finally:
        plugins.unregister(plugin)
    assert "my-test-plugin" not in run_bat("plugins").stdout


def test_disable_plugins_env() -> None:
    code = "from bat_core.plugins import describe_plugins; print([p.name for p in describe_plugins()])"
    env = {"BAT_DISABLE_PLUGINS": "readers", "PATH": ""}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert "readers" not in out.stdout


