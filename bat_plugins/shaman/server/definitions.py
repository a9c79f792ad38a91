"""File lists of both APIs: v2's text checkout definition and v3's JSON, one set of path rules.

Every path that will become a file in a checkout is checked here, before
anything touches the disk: relative, ``/``-separated, no empty, ``.`` or ``..``
component, no NUL, control character or backslash, no drive letter, and within
one list no path given twice with different content and no path that is both a
file and a directory.  Flamenco 2 rejects any ``..`` substring (also in
``v1..2.png``); this module looks at whole components instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .store import MAX_SIZE, SHA_RE, Pair

MAX_COMPONENT_BYTES = 255
MAX_PATH_BYTES = 4000
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DRIVE = re.compile(r"[A-Za-z]:")
_SIZE = re.compile(r"\+?[0-9]{1,19}")

# Go's texts where Flamenco 2 has one: clients may show them to people.
ABSOLUTE = "no absolute paths allowed"
UNCLEAN = "paths must be clean and not have any .. in them."


@dataclass(frozen=True)
class FileSpec:
    """One entry of a file list: content and where it goes in the checkout."""

    sha: str
    size: int
    path: str

    @property
    def pair(self) -> Pair:
        return Pair(self.sha, self.size)


class DefinitionError(ValueError):
    """A file list is malformed; ``index`` is the 0-based entry (v2: the line) at fault."""

    def __init__(self, index: int, reason: str) -> None:
        super().__init__(reason)
        self.index = index
        self.reason = reason


def path_problem(path: str) -> str | None:
    """Why ``path`` may not name a file in a checkout, or None when it may."""
    if not path:
        return "empty path"
    if path.startswith("/") or _DRIVE.match(path.split("/", 1)[0]):
        return ABSOLUTE
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return "paths must be valid UTF-8"
    if "\\" in path:
        return "paths must use / and not contain backslashes"
    if _CONTROL.search(path):
        return "paths must not contain NUL or control characters"
    if len(path.encode("utf-8")) > MAX_PATH_BYTES:
        return f"path longer than {MAX_PATH_BYTES} bytes"
    for part in path.split("/"):
        if part in ("", ".", ".."):
            return UNCLEAN
        if len(part.encode("utf-8")) > MAX_COMPONENT_BYTES:
            return f"path component longer than {MAX_COMPONENT_BYTES} bytes"
    return None


def check_list(specs: list[FileSpec]) -> list[FileSpec]:
    """The entries without exact repeats; DefinitionError on conflicting paths."""
    first: dict[str, int] = {}
    out: list[FileSpec] = []
    for i, spec in enumerate(specs):
        seen = first.get(spec.path)
        if seen is None:
            first[spec.path] = i
            out.append(spec)
        elif specs[seen].pair != spec.pair:
            raise DefinitionError(i, f"duplicate path with different content: {spec.path}")
    for i, spec in enumerate(specs):
        parts = spec.path.split("/")
        for depth in range(1, len(parts)):
            parent = "/".join(parts[:depth])
            if parent in first:
                raise DefinitionError(i, f"{parent} is a file, it cannot also be a directory: {spec.path}")
    return out


def parse_cdf(body: bytes) -> list[FileSpec]:
    """Parse a v2 checkout definition (``<sha> <size> <path>`` lines), rules as Flamenco 2.

    DefinitionError.index is the 0-based line number, blank lines included.
    """
    specs: list[FileSpec] = []
    lines: list[int] = []
    for index, raw in enumerate(body.split(b"\n")):
        try:
            line = raw.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise DefinitionError(index, "invalid UTF-8") from None
        if not line:
            continue
        parts = line.split(" ", 2)
        if len(parts) != 3:
            raise DefinitionError(
                index, f"line should consist of three space-separated parts, not {len(parts)}: {line}")
        checksum, size_s, path = parts[0], parts[1], parts[2].strip()
        if not SHA_RE.fullmatch(checksum):
            raise DefinitionError(index, "invalid checksum")
        if not _SIZE.fullmatch(size_s) or int(size_s) > MAX_SIZE:
            raise DefinitionError(index, "invalid file size")
        problem = path_problem(path)
        if problem:
            raise DefinitionError(index, problem)
        specs.append(FileSpec(checksum, int(size_s), path))
        lines.append(index)
    try:
        return check_list(specs)
    except DefinitionError as exc:
        raise DefinitionError(lines[exc.index], exc.reason) from None


def parse_json_files(doc: Any) -> list[FileSpec]:
    """The ``files`` array of a v3 request, validated; ValueError with a message naming the field."""
    if not isinstance(doc, dict):
        raise ValueError("request body must be a JSON object")
    files = doc.get("files")
    if not isinstance(files, list):
        raise ValueError("files: value is required and must be an array")
    specs = []
    for i, item in enumerate(files):
        if not isinstance(item, dict):
            raise ValueError(f"files[{i}]: must be an object")
        sha, size, path = item.get("sha"), item.get("size"), item.get("path")
        if not isinstance(sha, str) or not SHA_RE.fullmatch(sha):
            raise ValueError(f"files[{i}].sha: must be 64 lowercase hexadecimal digits")
        if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= MAX_SIZE:
            raise ValueError(f"files[{i}].size: must be a non-negative integer")
        if not isinstance(path, str):
            raise ValueError(f"files[{i}].path: value is required and must be a string")
        problem = path_problem(path)
        if problem:
            raise ValueError(f"files[{i}].path: {problem}: {path!r}")
        specs.append(FileSpec(sha, size, path))
    try:
        return check_list(specs)
    except DefinitionError as exc:
        raise ValueError(f"files[{exc.index}].path: {exc.reason}") from None
