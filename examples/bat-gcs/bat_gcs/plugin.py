"""The hook bat calls: the ``gs`` target scheme (``gs://bucket/path``).

Registered through the ``bat`` entry-point group (``pyproject.toml``), so
``pip install bat-gcs`` is all it takes; ``bat plugins`` lists it.  bat
imports every plugin each time it runs, ``bat list`` included, so this module
imports nothing heavy: the Google client libraries (most of a second) load
only when a ``gs:`` target is resolved.
"""

from __future__ import annotations

from collections.abc import Callable

from bat_core import hookimpl
from bat_core.targets import Target, TargetScheme

from .address import URL_SCHEME, parse


def resolve(target: str) -> Target:
    """``gs://bucket/path`` (or ``bucket/path`` with ``--target-scheme gs``) as a pack target."""
    address = parse(target)
    from .transfer import GcsTransfer  # the Google libraries: only now

    return Target(root=address.url, transfer=GcsTransfer(address),
                  description=f"Google Cloud Storage {address.url}")


# --8<-- [start:register]
@hookimpl
def register_target_schemes(register: Callable[[TargetScheme], None]) -> None:
    register(TargetScheme(
        name="gs",
        help="Google Cloud Storage: gs://bucket/path (credentials: Application Default Credentials)",
        url_schemes=(URL_SCHEME,),
        resolve=resolve,
    ))
# --8<-- [end:register]
