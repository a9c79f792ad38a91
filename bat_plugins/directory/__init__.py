"""The directory target: the fallback for any target string no other scheme claims."""

from __future__ import annotations

from collections.abc import Callable

from bat_core import hookimpl
from bat_core.targets import TargetScheme

from .transfer import resolve_directory


@hookimpl
def register_target_schemes(register: Callable[[TargetScheme], None]) -> None:
    register(TargetScheme(
        name="directory",
        help="a local directory, created if needed; files already there with the same content are skipped",
        recognises=lambda target: True,
        resolve=resolve_directory,
        fallback=True,
    ))
