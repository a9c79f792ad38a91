"""A plugin whose register_block_readers hook raises half-way through."""

from bat_core import hookimpl


def read_nothing(block, ctx):  # type: ignore[no-untyped-def]
    return iter(())


@hookimpl
def register_block_readers(register):  # type: ignore[no-untyped-def]
    register(b"IM", read_nothing)
    raise ValueError("bat-broken-hook: configuration file not found")
