"""The ZIP target: any target ending in ``.zip``."""

from __future__ import annotations

import os
from collections.abc import Callable

from bat_core import hookimpl
from bat_core.targets import Target, TargetScheme


def resolve_zip(target: str) -> Target:
    from .transfer import resolve_zip  # the packer's modules: not needed to start bat

    return resolve_zip(target)


def _recognises(target: str) -> bool:
    return target.lower().endswith(".zip") and not os.path.isdir(target)


@hookimpl
def register_target_schemes(register: Callable[[TargetScheme], None]) -> None:
    register(TargetScheme(
        name="zip",
        help="a ZIP file (targets ending in .zip); compressed media stored, the rest deflated",
        recognises=_recognises,
        resolve=resolve_zip,
    ))
