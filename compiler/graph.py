"""The IR: what elaboration decided, once, for every output to read.

- `Layer`: a primitive with its op spec, concrete attributes, inferred shapes,
  parameter and buffer shapes and MACs, and the edges into it.
- `Instance`: a block called at one place, with its argument values, input shape
  and a trace of what each of its template's statements did there (the branch an
  `if` took, a `let`'s value, the module a call made; compiler/lower.py keys).
- `Element`: one entry of a network section's Sequential (a block instance or a
  layer), with the table row and repeat it came from.
- `CellRecord`: a size or figure cell of a table with what elaboration found,
  which compiler/cells.py compares.

`archc check` reports from the layers, `emit_source` writes the file from the
instances and elements, and the in-memory module is that file compiled: nothing
downstream evaluates a DSL expression or infers a shape again. `Graph.nx()`
gives the layers as a networkx DiGraph for graph algorithms and drawing; the
checker itself walks layers in build order, so `archc check` does not pay
networkx's import.
"""

from __future__ import annotations

from functools import cached_property
from math import prod
from typing import Any

from ..dsl.ast import NO_SPAN, Span
from ..dsl.record import Record
from .ops import OPS, Op, Shape


class Layer(Record):
    name: str  # dotted module path: section, position or statement name, then inside the block
    op: str
    attrs: Any  # the op's pydantic Attrs
    inputs: tuple[str, ...]  # names of the layers feeding it ("input" for the network input)
    in_shapes: tuple[Shape, ...]
    out_shape: Shape
    params: dict[str, Shape]
    buffers: dict[str, Shape]
    macs: int
    file: str = ""
    span: Span = NO_SPAN
    row: Span | None = None  # the table row it came from, if any
    row_file: str = ""
    aux: bool = False  # on a training-only branch (auxiliary head)
    owner: str = ""  # the module path of the instance whose template made it ("" in a section)
    key: int = 0  # the template statement that made it
    given: frozenset[str] = frozenset()  # the attributes the call set (the others are at their defaults)
    via: Any = None  # the op value (a Ref) it was made through, when the callee was a parameter

    @property
    def spec(self) -> Op:
        return OPS[self.op]

    @cached_property
    def param_count(self) -> int:
        return sum(prod(s) for s in self.params.values())

    @cached_property
    def buffer_count(self) -> int:
        return sum(prod(s) for s in self.buffers.values())


class Tensor(Record):
    """A value flowing between layers during elaboration: its producer and shape."""

    name: str
    shape: Shape


class Instance(Record):
    """A block called at one place: its parameters' values, its input, and what its statements did."""

    path: str  # its module path: "features.3", "features.3.conv2d_1"
    block: str  # its template (compiler/lower.py): a block's name, or "SECTION:N" for a section's residual
    file: str  # the block's file
    values: dict[str, Any]  # parameter values (by their .arch names)
    given: frozenset[str]  # the parameters the call set (the others took their defaults)
    in_shape: Shape
    out_shape: Shape | None
    trace: dict[int, Any]  # template statement key -> the branch taken, the value bound, the module made
    span: Span = NO_SPAN  # the call
    row: Span | None = None
    row_file: str = ""
    call_file: str = ""  # the file of the call (`file` is the block's)
    owner: str = ""  # the instance whose template called it ("" in a section)
    key: int = 0
    via: Any = None  # the block value (a Ref) it was called through, when the callee was a parameter
    aux: bool = False


class Made(Record):
    """What a call statement made in one instance (its entry in `Instance.trace`): the module, and the
    names its own positional arguments bound to (they differ from call to call when the callee is a
    parameter)."""

    path: str | None
    positional: tuple[str, ...] = ()


class Element(Record):
    """One entry of a section's Sequential, or an aux head at the top of the network."""

    path: str
    section: str  # the section's module name, or the aux head's name
    row: Span | None = None  # the table row (or call) it came from
    row_file: str = ""
    source: tuple | None = None  # (table key, row index): repeats of one row share it
    repeat: int = 0  # which repeat of the row
    index: int | None = None  # the table's `index` at this repeat
    count: int | None = None  # and its `count`
    cells: dict[str, Any] = {}  # parameter -> the cell expression that set it


class CellRecord(Record):
    """A table's size or figure cell as elaboration met it (compiler/cells.py compares them)."""

    role: str  # "input", "output", "resolution", "params", "ops"
    file: str
    cell: Any  # the ast.Cell
    expected: Any  # (C, H, W) with None where the cell says nothing; (figure, tolerance) for params and ops
    actual: Any  # the shape, or the row's parameter or MAC total
    checked: bool  # the network is as printed here (no setting and no `where` rewrite changed it)


class Graph(Record, frozen=False):
    input_shape: Shape
    nodes: dict[str, Layer] = {}
    order: list[str] = []  # layers in the order they were built (a topological order)
    outputs: dict[str, str] = {}  # output name -> layer name
    aux: dict[str, str] = {}  # aux head name -> its last layer
    placeholders: dict[str, Shape] = {}  # after an error, a row's stated input
    instances: dict[str, Instance] = {}  # module path -> the block call that made it
    first: set[str] = set()  # modules registered before their siblings (layer scale)
    elements: list[Element] = []  # sections' entries and aux heads, in order
    cells: list[CellRecord] = []
    program: Any = None  # the loaded program
    lowered: Any = None  # its templates (compiler/lower.py)
    params: dict[str, Any] = {}  # the network's parameter values
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

    def of_block(self, block: str) -> list[Instance]:
        """Every instance of a template, in the order they were made."""
        return [i for i in self.instances.values() if i.block == block]
