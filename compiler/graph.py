"""The graph IR: primitive layers, each with its inferred shapes, parameter and
buffer shapes and MACs, and the edges between them. Built by
compiler/elaborate.py, read by the checker and (later) the emitters, which
never recompute a shape. `Graph.nx()` gives it as a networkx DiGraph for graph
algorithms and drawing; the checker itself only walks layers in build order,
so `archc check` does not pay networkx's import (about 70 ms of its 300).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import prod
from typing import Any

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
    """Where the statement being elaborated stands: its file, the module it adds
    layers to (`scope`, a dotted path), and the table row it came from.

    In a network section, layers and modules get consecutive indices, as in a
    torch Sequential (`features.1` is the block on row 1); inside a block they
    are named after their statements (`features.1.conv2d_1`, compiler/naming.py).
    `if`, residual bodies and gates add no level; a block call, a shortcut and
    each concat branch do.
    """

    file: str
    scope: tuple[str, ...]
    row: Span | None = None
    row_file: str = ""
    counter: list[int] = field(default_factory=lambda: [0])  # shared by every Site of the same module
    named: str | None = None  # the one name the next module takes (an aux head: `aux1`, as torchvision)
    names: dict | None = None  # inside a block: its statements' names (compiler/naming.py)
    pending: list = field(default_factory=lambda: [None])  # the name the statement being run gives its module

    def next_name(self) -> tuple[str, ...]:
        if self.named is not None:
            return self.scope + (self.named,)
        if self.pending[0] is not None:
            name, self.pending[0] = self.pending[0], None
            return self.scope + (name,)
        self.counter[0] += 1
        return self.scope + (str(self.counter[0] - 1),)

    def take(self, role: str, node) -> "Site":
        """Name the next module after `node`'s entry in this block's names (positional outside blocks)."""
        self.pending[0] = self.names.get((role, id(node))) if self.names is not None else None
        return self

    def module(self, file: str | None = None, names: dict | None = None) -> "Site":
        """A nested module at the next name here; `names` when it is a block body."""
        return Site(file or self.file, self.next_name(), self.row, self.row_file, [0], names=names)

    def top(self, name: str) -> "Site":
        """Where a module named `name` sits at the top of the network."""
        return Site(self.file, (), self.row, self.row_file, [0], named=name)

    def at_row(self, row: Span, row_file: str) -> "Site":
        return Site(self.file, self.scope, row, row_file, self.counter, names=self.names, pending=self.pending)


@dataclass
class Instance:
    """A block called at one place: the values of its parameters and its input shape."""

    block: str
    file: str
    values: dict[str, Any]
    in_shape: Shape
    span: Span = NO_SPAN
    row: Span | None = None
    row_file: str = ""
    call_file: str = ""  # the file of the call (`file` is the block's)


@dataclass
class Graph:
    input_shape: Shape
    nodes: dict[str, Layer] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)  # layers in the order they were built (a topological order)
    outputs: dict[str, str] = field(default_factory=dict)  # output name -> layer name
    aux: dict[str, str] = field(default_factory=dict)  # aux head name -> its last layer
    placeholders: dict[str, Shape] = field(default_factory=dict)  # after an error, a row's stated input
    instances: dict[str, Instance] = field(default_factory=dict)  # module path -> the block call that made it
    program: Any = None  # the loaded program (its blocks' statements), for the source emitter
    params: dict[str, Any] = field(default_factory=dict)  # the network's parameter values
    result: str = "input"  # the layer whose output the network returns: the last section's

    def add(self, layer: Layer) -> None:
        self.nodes[layer.name] = layer
        self.order.append(layer.name)

    def __contains__(self, name: str) -> bool:
        return name in self.nodes

    def layer(self, name: str) -> Layer:
        return self.nodes[name]

    def nx(self):
        """The graph as a networkx DiGraph: node "input", then a node per layer
        (attribute `layer`) and an edge from each input to its consumer."""
        import networkx

        g = networkx.DiGraph()
        g.add_node("input", shape=self.input_shape)
        for name, shape in self.placeholders.items():
            g.add_node(name, shape=shape)
        for layer in self.layers():
            g.add_node(layer.name, layer=layer, shape=layer.out_shape)
            for source in layer.inputs:
                g.add_edge(source, layer.name)
        return g

    def layers(self) -> list[Layer]:
        return [self.layer(n) for n in self.order]

    def shape_of(self, name: str) -> Shape:
        if name == "input":
            return self.input_shape
        if name in self.placeholders:
            return self.placeholders[name]
        return self.layer(name).out_shape
