"""The ``bat`` command line: a click group plus the commands plugins add."""

from __future__ import annotations

import logging
import sys
from typing import Any

import click

from .. import plugins
from ..errors import BatError


class Context:
    """Options of the ``bat`` group that every command may need."""

    def __init__(self, strict_pointers: bool, debug: bool) -> None:
        self.strict_pointers = strict_pointers
        self.debug = debug


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Log what is being done.")
@click.option("-d", "--debug", is_flag=True, help="Log everything; show tracebacks on errors.")
@click.option("-q", "--quiet", is_flag=True, help="Log only errors.")
@click.option("-S", "--strict-pointers", is_flag=True,
              help="Treat a pointer to an unknown address as an error instead of a warning.")
@click.pass_context
def cli(ctx: click.Context, verbose: bool, debug: bool, quiet: bool, strict_pointers: bool) -> None:
    """bat: find and pack everything a Blender .blend file depends on."""
    level = logging.DEBUG if debug else logging.INFO if verbose else logging.ERROR if quiet else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s: %(message)s", stream=sys.stderr, force=True)
    ctx.obj = Context(strict_pointers=strict_pointers, debug=debug)


def _load_commands() -> None:
    from . import blocks, info, listing, pack

    blocks.register(cli)
    info.register(cli)
    listing.register(cli)
    pack.register(cli)
    plugins.get_plugin_manager().hook.register_commands(cli=cli)


def main(argv: list[str] | None = None) -> Any:
    """Console-script entry point: runs the CLI, turning BatError into one line and exit 1."""
    args = sys.argv[1:] if argv is None else argv
    debug = any(a in ("-d", "--debug") for a in args)
    try:
        _load_commands()
        return cli.main(args=args, prog_name="bat", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("bat: aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except BatError as exc:
        if debug:
            raise
        click.echo(f"bat: error: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("bat: interrupted", err=True)
        sys.exit(130)
