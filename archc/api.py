"""The Python entry points: `archc.check(...)` (more as the pipeline grows)."""

from __future__ import annotations

from pathlib import Path

from .compiler.check import Report, UsageError, check
from .compiler.program import library_dir


def zoo_path(name: str) -> Path:
    """The path of a network shipped with archc: `zoo_path("mobilenet_v3_small.arch")`."""
    return library_dir() / name


__all__ = ["check", "zoo_path", "Report", "UsageError"]
