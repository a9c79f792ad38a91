"""The ``bat`` entry points, read straight from the installed distributions' metadata.

``importlib.metadata`` would do, but importing it and parsing every
distribution's ``METADATA`` (an e-mail parser per package) costs more than
the rest of ``bat --help``.  An entry point needs only the
``entry_points.txt`` of each ``*.dist-info`` (or ``*.egg-info``) directory on
``sys.path``, and the distribution's name and version are in the directory's
name (``bat_gcs-0.1.0.dist-info``, the wheel naming rule).  As with
``importlib.metadata``, the first distribution of a name on ``sys.path`` wins.
Zipped eggs on ``sys.path`` are not looked into.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from dataclasses import dataclass
from typing import Any

#: The distribution whose plugins are bat's own (always loaded, never guarded at run time).
BUILTIN_DISTRIBUTION = "bat"
#: Comma-separated plugin names not to load from entry points (e.g. for debugging).
DISABLE_ENV = "BAT_DISABLE_PLUGINS"


def normalise(name: str) -> str:
    """A distribution or plugin name as PEP 503 compares them (``Bat_GCS`` is ``bat-gcs``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class EntryPoint:
    name: str
    #: ``module:attribute`` (the attribute may be dotted or absent).
    value: str
    #: The distribution's name as its metadata directory spells it, with ``-`` for ``_``.
    distribution: str
    version: str | None

    def load(self) -> Any:
        module, _, attr = self.value.partition(":")
        obj: Any = importlib.import_module(module.strip())
        for part in filter(None, attr.strip().split(".")):
            obj = getattr(obj, part)
        return obj


def _section(text: str, group: str) -> list[tuple[str, str]]:
    """``name = value`` lines of one ``[group]`` of an ``entry_points.txt`` (an INI file)."""
    out: list[tuple[str, str]] = []
    inside = False
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            inside = line[1:-1].strip() == group
            continue
        if inside and "=" in line:
            name, _, value = line.partition("=")
            out.append((name.strip(), value.strip()))
    return out


def _egg_version(path: str) -> str | None:
    try:
        with open(os.path.join(path, "PKG-INFO"), encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("Version:"):
                    return line.partition(":")[2].strip()
                if not line.strip():
                    break
    except OSError:
        pass
    return None


def entry_points(group: str, path: list[str] | None = None) -> list[EntryPoint]:
    """Every entry point of ``group`` of the distributions on ``path`` (default ``sys.path``)."""
    found: list[EntryPoint] = []
    seen: set[str] = set()
    for entry in sys.path if path is None else path:
        directory = entry or "."
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            continue  # a missing directory, a zip file
        for name in names:
            stem, dot, kind = name.rpartition(".")
            if not dot or kind not in ("dist-info", "egg-info"):
                continue
            dist, _, version = stem.partition("-")
            key = normalise(dist)
            if key in seen:
                continue
            seen.add(key)
            meta = os.path.join(directory, name)
            try:
                with open(os.path.join(meta, "entry_points.txt"), encoding="utf-8") as fh:
                    text = fh.read()
            except (OSError, UnicodeDecodeError):
                continue
            shown = dist.replace("_", "-")
            if kind == "egg-info" and not version:
                version = _egg_version(meta) or ""
            for ep_name, value in _section(text, group):
                found.append(EntryPoint(ep_name, value, shown, version or None))
    return found
