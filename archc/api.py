"""The Python entry points: `archc.check(...)`, `archc.build(...)`, `archc.port(...)`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .compiler.check import Report, UsageError, build_graph, check
from .compiler.program import library_dir


def build(path: str | Path, *, variant: str | None = None, input: str | tuple[int, int, int] | None = None,
          features: bool | str | list[str] | None = None, **params: Any):
    """The network as a torch.nn.Module: the file `archc build` writes, compiled, so the module has its
    classes and names (`model.features[1]` is row 1's block).

        >>> model = build(zoo_path("mobilenet_v3_small.arch"), num_classes=42)
        >>> type(model.features[1]).__name__, model.classifier[2].linear.out_features
        ('Bneck', 42)

    Network parameters go in as Python values (`num_classes=42`, `aux=False`). `features`: a backbone
    instead (compiler/features.py) that returns the feature taps' maps (`archc check` lists them):
    True for every reduction step (a list), or tap names (a dict by name).
    Raises ArchError if the file has errors or a tap name is unknown. Imports torch.
    """
    from .compiler.emit_torch import build_module

    graph = build_graph(path, variant=variant, input=input, **params)
    if features is None or features is False:
        return build_module(graph)
    from .compiler.features import backbone

    return backbone(build_module(graph), graph, features, file=str(path))


def port(model, reference):
    """Copy a reference model's (or state dict's) weights into `model`, position by position."""
    from .compiler.emit_torch import port as port_weights

    return port_weights(model, reference)


def zoo_path(name: str) -> Path:
    """The path of a network shipped with archc.

        >>> zoo_path("mobilenet_v3_small.arch").name
        'mobilenet_v3_small.arch'
    """
    return library_dir() / name




def source(path: str | Path, *, variant: str | None = None, input: str | tuple[int, int, int] | None = None,
           **params: Any) -> str:
    """The network as the text of a Python module that imports only torch: one class
    per block kind, the network class, and `build()`. Raises ArchError if the file
    has errors or cannot be written as source. Does not import torch.

        >>> text = source(zoo_path("resnet.arch"), variant="resnet50")
        >>> print(next(line.strip() for line in text.splitlines() if "for _ in range" in line))
        *[Bottleneck(256, 64) for _ in range(2)],  # 2 more of the row above
    """
    from .compiler.emit_source import emit

    return emit(build_graph(path, variant=variant, input=input, **params))


__all__ = ["Report", "UsageError", "build", "check", "port", "source", "zoo_path"]
