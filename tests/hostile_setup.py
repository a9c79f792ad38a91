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
from pathlib import Path

HOSTILE = Path(__file__).resolve().parent / "data" / "paths" / "v50" / "hostile"


def make_hostile(base: Path) -> Path:
    """Copy the scenario below ``base``; returns the project root (``proj``)."""
    root = base / "hostile"
    shutil.copytree(HOSTILE, root)
    proj = root / "proj"
    shot = proj / "shot"
    spec = json.loads((shot / "main.blend.json").read_text())
    for rel in spec["hostile_files"]:
        f = shot / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(b"\x89PNG hostile " + rel[-40:].encode("utf-8", "surrogateescape"))
    (shot / "tex" / "Case.png").write_bytes(b"\x89PNG upper")
    (shot / "tex" / "case.png").write_bytes(b"\x89PNG lower")
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
