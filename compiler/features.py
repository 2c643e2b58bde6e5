"""A backbone: the built network's sections run in order up to the last tap asked for, returning the tapped
maps (compiler/taps.py), for detection and segmentation code, like timm's `features_only` and
torchvision's `create_feature_extractor`.

    >>> import torch, archc
    >>> backbone = archc.build(archc.zoo_path("resnet.arch"), variant="resnet18", features=True)
    >>> [tuple(m.shape) for m in backbone(torch.zeros(1, 3, 64, 64))]
    [(1, 64, 32, 32), (1, 64, 16, 16), (1, 128, 8, 8), (1, 256, 4, 4), (1, 512, 2, 2)]
    >>> backbone = archc.build(archc.zoo_path("resnet.arch"), variant="resnet18", features=["features.7"])
    >>> {name: tuple(m.shape) for name, m in backbone(torch.zeros(1, 3, 64, 64)).items()}
    {'features.7': (1, 256, 4, 4)}

The backbone holds the network's own section modules under their own names, so its state_dict keys are
the network's (those of the sections it runs), and weights ported into the network are the backbone's.
"""

from __future__ import annotations

from torch import nn

from .graph import Graph
from .taps import Tap, element_outputs, select


class Backbone(nn.Module):
    """Runs the network's sections in order and returns the tapped maps: a list (features=True) or a
    dict by tap name (features=[names])."""

    def __init__(self, network: nn.Module, graph: Graph, chosen: list[Tap], as_dict: bool):
        super().__init__()
        outputs = element_outputs(graph)
        by_layer = {layer: path for path, layer in outputs.items()}
        heads = set(graph.aux)
        sections = list(dict.fromkeys(e.section for e in graph.elements if e.section not in heads))
        self.names = [t.name for t in chosen]
        self.as_dict = as_dict
        self.at: dict[str, list[str]] = {}  # an entry's module path -> the taps its output is
        for tap in chosen:
            path = by_layer.get(tap.layer)
            if path is None:
                raise ValueError(f"the tap {tap.name!r} is inside a block, not a section's entry")
            self.at.setdefault(path, []).append(tap.name)
        last = max(graph.elements.index(e) for e in graph.elements if e.path in self.at)
        needed = list(dict.fromkeys(e.section for e in graph.elements[:last + 1] if e.section not in heads))
        self.order = [s for s in sections if s in needed]
        for section in self.order:
            self.add_module(section, getattr(network, section))
        self.stop = graph.elements[last].path

    def forward(self, x):
        found = {}
        for section in self.order:
            module = getattr(self, section)
            entries = module.named_children() if isinstance(module, nn.Sequential) else [("", module)]
            for name, child in entries:
                path = f"{section}.{name}" if name else section
                x = child(x)
                for tap in self.at.get(path, ()):
                    found[tap] = x
                if path == self.stop:
                    return {n: found[n] for n in self.names} if self.as_dict else [found[n] for n in self.names]
        raise RuntimeError("the last tap was not reached")  # the graph's entries are the sections' children


def backbone(network: nn.Module, graph: Graph, features, file: str = "") -> Backbone:
    """The backbone of a built network: `features` True for every reduction tap (a list of maps), or tap
    names (a dict); ArchError names an unknown tap with a did-you-mean."""
    return Backbone(network, graph, select(graph, features, file), as_dict=features is not True)
