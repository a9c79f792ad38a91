"""The plugin examples the documentation shows (docs/examples/) do what it says they do."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from bat_core import plugins
from bat_core.blendfile import open_blend

from .conftest import BLENDFILES

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "examples" / "demo" / "shot.blend"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"docs_example_{name}", REPO / "docs" / "examples" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def render_outputs() -> Iterator[ModuleType]:
    """docs/examples/render_outputs.py, registered for the whole process, as a pipeline would."""
    module = _load("render_outputs")
    plugins.register(module, name="render-outputs")
    try:
        yield module
    finally:
        plugins.unregister(module)
        _forget_command()


def _forget_command() -> None:
    """click keeps commands added to bat's group; later tests must not see this one."""
    from bat_core.cli import cli

    cli.commands.pop("render-outputs", None)


def _scene_rendering_to(tmp_path: Path, output: bytes) -> Path:
    """A copy of a Blender-made file whose scene renders to ``output``."""
    blend = tmp_path / "basic.blend"
    with open_blend(BLENDFILES / "v50" / "basic" / "basic.blend") as bf:
        bf.blocks_by_code(b"SC")[0].set((b"r", b"pic"), output)
        bf.save(blend)
    return blend


def test_the_reader_reports_the_render_output(tmp_path: Path, run_bat, render_outputs) -> None:  # type: ignore[no-untyped-def]
    blend = _scene_rendering_to(tmp_path, b"//render/still.png")
    (tmp_path / "render").mkdir()
    (tmp_path / "render" / "still.png").write_bytes(b"png")
    res = run_bat("list", "--json", str(blend))
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout) == {str(blend): [str(tmp_path / "render" / "still.png")]}


def test_the_reader_ignores_an_output_directory(tmp_path: Path, run_bat, render_outputs) -> None:  # type: ignore[no-untyped-def]
    blend = _scene_rendering_to(tmp_path, b"//render/")
    (tmp_path / "render").mkdir()
    res = run_bat("list", "--json", str(blend))
    assert res.exit_code == 0 and json.loads(res.stdout) == {}


def test_the_callback_logs_every_packed_file(tmp_path: Path, run_bat, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    log = tmp_path / "farm.log"
    monkeypatch.setenv("FARM_LOG", str(log))
    module = _load("render_outputs")
    plugins.register(module, name="render-outputs")  # after FARM_LOG: the registry reads it now
    try:
        res = run_bat("pack", "--progress", "none", str(DEMO), str(tmp_path / "out"))
    finally:
        plugins.unregister(module)
        _forget_command()
    assert res.exit_code == 0, res.stderr
    lines = log.read_text().splitlines()
    assert len([line for line in lines if line.startswith("packed ")]) == 8  # 7 and pack-info.txt
    assert lines[-1] == f"done {tmp_path / 'out' / 'shot.blend'} (0 missing)"


def test_the_command_prints_each_scene_output(tmp_path: Path, run_bat, render_outputs) -> None:  # type: ignore[no-untyped-def]
    blend = _scene_rendering_to(tmp_path, b"//frames/shot_")
    res = run_bat("render-outputs", str(blend))
    assert res.exit_code == 0, res.stderr
    assert res.stdout == "Scene: //frames/shot_\n"
    assert "render-outputs" in run_bat("--help").stdout
