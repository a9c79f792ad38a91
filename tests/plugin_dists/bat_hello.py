"""A working third-party plugin: a block reader keyed by struct name, and a command."""

import click

from bat_core import hookimpl


def read_world(block, ctx):  # type: ignore[no-untyped-def]
    return iter(())


@hookimpl
def register_block_readers(register):  # type: ignore[no-untyped-def]
    register("World", read_world)


@hookimpl
def register_commands(cli):  # type: ignore[no-untyped-def]
    @cli.command()
    def hello():  # type: ignore[no-untyped-def]
        """Say hello from a plugin."""
        click.echo("hello from bat-hello")
