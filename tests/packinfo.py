"""The files bat writes into a pack of its own accord, for tests that compare packs.

``pack-info.txt`` (BAT 1.x's note of which blend file to open) goes into every
pack; the directory target adds ``.bat-pack/manifest.json``, the record of what
it owns.  A test that compares a pack with the project's files leaves both out
explicitly and checks the note on its own.
"""

from __future__ import annotations

from collections.abc import Iterable

INFO = "pack-info.txt"
MANIFEST_DIR = ".bat-pack/"


def bat_written(name: str) -> bool:
    """True for a file bat wrote into the pack itself (not a dependency)."""
    return name == INFO or name.startswith(MANIFEST_DIR)


def project_files(names: Iterable[str]) -> set[str]:
    """The packed names that are the project's files: without bat's own."""
    return {n for n in names if not bat_written(n)}


def expected_info(main: str) -> bytes:
    """What ``pack-info.txt`` holds for a pack whose blend file to open is ``main``."""
    return ("This is a Blender Asset Tracer pack.\n"
            "Start by opening the following blend file:\n"
            f"    {main}\n").encode()


def check_info(content: bytes, main: str) -> None:
    """``content`` is the note naming ``main``, in BAT 1.x's three lines."""
    assert content == expected_info(main), content
