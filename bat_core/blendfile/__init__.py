"""Read and write Blender's .blend file format, driven entirely by the file's own DNA."""

from .block import Block, StructView
from .compression import Compression
from .dna import DNA, Field, Struct
from .file import BlendFile, open_blend
from .header import BlendHeader

__all__ = [
    "DNA",
    "BlendFile",
    "BlendHeader",
    "Block",
    "Compression",
    "Field",
    "Struct",
    "StructView",
    "open_blend",
]
