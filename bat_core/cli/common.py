"""What every ``bat`` command shares: the run's state, the blend file check, exit statuses."""

from __future__ import annotations

import os
from pathlib import Path

import click

from ..errors import BlendFileError

#: Exit statuses, the same for every command (docs/cli.md lists them).
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_MISSING = 3
EXIT_INTERRUPTED = 130


class State:
    """Options of the ``bat`` group, and what a command tells ``main()`` about its output.

    ``json`` is set by a command that has a ``--json`` option (True when it was
    given), so that an error is printed as JSON on stdout too; ``json_reported``
    when the command already put its error into the JSON it printed.
    """

    def __init__(self) -> None:
        self.strict_pointers = False
        self.debug = False
        self.verbose = False
        self.quiet = False
        self.json: bool | None = None
        self.json_reported = False
        #: The command line, without the program name.
        self.argv: list[str] = []



def state(ctx: click.Context | None = None) -> State:
    """The run's :class:`State` (a fresh one when a command is invoked outside ``bat``)."""
    ctx = ctx or click.get_current_context()
    root = ctx.find_root()
    if not isinstance(root.obj, State):
        root.obj = State()
    return root.obj


def set_json(as_json: bool) -> None:
    state().json = as_json


def check_blendfile(path: Path) -> None:
    """Refuse what cannot be a blend file before opening it, with the one-line error."""
    try:
        if path.is_dir():
            raise BlendFileError(path, "is a directory, not a blend file")
        if not path.exists():
            if path.is_symlink():
                raise BlendFileError(path, "dangling symbolic link")
            raise BlendFileError(path, "no such file")
        if not os.access(path, os.R_OK):
            raise BlendFileError(path, "permission denied")
    except OSError as exc:
        raise BlendFileError(path, exc.strerror or str(exc)) from exc
