"""``bat version`` and ``bat plugins``."""

from __future__ import annotations

import dataclasses
import json
import platform

import click

from .. import __version__, plugins


@click.command()
def version() -> None:
    """Show the version of bat and of Python."""
    click.echo(f"bat {__version__} (Python {platform.python_version()})")


@click.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def plugins_cmd(as_json: bool) -> None:
    """List installed plugins, the hooks they implement and the target schemes they serve."""
    infos = plugins.describe_plugins()
    if as_json:
        click.echo(json.dumps([dataclasses.asdict(i) for i in infos], indent=2))
        return
    if not infos:
        click.echo("no plugins installed")
    for info in infos:
        origin = f"{info.distribution} {info.version}" if info.distribution else "registered programmatically"
        click.echo(f"{info.name}  ({origin})")
        click.echo(f"    hooks:   {', '.join(info.hooks) or '-'}")
        if info.schemes:
            click.echo(f"    schemes: {', '.join(info.schemes)}")


def register(cli: click.Group) -> None:
    cli.add_command(version)
    cli.add_command(plugins_cmd)
