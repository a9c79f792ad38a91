"""``bat version`` and ``bat plugins``."""

from __future__ import annotations

import json
import platform
from typing import TYPE_CHECKING, Any

import click

from .. import __version__
from .common import set_json

if TYPE_CHECKING:
    from .. import plugins


@click.command()
def version() -> None:
    """Show the version of bat and of Python."""
    click.echo(f"bat {__version__} (Python {platform.python_version()})")


def _as_dict(info: plugins.PluginInfo) -> dict[str, Any]:
    return {
        "name": info.name,
        "distribution": info.distribution,
        "version": info.version,
        "builtin": info.builtin,
        "loaded": info.loaded,
        "hooks": info.hooks,
        "schemes": info.schemes,
        "block_readers": info.block_readers,
        "block_expanders": info.block_expanders,
        "callbacks": info.callbacks,
        "errors": [{"stage": e.stage, "error": e.error} for e in info.errors],
    }


def _line(label: str, items: list[str]) -> None:
    if items:
        click.echo(f"    {label + ':':<17}{', '.join(items)}")


@click.command("plugins")
@click.option("--all", "show_all", is_flag=True, help="Include bat's built-in plugins.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def plugins_cmd(show_all: bool, as_json: bool) -> None:
    """List installed plugins: distribution and version, hooks, target schemes, block readers.

    A plugin that failed (on import or in a hook) is listed with its error.
    Exit status: 0 (also when a plugin failed: it is reported), 2 bad usage.
    """
    set_json(as_json)
    from .. import plugins

    everything = plugins.describe_plugins()
    shown = everything if show_all else [p for p in everything if not p.builtin]
    if as_json:
        click.echo(json.dumps([_as_dict(i) for i in shown], indent=2))
        return
    if not shown:
        click.echo("no third-party plugins installed")
    for info in shown:
        if info.distribution:
            origin = f"{info.distribution} {info.version}" + (", built in" if info.builtin else "")
        else:
            origin = "registered programmatically"
        state = "" if info.loaded else "  FAILED TO LOAD"
        click.echo(f"{info.name}  ({origin}){state}")
        _line("hooks", info.hooks)
        _line("schemes", info.schemes)
        _line("block readers", info.block_readers)
        _line("block expanders", info.block_expanders)
        _line("callbacks", info.callbacks)
        for err in info.errors:
            click.echo(f"    {'error:':<17}{err.stage}: {err.error}")
    if not show_all:
        builtin = [p.name for p in everything if p.builtin]
        if builtin:
            click.echo(f"built in: {', '.join(builtin)} (bat plugins --all for details)")
