"""The graph IR: a networkx DiGraph of primitive layers, each with its inferred
shapes, parameter and buffer shapes and MACs. Built by compiler/elaborate.py,
read by the checker and (later) the emitters, which never recompute a shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import prod
from typing import Any

import networkx as nx

from ..dsl.ast import NO_SPAN, Span
from .ops import OPS, Op, Shape


@dataclass
class Layer:
    name: str  # dotted path: section, row or statement index, then inside the block
    op: str
    attrs: Any  # the op's pydantic Attrs
    inputs: list[str]  # names of the layers feeding it ("input" for the network input)
    in_shapes: list[Shape]
    out_shape: Shape
    params: dict[str, Shape]
    buffers: dict[str, Shape]
    macs: int
    file: str = ""
    span: Span = NO_SPAN
    row: Span | None = None  # the table row it came from, if any
    row_file: str = ""
    aux: bool = False  # on a training-only branch (auxiliary head)

    @property
    def spec(self) -> Op:
        return OPS[self.op]

    @property
    def param_count(self) -> int:
        return sum(prod(s) for s in self.params.values())

    @property
    def buffer_count(self) -> int:
        return sum(prod(s) for s in self.buffers.values())


@dataclass(frozen=True)
class Tensor:
    """A value flowing between layers during elaboration: its producer and shape."""

    name: str
    shape: Shape


@dataclass
class Site:
    """Where the statement being elaborated stands: its file, its layer-name path, its table row."""

    file: str
    scope: tuple[str, ...]
    row: Span | None = None
    row_file: str = ""


@dataclass
class Graph:
    input_shape: Shape
    g: nx.DiGraph = field(default_factory=nx.DiGraph)
    order: list[str] = field(default_factory=list)  # layers in the order they were built
    outputs: dict[str, str] = field(default_factory=dict)  # output name -> layer name
    aux: dict[str, str] = field(default_factory=dict)  # aux head name -> its last layer
    placeholders: dict[str, Shape] = field(default_factory=dict)  # after an error, a row's stated input

    def add(self, layer: Layer) -> None:
        self.g.add_node(layer.name, layer=layer)
        for source in layer.inputs:
            self.g.add_edge(source, layer.name)
        self.order.append(layer.name)

    def layer(self, name: str) -> Layer:
        return self.g.nodes[name]["layer"]

    def layers(self) -> list[Layer]:
        return [self.layer(n) for n in self.order]

    def shape_of(self, name: str) -> Shape:
        if name == "input":
            return self.input_shape
        if name in self.placeholders:
            return self.placeholders[name]
        return self.layer(name).out_shape
