"""examples/studio_pipeline: a pipeline's own block reader and progress callback, no packaging.

The scene was made by Blender (``examples/studio_pipeline/make_scene.py``):
objects whose custom property ``studio_sidecar`` names a file, which Blender
itself does not report (``blend_paths`` is empty in the JSON beside it).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from bat_core import plugins

from .packinfo import INFO, check_info

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "studio_pipeline"
PROJECT = EXAMPLE / "project"
BLEND = PROJECT / "shots" / "rock.blend"
EXPECTED = json.loads((BLEND.parent / "rock.blend.json").read_text())


def _pipeline() -> ModuleType:
    spec = importlib.util.spec_from_file_location("studio_pipeline", EXAMPLE / "pipeline.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BAT_")}
    return subprocess.run([sys.executable, str(EXAMPLE / "pipeline.py"), *args], capture_output=True,
                          text=True, env=env, timeout=120)


def _resolve(stored: str) -> Path:
    return Path(os.path.normpath(BLEND.parent / stored.removeprefix("//")))


def test_blender_does_not_know_the_sidecars() -> None:
    assert EXPECTED["blend_paths"] == []
    assert set(EXPECTED["sidecars"]) == {"Rock", "Moss", "Ghost"}


def test_example_lists_the_sidecars() -> None:
    res = _run("list", str(BLEND))
    assert res.returncode == 3, res.stderr  # Ghost's sidecar was never written
    found = {}
    for line in res.stdout.splitlines():
        kind, name, path, *rest = line.split()
        assert kind == "studio-sidecar"
        found[name.removeprefix("OB")] = (Path(path), rest == ["(missing)"])
    assert found == {name: (_resolve(stored), not _resolve(stored).exists())
                     for name, stored in EXPECTED["sidecars"].items()}
    assert found["Ghost"][1] and not found["Moss"][1]


def test_example_packs_with_its_progress_callback(tmp_path: Path) -> None:
    out = tmp_path / "pack"
    res = _run("pack", str(BLEND), str(out))
    assert res.returncode == 3, res.stderr
    info = (out / INFO).read_bytes()
    check_info(info, "shots/rock.blend")
    assert res.stdout.splitlines() == [
        # The blend file, its two existing files and pack-info.txt.
        f"farm: sending 4 files, {sum(p.stat().st_size for p in (BLEND, *_existing())) + len(info)} bytes",
        f"farm: {out / 'shots' / 'rock.blend'} is ready (4 files sent, 1 missing)",
    ]
    for sidecar in _existing():
        packed = out / sidecar.relative_to(PROJECT)
        assert packed.read_bytes() == sidecar.read_bytes()


def _existing() -> list[Path]:
    return sorted(p for p in (_resolve(s) for s in EXPECTED["sidecars"].values()) if p.exists())


def test_registered_reader_is_used_by_the_cli(run_bat) -> None:  # type: ignore[no-untyped-def]
    """Registered from code, the reader serves `bat list` too; json-full says where each path is stored."""
    assert run_bat("list", "--json", str(BLEND)).stdout.strip() == "{}"  # built-in readers alone
    pipeline = _pipeline()
    plugin = pipeline.StudioSidecars()
    plugins.register(plugin, name="studio-sidecars")
    try:
        res = run_bat("list", "--format", "json-full", str(BLEND))
        described = run_bat("plugins", "--json").stdout
    finally:
        plugins.unregister(plugin)
    assert res.exit_code == 3
    report = json.loads(res.stdout)
    by_block = {d["block"]: d for d in report["dependencies"]}
    assert set(by_block) == {"OBRock", "OBMoss", "OBGhost"}
    for name, stored in EXPECTED["sidecars"].items():
        entry = by_block[f"OB{name}"]
        assert entry["kind"] == "studio-sidecar" and entry["struct"] == "IDProperty"
        assert entry["field"] == "data.pointer" and entry["stored_path"] == stored
        assert entry["exists"] == _resolve(stored).exists()
        assert entry["path"] == str(_resolve(stored))
    assert report["missing"] == [str(_resolve(EXPECTED["sidecars"]["Ghost"]))]
    info = {p["name"]: p for p in json.loads(described)}["studio-sidecars"]
    assert info["block_readers"] == ["OB"] and info["distribution"] is None


def test_progress_callback_hears_a_plain_trace() -> None:
    """Plugin callbacks (register_callbacks) hear bat_core.trace.trace() too, as its docstring says."""
    import bat_core
    from bat_core.progress import TraceCallback

    class Counter(TraceCallback):
        def __init__(self) -> None:
            self.found: list[Path] = []
            self.missing: list[Path] = []

        def trace_asset(self, path: Path) -> None:
            self.found.append(path)

        def missing_file(self, path: Path) -> None:
            self.missing.append(path)

    class Both:
        def __init__(self) -> None:
            self.counter = Counter()

        @bat_core.hookimpl
        def register_callbacks(self, register):  # type: ignore[no-untyped-def]
            register(self.counter)

    pipeline = _pipeline()
    both = Both()
    usages = list(bat_core.trace.trace(BLEND, plugins=[pipeline.StudioSidecars(), both]))
    assert len(usages) == 3
    assert sorted(both.counter.found) == _existing()
    assert both.counter.missing == [_resolve(EXPECTED["sidecars"]["Ghost"])]


@pytest.mark.skipif(importlib.util.find_spec("bpy") is None, reason="bpy (Blender as a module) is not installed")
def test_blender_reads_the_packed_properties(tmp_path: Path) -> None:
    """The packed scene, opened by Blender: each property unchanged and its file beside the pack."""
    out = tmp_path / "pack"
    assert _run("pack", str(BLEND), str(out)).returncode == 3
    script = (
        "import bpy, json, os, sys\n"
        "bpy.ops.wm.open_mainfile(filepath=sys.argv[1], load_ui=False)\n"
        "print(json.dumps({o.name: [o['studio_sidecar'], os.path.isfile(bpy.path.abspath(o['studio_sidecar']))]"
        " for o in bpy.data.objects}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script, str(out / "shots" / "rock.blend")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert seen == {name: [stored, name != "Ghost"] for name, stored in EXPECTED["sidecars"].items()}
