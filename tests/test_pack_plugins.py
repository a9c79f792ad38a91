"""Target plugins from code: a third-party scheme, passed to one call or registered for all."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path, PurePosixPath

import pytest

from bat_core import hookimpl, plugins
from bat_core.pack import CHUNK_SIZE, PackError, Target, Transfer, TransferIO, TransferItem, pack
from bat_core.progress import PackCallback
from bat_core.targets import TargetScheme

from .packinfo import INFO, check_info

DEMO = Path(__file__).resolve().parent.parent / "examples" / "demo" / "shot.blend"


class MemoryTransfer(Transfer):
    """Keeps packed files in a dict: a target with no local files at all."""

    workers = 2

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.threads: set[str] = set()
        self.finished: bool | None = None

    def is_present(self, item: TransferItem, io: TransferIO) -> bool:
        return str(item.dest) in self.files

    def send(self, item: TransferItem, io: TransferIO) -> None:
        self.threads.add(threading.current_thread().name)
        data = b""
        with open(item.read_from, "rb") as fh:
            while chunk := fh.read(CHUNK_SIZE):
                io.check_abort()
                data += chunk
                io.progress(len(chunk))
        self.files[str(item.dest)] = data

    def finish(self, completed: bool) -> None:
        self.finished = completed


class MemoryPlugin:
    def __init__(self) -> None:
        self.transfer = MemoryTransfer()

    @hookimpl
    def register_target_schemes(self, register: Callable[[TargetScheme], None]) -> None:
        register(TargetScheme(
            name="memory", help="mem://name: kept in memory",
            url_schemes=("mem",),
            resolve=lambda t: Target(PurePosixPath("/memory", t.removeprefix("mem://")), self.transfer),
        ))


class Events(PackCallback):
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.threads: set[str] = set()

    def transfer_file(self, src: Path, dst: str) -> None:
        self.calls.append(dst)
        self.threads.add(threading.current_thread().name)

    def transfer_file_done(self, src: Path, dst: str) -> None:
        self.calls.append(f"finished {dst}")

    def pack_done(self, output_blendfile: str, missing_files: list[Path]) -> None:
        self.calls.append(f"done {output_blendfile}")


def test_scheme_passed_to_one_call() -> None:
    plugin = MemoryPlugin()
    events = Events()
    result = pack(DEMO, "mem://demo", plugins=[plugin], callback=events)
    files = plugin.transfer.files
    assert set(files) == {"shot.blend", "lib/props.blend", "lib/textures/wood.png", "audio/ambience.wav",
                          "textures/brick.png", "textures/floor_color.png", "textures/floor_rough.png", INFO}
    assert files["shot.blend"] == DEMO.read_bytes()
    check_info(files[INFO], "shot.blend")
    assert plugin.transfer.finished is True
    assert result.output == "/memory/demo/shot.blend"
    assert all(t.startswith("bat-transfer-") for t in plugin.transfer.threads)
    # Callbacks ran on this thread only, although the transfers ran in workers.
    assert events.threads == {threading.current_thread().name}
    assert events.calls[-1] == "done /memory/demo/shot.blend"
    finished = [c for c in events.calls if c.startswith("finished ")]
    assert len(finished) == 8 and "finished /memory/demo/pack-info.txt" in finished
    # Not registered beyond that call.
    with pytest.raises(PackError, match="unknown target scheme 'memory'"):
        pack(DEMO, "mem://demo", target_scheme="memory")


def test_registered_scheme_and_resolved_target(tmp_path: Path) -> None:
    plugin = MemoryPlugin()
    plugins.register(plugin, name="memory-test")
    try:
        result = pack(DEMO, "mem://again")
        assert "shot.blend" in plugin.transfer.files and result.complete
    finally:
        plugins.unregister(name="memory-test")
    # A Target object built by the program itself.
    own = MemoryTransfer()
    pack(DEMO, Target(PurePosixPath("/mine"), own))
    assert "lib/props.blend" in own.files


def test_builtin_target_plugins_listed(run_bat) -> None:  # type: ignore[no-untyped-def]
    res = run_bat("plugins")
    assert res.exit_code == 0
    for name in ("directory", "zip", "progress"):
        assert name in res.stdout
