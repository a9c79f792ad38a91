"""Third-party block readers and expanders, registered from code, take part in tracing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bat_core
from bat_core import plugins
from bat_core.blendfile import Block, open_blend
from bat_core.bpathlib import BlendPath
from bat_core.trace import BlockUsage, TraceContext, trace

from .conftest import BLENDFILES


class RenderOutputReader:
    """Reports a scene's render output path, which the built-in readers ignore."""

    def __init__(self) -> None:
        self.seen: list[bytes] = []

    def read_scene(self, block: Block, ctx: TraceContext) -> Iterator[BlockUsage]:
        self.seen.append(block.id_name)
        pic = block.get((b"r", b"pic"))
        if pic:
            yield BlockUsage(block, (b"r", b"pic"), BlendPath(pic), "render-output")

    @bat_core.hookimpl
    def register_block_readers(self, register: Any) -> None:
        register(b"SC", self.read_scene)


def _with_render_path(tmp_path: Path) -> Path:
    out = tmp_path / "basic.blend"
    (tmp_path / "render").mkdir()
    (tmp_path / "render" / "out.png").write_bytes(b"x")
    with open_blend(BLENDFILES / "v50" / "basic" / "basic.blend") as bf:
        bf.blocks_by_code(b"SC")[0].set((b"r", b"pic"), b"//render/out.png")
        bf.save(out)
    return out


def test_programmatic_reader_used_by_bat_list(tmp_path: Path, run_bat) -> None:  # type: ignore[no-untyped-def]
    blend = _with_render_path(tmp_path)
    plugin = RenderOutputReader()
    plugins.register(plugin, name="render-output-reader")
    try:
        res = run_bat("list", "--json", str(blend))
    finally:
        plugins.unregister(plugin)
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout) == {str(blend): [str(tmp_path / "render" / "out.png")]}
    assert plugin.seen == [b"SCScene"]
    # Unregistered again: the built-in readers alone find nothing in this file.
    assert json.loads(run_bat("list", "--json", str(blend)).stdout) == {}


def test_plugin_for_one_call_only(tmp_path: Path) -> None:
    blend = _with_render_path(tmp_path)
    plugin = RenderOutputReader()
    usages = []
    for usage in trace(blend, plugins=[plugin]):
        # The files are open while the trace runs (pass a BlendFileCache to keep them).
        assert usage.block.get(usage.field) == b"//render/out.png"
        usages.append(usage)
    assert [u.kind for u in usages] == ["render-output"]
    assert list(trace(blend)) == []


class CountingExpander:
    """An expander keyed by struct name sees the library IDs the tracer expands."""

    def __init__(self) -> None:
        self.expanded: list[bytes] = []

    @bat_core.hookimpl
    def register_block_expanders(self, register: Any) -> None:
        def expander(block: Block, ctx: TraceContext) -> Iterator[Block]:
            self.expanded.append(block.id_name)
            return iter(())

        register("Collection", expander)


def test_programmatic_expander_called_for_library_ids() -> None:
    plugin = CountingExpander()
    list(trace(BLENDFILES / "v50" / "libraries" / "shots" / "shot.blend", plugins=[plugin]))
    assert b"GRCharColl" in plugin.expanded


def test_trace_streams_first_usage_before_reading_everything() -> None:
    """The first usage comes out before the remaining ID blocks are even looked at."""
    seen: list[bytes] = []

    def spy(block: Block, ctx: TraceContext) -> Iterator[BlockUsage]:
        seen.append(block.id_name)
        yield BlockUsage(block, None, BlendPath(b"//spy"), "spy")

    class Spy:
        @bat_core.hookimpl
        def register_block_readers(self, register: Any) -> None:
            for code in (b"SC", b"OB", b"ME", b"MA", b"IM"):
                register(code, spy)

    gen = trace(BLENDFILES / "v50" / "images" / "images.blend", plugins=[Spy()])
    first = next(gen)
    assert first.kind == "spy" and seen == [first.block_name]
    rest = list(gen)
    assert len(seen) > 5
    assert sum(1 for u in rest if u.kind == "image") >= 5
