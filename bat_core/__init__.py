"""bat: find every file a Blender .blend file depends on, and pack them."""

__version__ = "0.1.0"

from .hookspecs import hookimpl

__all__ = ["__version__", "hookimpl"]
