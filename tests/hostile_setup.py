"""Lay out a copy of the ``hostile`` fixture with the files its paths name.

The blend files were made by Blender (``tests/data/gen_paths.py``); what they
point at is created here, because git cannot hold FIFOs or sockets and some
names are awkward elsewhere: a name over 255 bytes (for ENAMETOOLONG), a
symbolic-link loop (ELOOP), a path through a regular file (ENOTDIR), a FIFO
where an image should be, and cache directories holding a FIFO, a socket, a
dangling link and a link into ``/proc`` beside real files.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import struct
import zlib
from pathlib import Path


def png(width: int) -> bytes:
    """A valid 1-pixel-high PNG ``width`` pixels wide (Blender must be able to read it)."""
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))
    raw = b"\0" + b"\x10\x20\x30" * width
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, 1, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


HOSTILE = Path(__file__).resolve().parent / "data" / "paths" / "v50" / "hostile"


def make_hostile(base: Path) -> Path:
    """Copy the scenario below ``base``; returns the project root (``proj``)."""
    root = base / "hostile"
    shutil.copytree(HOSTILE, root)
    proj = root / "proj"
    shot = proj / "shot"
    spec = json.loads((shot / "main.blend.json").read_text())
    for n, rel in enumerate(spec["hostile_files"]):
        f = shot / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(png(n + 2))  # each its own width, so which file is read shows
    os.mkfifo(shot / "tex" / "fifo.png")
    os.symlink("loop", shot / "loop")  # loop/x.png: ELOOP
    # Cache directories: real files beside things that must never be read.
    for cache, real in ((shot / "cache_ocean", "disp_0001.exr"), (shot / "cache_fluid" / "data", "fluid_0001.vdb")):
        cache.mkdir(parents=True)
        (cache / real).write_bytes(b"baked")
        os.mkfifo(cache / ("foam_0001.exr" if "ocean" in str(cache) else "fifo_0001.vdb"))
        os.symlink("/nonexistent/bat-dangling", cache / ("normal_0001.exr" if "ocean" in str(cache) else "gone.vdb"))
        os.symlink("/proc/self/environ", cache / ("spray_0001.exr" if "ocean" in str(cache) else "environ.vdb"))
        sock = socket.socket(socket.AF_UNIX)
        try:
            sock.bind(str(cache / ("disp_0002.exr" if "ocean" in str(cache) else "sock.vdb")))
        except OSError:
            pass  # a path too long for a socket: the other entries still do
        finally:
            sock.close()
    return proj
