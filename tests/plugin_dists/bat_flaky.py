"""A plugin that loads fine, but whose block reader and progress callback raise when called."""

from bat_core import hookimpl
from bat_core.progress import PackCallback


def read_object(block, ctx):  # type: ignore[no-untyped-def]
    raise KeyError("flaky reader: no such field")
    yield  # a generator, like every reader


class FlakyProgress(PackCallback):
    def trace_asset(self, path):  # type: ignore[no-untyped-def]
        raise OSError("flaky progress: the dashboard is down")

    def pack_done(self, output_blendfile, missing_files):  # type: ignore[no-untyped-def]
        raise OSError("flaky progress: the dashboard is down")


@hookimpl
def register_block_readers(register):  # type: ignore[no-untyped-def]
    register(b"OB", read_object)


@hookimpl
def register_callbacks(register):  # type: ignore[no-untyped-def]
    register(FlakyProgress())
