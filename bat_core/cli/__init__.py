"""The ``bat`` command line: a click group plus the commands plugins add.

Global options come before the command, as in BAT 1.x (``bat -v list x.blend``).
Every failure ends in one line on stderr, ``bat: error: <file>: <what>``, and
the exit status of docs/cli.md; with ``--json`` the error is also printed on
stdout as ``{"error": ..., "exit_status": ...}`` so that a ``| jq`` pipeline
sees it.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import sys
import traceback
from typing import Any, NamedTuple

import click

from ..errors import BatError
from .common import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_USAGE, State

#: Where ``-p``/``--profile`` writes its cProfile data (BAT 1.x's name for it).
PROFILE_FILE = "bam.prof"

log = logging.getLogger("bat_core.cli")


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time (test runners swap it)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


class _Formatter(logging.Formatter):
    """``bat: warning: ...``; with ``-d`` the logger name too, and tracebacks."""

    def __init__(self, debug: bool) -> None:
        super().__init__()
        self.debug = debug

    def format(self, record: logging.LogRecord) -> str:
        where = f"{record.name}: " if self.debug else ""
        text = f"bat: {record.levelname.lower()}: {where}{record.getMessage()}"
        if record.exc_info and self.debug:
            text += "\n" + self.formatException(record.exc_info)
        return text


def configure_logging(level: int, debug: bool) -> None:
    """One handler on the root logger, replacing the one an earlier run in this process set."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, _StderrHandler):
            root.removeHandler(handler)
    handler = _StderrHandler()
    handler.setFormatter(_Formatter(debug))
    root.addHandler(handler)
    root.setLevel(level)


def _start_profile(ctx: click.Context, quiet: bool) -> None:
    import cProfile

    profiler = cProfile.Profile()

    def finish() -> None:
        profiler.disable()
        profiler.dump_stats(PROFILE_FILE)
        if not quiet:
            click.echo(f"bat: profile written to {os.path.abspath(PROFILE_FILE)}", err=True)

    ctx.call_on_close(finish)
    profiler.enable()


class Builtin(NamedTuple):
    """A built-in command: where it is, and its one-line help for ``bat --help``."""

    module: str
    attr: str
    summary: str


#: The built-in commands, imported only when run (``tests/test_cli_startup.py`` checks the help
#: lines against the commands' own docstrings).
BUILTIN_COMMANDS = {
    "blocks": Builtin("bat_core.cli.blocks", "blocks",
                      "Show the blocks of BLENDFILE per DNA type: total size, count, average and median size."),
    "list": Builtin("bat_core.cli.listing", "list_cmd",
                    "List the files BLENDFILE depends on, grouped by the blend file that uses them."),
    "pack": Builtin("bat_core.cli.pack", "pack_cmd",
                    "Pack BLENDFILE and everything it depends on into TARGET (a directory, a .zip file, or a URL)."),
    "plugins": Builtin("bat_core.cli.info", "plugins_cmd",
                       "List installed plugins: distribution and version, hooks, target schemes, block readers."),
    "version": Builtin("bat_core.cli.info", "version", "Show the version of bat and of Python."),
}


#: Commands that bat's own plugins add (``bat_plugins``), listed by ``bat --help`` without loading
#: any plugin when no third-party one is installed; running one loads the plugins as usual.
OWN_PLUGIN_COMMANDS = {
    "shaman": Builtin("bat_plugins.shaman.commands", "shaman",
                      "Run a Shaman server (Flamenco 2 and 3 APIs) and maintain its store."),
}


class BatGroup(click.Group):
    """The ``bat`` group: a built-in command's module is imported when that command runs.

    Plugin commands are added to ``commands`` by :func:`load_plugin_commands`;
    listing the commands (``bat --help``) uses the built-ins' help lines
    without importing them.
    """

    #: Set when ``bat --help`` lists bat's own plugin commands from OWN_PLUGIN_COMMANDS.
    own_plugins_unloaded = False

    def _summaries(self) -> dict[str, Builtin]:
        return {**BUILTIN_COMMANDS, **(OWN_PLUGIN_COMMANDS if self.own_plugins_unloaded else {})}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(self._summaries()) | set(self.commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = self.commands.get(cmd_name)
        if command is None and cmd_name in BUILTIN_COMMANDS:
            spec = BUILTIN_COMMANDS[cmd_name]
            command = getattr(importlib.import_module(spec.module), spec.attr)
            assert isinstance(command, click.Command)
            self.add_command(command, cmd_name)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        width = formatter.width - 6 - max((len(n) for n in self.list_commands(ctx)), default=0)
        for name in self.list_commands(ctx):
            command = self.commands.get(name) or click.Command(name, help=self._summaries()[name].summary)
            if not command.hidden:
                rows.append((name, command.get_short_help_str(width)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=BatGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-p", "--profile", is_flag=True,
              help=f"Run the command under the Python profiler; write the profile to {PROFILE_FILE} "
                   "(as BAT 1.x).")
@click.option("-v", "--verbose", is_flag=True, help="Log what is being done.")
@click.option("-d", "--debug", is_flag=True, help="Log everything; show tracebacks on errors.")
@click.option("-q", "--quiet", is_flag=True, help="Log only errors (not with -v or -d).")
@click.option("-S", "--strict-pointers", is_flag=True,
              help="Treat a pointer to an unknown address as an error instead of a warning.")
@click.pass_context
def cli(ctx: click.Context, profile: bool, verbose: bool, debug: bool, quiet: bool,
        strict_pointers: bool) -> None:
    """bat: find and pack everything a Blender .blend file depends on."""
    if quiet and (verbose or debug):
        raise click.UsageError("-q/--quiet cannot be used with -v/--verbose or -d/--debug")
    level = logging.DEBUG if debug else logging.INFO if verbose else logging.ERROR if quiet else logging.WARNING
    configure_logging(level, debug)
    st = ctx.obj if isinstance(ctx.obj, State) else State()
    st.strict_pointers, st.debug, st.verbose, st.quiet = strict_pointers, debug, verbose, quiet
    ctx.obj = st
    log.debug("bat %s, Python %s, arguments %s", _version(), sys.version.split()[0], st.argv)
    if profile:
        _start_profile(ctx, quiet)


def _version() -> str:
    from .. import __version__

    return __version__


def load_plugin_commands() -> None:
    """Let the plugins add their commands (this loads every plugin: not for built-in commands)."""
    from .. import plugins

    plugins.register_commands(cli)


def _only_own_plugins() -> bool:
    """No plugin but bat's own is installed, and none was registered in this process: the
    commands plugins add are known without loading them (``bat --help`` stays quick)."""
    if "bat_core.plugins" in sys.modules:
        return False  # plugins loaded (or registered programmatically) in this process
    from ..entry_points import BUILTIN_DISTRIBUTION, DISABLE_ENV, entry_points, normalise

    # BAT_TRACE_PLUGINS: plugin_trace.TRACE_ENV (that module imports pluggy).
    if os.environ.get(DISABLE_ENV) or os.environ.get("BAT_TRACE_PLUGINS"):
        return False  # a plugin left out, or every hook call to be shown: load them as asked
    return all(normalise(ep.distribution) == BUILTIN_DISTRIBUTION for ep in entry_points("bat"))


def _global_flags(args: list[str]) -> set[str]:
    """The one-letter global flags given before the command (``-vS`` counts as ``-v -S``)."""
    names = {"--verbose": "v", "--debug": "d", "--quiet": "q", "--profile": "p", "--strict-pointers": "S"}
    out: set[str] = set()
    for arg in args:
        if not arg.startswith("-") or arg == "--":
            break
        if arg.startswith("--"):
            out.add(names.get(arg, ""))
        else:
            out.update(arg[1:])
    return out


def _early_logging(args: list[str]) -> None:
    """Logging as the global flags ask, before plugins load (their failures are logged)."""
    flags = _global_flags(args)
    if "q" in flags and flags & {"v", "d"}:
        flags -= {"q", "v", "d"}  # a usage error follows; nothing before it
    debug = "d" in flags
    level = logging.DEBUG if debug else logging.INFO if "v" in flags else \
        logging.ERROR if "q" in flags else logging.WARNING
    configure_logging(level, debug)


def _command_name(args: list[str]) -> str | None:
    """The command in ``args``: the first word after the global options (which take no values)."""
    for arg in args:
        if arg == "--":
            return None
        if not arg.startswith("-"):
            return arg
    return None


def argv_wants_json(args: list[str]) -> bool:
    """Whether the command line asks for JSON output: for errors found before a command runs."""
    command = _command_name(args)
    words = args[: args.index("--")] if "--" in args else args
    for i, arg in enumerate(words):
        if arg == "--json" or arg.startswith("--format=json"):
            return True
        if arg == "--format" and i + 1 < len(words) and words[i + 1].startswith("json"):
            return True
        if command == "list" and len(arg) > 1 and arg[0] == "-" and arg[1] != "-" and "j" in arg[1:]:
            return True
    return False


def _one_line(text: str) -> str:
    return "; ".join(line.strip() for line in text.strip().splitlines() if line.strip())


def _fail(st: State, args: list[str], message: str, code: int) -> None:
    message = _one_line(message)
    click.echo(f"bat: error: {message}", err=True)
    wants_json = st.json if st.json is not None else argv_wants_json(args)
    if wants_json and not st.json_reported:
        try:
            click.echo(json.dumps({"error": message, "exit_status": code}, ensure_ascii=False))
        except OSError:
            _drop_stdout()  # stdout is what failed (a full disk, a closed pipe): stderr said it
    sys.exit(code)


def _drop_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's final flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _usage_message(exc: click.UsageError) -> str:
    message = exc.format_message()
    if exc.ctx is not None:
        message += f" (see '{exc.ctx.command_path} --help')"
    return message


def _os_error_message(exc: OSError) -> str:
    if exc.filename is not None:
        return f"{os.fsdecode(exc.filename)}: {exc.strerror or exc}"
    return exc.strerror or str(exc)


def main(argv: list[str] | None = None) -> Any:
    """Console-script entry point: runs the CLI, turning every failure into one line and an exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    st = State()  # filled in by the group's options once they are parsed
    st.argv = args
    _early_logging(args)
    try:
        name = _command_name(args)
        lazy = name is None and _only_own_plugins()
        cli.own_plugins_unloaded = lazy
        if not lazy and name not in BUILTIN_COMMANDS:
            load_plugin_commands()  # a plugin's command, or the help that lists them all
        return cli.main(args=args, prog_name="bat", standalone_mode=False, obj=st)
    except click.exceptions.Abort:
        click.echo("bat: aborted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except click.exceptions.NoArgsIsHelpError as exc:
        # `bat` alone: the help, on stderr, and the usage status (as BAT 1.x).
        click.echo(exc.ctx.get_help() if exc.ctx is not None else exc.format_message(), err=True)
        sys.exit(EXIT_USAGE)
    except click.UsageError as exc:
        _fail(st, args, _usage_message(exc), EXIT_USAGE)
    except click.ClickException as exc:
        _fail(st, args, exc.format_message(), exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except BatError as exc:
        if st.debug:
            traceback.print_exc()
        _fail(st, args, str(exc), EXIT_ERROR)
    except KeyboardInterrupt:
        click.echo("bat: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except BrokenPipeError:
        # The reader of stdout went away (`bat list x | head`): stop quietly.
        _drop_stdout()
        sys.exit(EXIT_ERROR)
    except OSError as exc:
        if st.debug:
            traceback.print_exc()
        _fail(st, args, _os_error_message(exc), EXIT_ERROR)
    except Exception as exc:
        if st.debug:
            traceback.print_exc()
        _fail(st, args, f"internal error: {type(exc).__name__}: {exc} (run with -d for the traceback)",
              EXIT_ERROR)
    return None
