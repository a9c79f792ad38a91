"""Dependency tracing: which files does a blend file (and its libraries) use?"""

from .report import Problem, problems
from .tracer import BlendFileCache, TraceContext, Tracer, is_id_block, library_path, library_path_field, trace
from .usage import BlockUsage

__all__ = ["BlendFileCache", "BlockUsage", "Problem", "TraceContext", "Tracer", "is_id_block", "library_path",
           "library_path_field", "problems", "trace"]
