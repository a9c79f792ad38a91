"""Third-party plugins loaded through real entry points: broken ones never break bat.

The plugins in ``tests/plugin_dists/`` are laid out with ``*.dist-info``
metadata in a temporary directory, and ``bat`` runs in a subprocess with that
directory on ``PYTHONPATH``: importlib finds them exactly as it finds a
``pip install``-ed plugin, and the test environment itself is left alone.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from .conftest import BLENDFILES

DISTS = Path(__file__).parent / "plugin_dists"
IMAGES = BLENDFILES / "v50" / "images" / "images.blend"
SHOT = BLENDFILES / "v50" / "libraries" / "shots" / "shot.blend"

#: distribution, version, entry-point name, module
PLUGINS = [
    ("bat-broken-import", "0.1", "broken_import", "bat_broken_import"),
    ("bat-broken-hook", "0.2", "broken_hook", "bat_broken_hook"),
    ("bat-flaky", "1.0", "flaky", "bat_flaky"),
    ("bat-hello", "1.2.3", "hello", "bat_hello"),
    # An entry point named like a built-in plugin: it must not replace bat's own readers.
    ("bat-impostor", "6.6", "readers", "bat_hello"),
]


@pytest.fixture(scope="session")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory that holds the plugins as pip would install them (module + dist-info)."""
    site = tmp_path_factory.mktemp("plugin-site")
    for dist, version, ep_name, module in PLUGINS:
        shutil.copyfile(DISTS / f"{module}.py", site / f"{module}.py")
        info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        (info / "entry_points.txt").write_text(f"[bat]\n{ep_name} = {module}\n")
        (info / "top_level.txt").write_text(f"{module}\n")
    return site


def bat(site: Path | None, *args: str, env: dict[str, str] | None = None,
        cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("BAT_")}
    if site is not None:
        full_env["PYTHONPATH"] = os.pathsep.join([str(site), full_env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "bat_core", *args], capture_output=True, text=True,
                          env=full_env, cwd=cwd, timeout=120)


def _plugins_json(site: Path, *args: str, env: dict[str, str] | None = None) -> dict[str, dict]:  # type: ignore[type-arg]
    res = bat(site, "plugins", "--json", *args, env=env)
    assert res.returncode == 0, res.stderr
    return {p["name"]: p for p in json.loads(res.stdout)}


def test_plugins_shows_distribution_version_readers_and_failures(plugin_site: Path) -> None:
    infos = _plugins_json(plugin_site)
    assert set(infos) == {"broken_import", "broken_hook", "flaky", "hello", "readers (bat-impostor)"}
    impostor = infos["readers (bat-impostor)"]  # built-ins need --all; this is not one
    assert impostor["loaded"] is False and impostor["distribution"] == "bat-impostor"
    assert impostor["errors"] == [{"stage": "register",
                                   "error": "ValueError: plugin name 'readers' is already used by bat"}]
    hello = infos["hello"]
    assert (hello["distribution"], hello["version"], hello["loaded"], hello["builtin"]) == \
        ("bat-hello", "1.2.3", True, False)
    assert hello["hooks"] == ["register_block_readers", "register_commands"]
    assert hello["block_readers"] == ["World"] and hello["errors"] == []
    broken = infos["broken_import"]
    assert broken["loaded"] is False and broken["distribution"] == "bat-broken-import"
    assert broken["errors"] == [{"stage": "import",
                                 "error": "RuntimeError: bat-broken-import needs the studio licence server"}]
    hook = infos["broken_hook"]
    assert hook["loaded"] is True and hook["version"] == "0.2"
    assert hook["block_readers"] == []  # what it registered before raising is dropped
    assert hook["errors"] == [{"stage": "register_block_readers",
                               "error": "ValueError: bat-broken-hook: configuration file not found"}]
    assert infos["flaky"]["callbacks"] == ["FlakyProgress"] and infos["flaky"]["block_readers"] == ["OB"]


def test_plugins_text_and_all(plugin_site: Path) -> None:
    res = bat(plugin_site, "plugins")
    assert res.returncode == 0
    out = res.stdout
    assert "broken_import  (bat-broken-import 0.1)  FAILED TO LOAD" in out
    assert "error:           import: RuntimeError: bat-broken-import needs the studio licence server" in out
    assert "hello  (bat-hello 1.2.3)" in out and "block readers:   World" in out
    builtin = re.search(r"^built in: (.*) \(bat plugins --all for details\)$", out, re.M)
    assert builtin is not None
    names = builtin.group(1).split(", ")
    assert names == sorted(names) and {"directory", "progress", "readers", "zip"} <= set(names)
    everything = _plugins_json(plugin_site, "--all")
    assert everything["readers"]["builtin"] is True and everything["readers"]["distribution"] == "bat"
    assert everything["readers"]["version"] != "6.6"
    assert "IM" in everything["readers"]["block_readers"] and "Image" not in everything["hello"]["block_readers"]
    assert everything["zip"]["schemes"] == ["zip"]


def test_broken_plugins_do_not_break_list(plugin_site: Path) -> None:
    clean = bat(None, "list", "--json", str(IMAGES))
    res = bat(plugin_site, "list", "--json", str(IMAGES))
    assert res.returncode == clean.returncode == 3  # images.blend has missing files
    assert json.loads(res.stdout) == json.loads(clean.stdout)
    warnings = [line for line in res.stderr.splitlines() if line.startswith("bat: warning: plugin")]
    # Each failure once, however many objects the flaky reader and assets the callback saw.
    assert sorted(warnings) == sorted([
        "bat: warning: plugin 'broken_import' (bat-broken-import 0.1): import: RuntimeError: "
        "bat-broken-import needs the studio licence server; skipped",
        "bat: warning: plugin 'broken_hook' (bat-broken-hook 0.2): register_block_readers: ValueError: "
        "bat-broken-hook: configuration file not found; skipped",
        "bat: warning: plugin 'flaky' (bat-flaky 1.0): block reader for b'OB' read_object: KeyError: "
        "'flaky reader: no such field'; skipped",
        "bat: warning: plugin 'flaky' (bat-flaky 1.0): callback FlakyProgress.trace_asset: OSError: "
        "flaky progress: the dashboard is down; skipped",
        "bat: warning: plugin 'readers (bat-impostor)' (bat-impostor 6.6): register: ValueError: "
        "plugin name 'readers' is already used by bat; skipped",
    ])
    assert "Traceback" not in res.stderr


def test_broken_plugins_do_not_break_pack(plugin_site: Path, tmp_path: Path) -> None:
    out = tmp_path / "pack.zip"
    res = bat(plugin_site, "pack", "--json", str(SHOT), str(out))
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    assert report["summary"]["files"] == 14 and not report["error"]  # 13 and pack-info.txt
    with zipfile.ZipFile(out) as zf:
        assert "shot.blend" in zf.namelist() and zf.testzip() is None
    assert "callback FlakyProgress.pack_done: OSError" in res.stderr
    assert res.stderr.count("plugin 'broken_import'") == 1


def test_a_working_plugin_adds_its_command(plugin_site: Path) -> None:
    res = bat(plugin_site, "hello")
    assert res.returncode == 0 and res.stdout == "hello from bat-hello\n"


def test_load_plugins_allow_list(plugin_site: Path) -> None:
    none = bat(plugin_site, "plugins", "--json", env={"BAT_LOAD_PLUGINS": ""})
    assert json.loads(none.stdout) == [] and none.stderr == ""
    # Built-in plugins always load: bat still works with no third-party plugin.
    listed = bat(plugin_site, "list", "--json", str(SHOT), env={"BAT_LOAD_PLUGINS": ""})
    assert listed.returncode == 0 and json.loads(listed.stdout)
    only = _plugins_json(plugin_site, env={"BAT_LOAD_PLUGINS": "bat-hello, broken_hook"})
    assert set(only) == {"hello", "broken_hook"}
    res = bat(plugin_site, "plugins", env={"BAT_LOAD_PLUGINS": "bat-hello"})
    assert "broken" not in res.stdout + res.stderr


def test_disable_plugins(plugin_site: Path) -> None:
    infos = _plugins_json(plugin_site, "--all", env={"BAT_DISABLE_PLUGINS": "bat-broken-import,flaky,zip"})
    assert "broken_import" not in infos and "flaky" not in infos and "zip" not in infos
    assert "hello" in infos and "readers" in infos


def test_trace_plugins_prints_hook_calls(plugin_site: Path) -> None:
    res = bat(plugin_site, "list", str(BLENDFILES / "v50" / "basic" / "basic.blend"),
              env={"BAT_TRACE_PLUGINS": "1"})
    assert res.returncode == 0, res.stderr
    lines = [line for line in res.stderr.splitlines() if line.startswith("bat: plugin-trace: ")]
    text = "\n".join(lines)
    assert "register_block_readers(register) -> plugin readers" in text
    assert "    hello: register('World', bat_hello.read_world)" in text
    assert "register_block_readers -> plugin broken_hook: raised ValueError: bat-broken-hook" in text
    assert "register_callbacks -> plugin progress: returned None" in text
    assert "register_commands" not in text  # a built-in command: plugin commands are not loaded
    helped = bat(plugin_site, "--help", env={"BAT_TRACE_PLUGINS": "1"})
    assert "bat: plugin-trace: register_commands(cli=" in helped.stderr
    # A third-party plugin is installed: bat --help loads the plugins and lists its command.
    plain = bat(plugin_site, "--help")
    assert "\n  hello " in plain.stdout and "\n  shaman " in plain.stdout, plain.stdout
    quiet = bat(plugin_site, "list", str(BLENDFILES / "v50" / "basic" / "basic.blend"))
    assert "plugin-trace" not in quiet.stderr
