"""The directory target: the fallback for any target string no other scheme claims."""

from __future__ import annotations

from collections.abc import Callable

from bat_core import hookimpl
from bat_core.targets import Target, TargetScheme


def resolve_directory(target: str) -> Target:
    from .transfer import resolve_directory  # the packer's modules: not needed to start bat

    return resolve_directory(target)


@hookimpl
def register_target_schemes(register: Callable[[TargetScheme], None]) -> None:
    register(TargetScheme(
        name="directory",
        help="a local directory, created if needed; files already there with the same content are skipped",
        recognises=lambda target: True,
        resolve=resolve_directory,
        fallback=True,
    ))
