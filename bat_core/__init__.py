"""bat: find every file a Blender .blend file depends on, and pack them."""

__version__ = "0.1.0"
