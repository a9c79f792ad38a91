"""The ``bat shaman`` command group.

Other Shaman commands join the group here (``shaman.add_command(...)`` or a
``@shaman.command()`` in this module); keep imports of heavy modules inside
the command functions so ``bat --help`` stays quick.
"""

from __future__ import annotations

import logging
import re
import sys
from pathlib import Path

import click

from bat_core.errors import BatError

_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(text: str) -> int:
    """``0``, ``500M``, ``10G``, ``1.5T`` (powers of 1024) in bytes."""
    m = _SIZE.fullmatch(text.strip())
    if not m:
        raise click.BadParameter(f"not a size like 500M or 10G: {text!r}")
    return int(float(m.group(1)) * _SIZE_UNITS[m.group(2).lower()])


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


@click.group()
def shaman() -> None:
    """Run a Shaman server (Flamenco 2 and 3 APIs) and maintain its store."""


@shaman.command()
@click.option("--storage", required=True, type=click.Path(path_type=Path),
              help="The file store (created if missing): stored/ and uploading/ go here.")
@click.option("--checkouts", required=True, type=click.Path(path_type=Path),
              help="Where checkouts are created; workers must see this directory.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on; 0 picks a free one (printed at start-up).")
@click.option("--jwt-secret", envvar="BAT_SHAMAN_JWT_SECRET", default=None,
              help="Secret that signs and checks v2 tokens; share it between servers on one store. "
                   "[env: BAT_SHAMAN_JWT_SECRET]")
@click.option("--no-auth", is_flag=True, help="Accept v2 requests without a token.")
@click.option("--no-get-token", is_flag=True,
              help="Do not hand out tokens at GET /get-token (clients then need SHAMAN_JWT_TOKEN).")
@click.option("--api", type=click.Choice(["v2", "v3", "both"]), default="both", show_default=True,
              help="Which Shaman APIs to serve: v2 at /, v3 at /api/v3/.")
@click.option("--v3-token", envvar="BAT_SHAMAN_V3_TOKEN", default=None,
              help="Require 'Authorization: Bearer TOKEN' on the v3 Shaman routes. [env: BAT_SHAMAN_V3_TOKEN]")
@click.option("--min-free", default="0", show_default=True,
              help="Refuse uploads (507) that would leave less than this free on the store's disk, e.g. 10G.")
@click.option("--idle-timeout", default=300.0, show_default=True, type=click.FloatRange(min=0.1),
              help="Seconds an upload may send nothing before it is dropped.")
@click.option("--worker-path", "worker_paths", multiple=True, metavar="PLATFORM=PATH",
              help="Where workers of PLATFORM (linux, windows, darwin) see the checkouts directory, "
                   "for v3's shared-storage answer; repeatable.")
def serve(storage: Path, checkouts: Path, host: str, port: int, jwt_secret: str | None, no_auth: bool,
          no_get_token: bool, api: str, v3_token: str | None, min_free: str, idle_timeout: float,
          worker_paths: tuple[str, ...]) -> None:
    """Serve a Shaman store over HTTP until interrupted."""
    if jwt_secret is not None and no_auth:
        raise click.UsageError("--jwt-secret and --no-auth exclude each other")
    paths: dict[str, str] = {}
    for item in worker_paths:
        system, sep, where = item.partition("=")
        if not sep or not system or not where:
            raise click.BadParameter(f"expected PLATFORM=PATH, got {item!r}", param_hint="--worker-path")
        paths[system.lower()] = where
    try:
        import aiohttp  # noqa: F401
    except ImportError:
        raise BatError("bat shaman serve needs aiohttp: pip install 'bat[shaman-server]'") from None
    import asyncio
    import secrets

    from .server.app import ServerConfig
    from .server.serve import serve as run
    from .server.store import StoreError

    log = logging.getLogger("bat.shaman")
    if jwt_secret is None and not no_auth and api != "v3":
        log.warning("no --jwt-secret: v2 tokens from this server's get-token work with this process only")
    config = ServerConfig(
        storage=storage, checkouts=checkouts, api=api,
        jwt_secret=jwt_secret.encode("utf-8") if jwt_secret else secrets.token_bytes(32),
        auth=not no_auth, get_token=not no_get_token, v3_token=v3_token or None,
        min_free=parse_size(min_free), idle_timeout_s=idle_timeout, worker_paths=paths)

    def ready(urls: list[str]) -> None:
        apis = {"v2": "v2 at /", "v3": "v3 at /api/v3/", "both": "v2 at /, v3 at /api/v3/"}[api]
        click.echo(f"bat shaman: listening on {' '.join(urls)} ({apis}); "
                   f"storage {config.storage.resolve()}, checkouts {config.checkouts.resolve()}", err=True)
        sys.stderr.flush()

    try:
        asyncio.run(run(config, host, port, ready))
    except StoreError as exc:
        raise BatError(str(exc)) from None
    except OSError as exc:
        where = exc.filename or f"{host}:{port}"
        raise BatError(f"{where}: {exc.strerror or exc}") from None


@shaman.command()
@click.option("--storage", required=True, type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="The file store given to 'bat shaman serve'.")
@click.option("--checkouts", required=True, type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="The checkouts directory given to 'bat shaman serve' (both APIs' checkouts).")
@click.option("--older-than", default="31d", show_default=True,
              help="Delete only blobs not touched for this long (at least 1h): 31d, 12h, 1d12h, 2w.")
@click.option("--dry-run", is_flag=True, help="Only list what would be deleted.")
def gc(storage: Path, checkouts: Path, older_than: str, dry_run: bool) -> None:
    """Delete stored files that no checkout links to and nobody used lately."""
    from .server.gc import collect_garbage, parse_age
    from .server.store import FileStore

    try:
        age = parse_age(older_than)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--older-than") from None
    store = FileStore(storage)
    if not store.stored.is_dir():
        raise BatError(f"{storage}: not a Shaman store (no stored/ directory)")
    try:
        report = collect_garbage(store, checkouts, age, dry_run=dry_run)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--older-than") from None
    verb = "would delete" if dry_run else "deleted"
    for path in report.deleted:
        logging.getLogger("bat.shaman").info("%s %s", verb, path.relative_to(store.root).as_posix())
    click.echo(f"bat shaman gc: {report.blobs} blobs, {report.old} older than {older_than}, "
               f"{report.linked} of those linked, {report.touched} touched meanwhile; "
               f"{verb} {len(report.deleted)} ({_human(report.freed_bytes)})"
               + (f"; removed {report.stale_temps} stale upload(s)" if report.stale_temps else "")
               + (f", {report.stale_builds} abandoned checkout build(s)" if report.stale_builds else ""))


@shaman.command()
@click.option("--jwt-secret", envvar="BAT_SHAMAN_JWT_SECRET", required=True,
              help="The secret the servers were started with. [env: BAT_SHAMAN_JWT_SECRET]")
@click.option("--subject", default="bat-shaman-client", show_default=True, help="Who the token is for.")
@click.option("--lifetime", default="30d", show_default=True, help="How long the token is valid: 30d, 12h...")
def token(jwt_secret: str, subject: str, lifetime: str) -> None:
    """Print a v2 token (for SHAMAN_JWT_TOKEN) signed with the servers' secret."""
    from .server.auth import make_token
    from .server.gc import parse_age

    try:
        seconds = parse_age(lifetime)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--lifetime") from None
    click.echo(make_token(jwt_secret.encode("utf-8"), subject, lifetime_s=seconds))


# The client's command (bat_plugins/shaman/client/push.py).
from .client.push import push  # noqa: E402

shaman.add_command(push)
