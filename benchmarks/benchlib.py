"""Helpers shared by the benchmark scripts: scene discovery, timing, baselines, output.

Nothing here imports ``bat_core``, so BAT's own interpreter can import it too.
"""

from __future__ import annotations

import gc
import io
import json
import statistics
import struct
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
WORK = HERE / "work"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_SEEKABLE_MAGIC = 0x8F92EAB1

#: make_scene.py's scale options and their defaults (run.py rebuilds a scene made otherwise).
SCENE_DEFAULTS = {"objects": 3000, "materials": 2000, "images": 300, "libraries": 24}
#: The kind of scene make_scene.py builds; bumped when its content changes (run.py then rebuilds).
SCENE_FORMAT = 2
#: The scale of the scaling benchmark's scene against the default one (``work/<version>-x4/``).
SCALE_FACTOR = 4


def compile_bat() -> None:
    """Write the bytecode of bat's own modules, as ``pip install`` does for an installed package.

    An editable checkout gets its ``.pyc`` files on first import, unless
    ``PYTHONDONTWRITEBYTECODE`` is set: then every command started by the
    benchmarks would compile each module edited since the last import, and the
    start-up and command timings would measure the compiler.
    """
    import compileall

    for package in ("bat_core", "bat_plugins"):
        compileall.compile_dir(str(HERE.parent / package), quiet=1)


def scaled_scene_dir(scene: Path, factor: int = SCALE_FACTOR) -> Path:
    """Where the ``factor`` x scene of ``work/<version>/`` lives: ``work/<version>-x<factor>/``."""
    return scene.with_name(f"{scene.name}-x{factor}")


def is_scaled_scene(scene: Path) -> bool:
    return "-x" in scene.name


def default_files() -> list[Path]:
    """``shot.blend`` and ``shot-zstd.blend`` of every default-size scene built under ``work/``."""
    files: list[Path] = []
    for scene in sorted(p.parent for p in WORK.glob("*/scene.json") if not is_scaled_scene(p.parent)):
        files += [f for f in (scene / "shot.blend", scene / "shot-zstd.blend") if f.is_file()]
    return files


def resolve_files(args: Iterable[str]) -> list[Path]:
    files = [Path(a).resolve() for a in args] or default_files()
    if not files:
        raise SystemExit(f"no benchmark scene in {WORK}: run benchmarks/run.py or make_scene.py first")
    for f in files:
        if not f.is_file():
            raise SystemExit(f"{f}: no such file")
    return files


def label(path: Path) -> str:
    """``4.2.0/shot-zstd.blend`` for a scene file, else the path."""
    try:
        return path.relative_to(WORK).as_posix()
    except ValueError:
        return str(path)


def is_zstd(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(4) == ZSTD_MAGIC


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """(seconds, result) of one call, with the garbage collector run beforehand."""
    gc.collect()
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


def median(times: list[float]) -> float:
    return statistics.median(times) if times else float("nan")


def read_file(path: Path) -> bytes:
    """Baseline: just the file's bytes."""
    return path.read_bytes()


def read_and_decompress(path: Path) -> bytes | bytearray:
    """Baseline: the file's bytes, zstd-decompressed when compressed.

    The fastest plain way found with ``zstandard``: one ``stream_reader`` across
    all frames, read into a buffer pre-sized from Blender's seek table.
    """
    import zstandard

    data = path.read_bytes()
    if not data.startswith(ZSTD_MAGIC):
        return data
    total = _seek_table_total(data)
    reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data), read_across_frames=True)
    if total is None:
        return reader.readall()
    buf = bytearray(total)
    view = memoryview(buf)
    got = 0
    while got < total:
        n = reader.readinto(view[got:])
        if not n:
            break
        got += n
    view.release()
    return buf


def _seek_table_total(data: bytes) -> int | None:
    """Uncompressed size from the zstd seekable-format footer, if there is one."""
    if len(data) < 9:
        return None
    nframes, descriptor, magic = struct.unpack_from("<IBI", data, len(data) - 9)
    if magic != _SEEKABLE_MAGIC:
        return None
    entry = 12 if descriptor & 0x80 else 8
    start = len(data) - 9 - nframes * entry
    return sum(struct.unpack_from("<I", data, start + i * entry + 4)[0] for i in range(nframes))


def count_blocks(path: Path) -> dict[str, int]:
    """Blocks in an uncompressed blend file (ENDB not counted), and how many are IDs.

    A plain walk over the block headers, for make_scene.py's record (its Python
    need not have bat): the 12-byte header of Blender <= 4.x (24-byte block
    headers with 8-byte pointers) or the 17-byte one of 5.0 (32-byte headers).
    """
    data = path.read_bytes()
    if data.startswith(ZSTD_MAGIC):
        raise ValueError(f"{path}: compressed; count the blocks of the uncompressed file")
    if data[7:8] == b"-" and data[8:9] == b"v":
        pos, layout, len_at = 12, struct.Struct("<4sIQii"), 1
    elif data[7:9] == b"17" and data[12:13] == b"v":
        pos, layout, len_at = 17, struct.Struct("<4siQQq"), 3
    else:
        raise ValueError(f"{path}: unsupported blend file header {data[:17]!r}")
    unpack, size = layout.unpack_from, layout.size
    blocks = ids = 0
    while pos + size <= len(data):
        head = unpack(data, pos)
        code = head[0]
        if code == b"ENDB":
            break
        blocks += 1
        if code[2:] == b"\0\0":
            ids += 1
        pos += size + head[len_at]
    return {"blocks": blocks, "id_blocks": ids}


def fmt_s(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms" if seconds < 10 else f"{seconds:8.2f} s "


def table(rows: list[list[str]], header: list[str]) -> str:
    """A plain left-aligned text table."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)


def write_json(path: Path | None, data: Any) -> None:
    if path is not None:
        path.write_text(json.dumps(data, indent=1) + "\n")
