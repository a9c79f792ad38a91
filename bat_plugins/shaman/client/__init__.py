"""Shaman client: ``bat pack`` to a Shaman server, v2 (``shaman://``) and v3 (``flamenco://``).

An entry-point plugin of its own (``shaman-client``), separate from the
server's, so either can be installed or disabled alone.  ``requests`` is
imported only when a Shaman target is resolved.
"""

from __future__ import annotations

from collections.abc import Callable

from bat_core import hookimpl
from bat_core.targets import PackError, Target, TargetScheme

from .urls import V2_SCHEMES, V3_SCHEMES, Endpoint, resolve_endpoint


def make_target(endpoint: Endpoint) -> Target:
    """The pack target for a parsed endpoint."""
    try:
        from .transfer import ShamanTransfer
    except ImportError as exc:
        raise PackError(f"Shaman targets need requests ({exc.name} is missing): pip install 'bat[shaman]'") from None
    transfer = ShamanTransfer(endpoint)
    root = endpoint.shown + (endpoint.checkout if endpoint.api == "v3" else "")
    checkout = (f"checkout {endpoint.checkout}" if endpoint.checkout else "no checkout")
    return Target(root=root, transfer=transfer,
                  description=f"Shaman {endpoint.api} server {endpoint.shown}, {checkout}")


def resolve_shaman(target: str) -> Target:
    return make_target(resolve_endpoint(target, "v2"))


def resolve_flamenco(target: str) -> Target:
    return make_target(resolve_endpoint(target, "v3"))


@hookimpl
def register_target_schemes(register: Callable[[TargetScheme], None]) -> None:
    register(TargetScheme(
        name="shaman",
        help="a Shaman server, Flamenco 2 API (as BAT 1.x): shaman://host[:port]/path/#checkoutID "
             "(HTTPS), shaman+http://...",
        url_schemes=V2_SCHEMES,
        resolve=resolve_shaman,
    ))
    register(TargetScheme(
        name="flamenco",
        help="a Flamenco 3 Manager's Shaman: flamenco://host:port/checkout/path (HTTPS), flamenco+http://...",
        url_schemes=V3_SCHEMES,
        resolve=resolve_flamenco,
    ))
