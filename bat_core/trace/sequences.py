"""Expand a sequence path (frames, UDIM tiles, directories) to the files on disk."""

from __future__ import annotations

import os
import re
from pathlib import Path

_UDIM_TOKENS = re.compile(r"<UDIM>|<UVTILE>")
_LAST_DIGITS = re.compile(r"(\d+)(?!.*\d)")
_TOKEN_REGEX = {"<UDIM>": r"1\d{3}", "<UVTILE>": r"u\d+_v\d+"}


def _listdir(directory: Path) -> list[str]:
    try:
        return sorted(os.listdir(directory))
    except OSError:
        return []


def _match(directory: Path, regex: re.Pattern[str]) -> list[Path]:
    return [directory / name for name in _listdir(directory)
            if regex.fullmatch(name) and (directory / name).is_file()]


def expand_udim(path: Path) -> list[Path]:
    """``tex.<UDIM>.png`` -> the tiles that exist (``tex.1001.png``, ``tex.1002.png``...)."""
    parts = _UDIM_TOKENS.split(path.name)
    tokens = _UDIM_TOKENS.findall(path.name)
    regex = "".join(re.escape(p) + (_TOKEN_REGEX[t] if i < len(tokens) else "")
                    for i, (p, t) in enumerate(zip(parts, [*tokens, ""], strict=True)))
    return _match(path.parent, re.compile(regex))


def expand_frames(path: Path) -> list[Path]:
    """``frame_0001.png`` -> every ``frame_<digits>.png`` beside it; ``#`` runs count too."""
    name = path.name
    if "#" in name:
        regex = re.sub(r"#+", lambda m: rf"\d{{{len(m.group())},}}", re.escape(name).replace(r"\#", "#"))
        return _match(path.parent, re.compile(regex))
    m = _LAST_DIGITS.search(name)
    if m is None:
        return [path] if path.is_file() else []
    regex = re.escape(name[: m.start()]) + r"\d+" + re.escape(name[m.end():])
    return _match(path.parent, re.compile(regex))


def expand_glob(directory: Path, pattern: str) -> list[Path]:
    return sorted(p for p in directory.glob(pattern) if p.is_file())


def expand_directory(path: Path) -> list[Path]:
    """Every file below a directory (bake and cache directories)."""
    out: list[Path] = []
    for root, dirs, files in os.walk(path):
        dirs.sort()
        out.extend(Path(root) / f for f in sorted(files))
    return out


def has_udim_token(path: str | bytes) -> bool:
    text = path.decode("utf-8", "replace") if isinstance(path, bytes) else path
    return bool(_UDIM_TOKENS.search(text))
