"""Shaman: ``bat shaman serve`` and ``bat shaman gc`` (the server, in ``server/``).

The commands live in :mod:`.commands`; the server modules, and with them
aiohttp, are imported only when a command runs, so ``bat`` starts as fast
without them.
"""

from __future__ import annotations

import click

from bat_core import hookimpl


@hookimpl
def register_commands(cli: click.Group) -> None:
    from .commands import shaman

    cli.add_command(shaman)
