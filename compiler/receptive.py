"""Receptive fields: for every layer, the input pixels its outputs see (Araujo, Norris & Sim 2019,
"Computing Receptive Fields of Convolutional Neural Networks", Distill, eqs. 1-2 and §"Handling
multi-path networks").

Per axis, a layer's field is its `size` (in input pixels), its `jump` (the distance in input pixels
between two neighbouring outputs: the effective stride) and its `start` (the input coordinate of the left
or top edge of the first output's field; negative where the field reaches into padding). Each op's window
(kernel k, stride s, padding p before the input, dilation d; its `window` rule in compiler/ops/) composes
them:

    size  = size_in + (d·(k - 1)) · jump_in
    jump  = jump_in · s
    start = start_in - p · jump_in

Where paths meet (a residual add, a concat, the SE gate's multiply), the field is the union of the
inputs' fields, the maximum over paths; their jumps must agree. A global pool or a flatten is one window
over its whole input map (which may not reach the input's last pixels: a 11×11/4 conv on 224 never sees
the last 5), and a squeeze-and-excite gate joins that field to every position's. Output position i of a layer sees input pixels
[start + i·jump, start + i·jump + size - 1], clipped to the pixels the layer reaches at all (`clipped`).

    >>> from archc.compiler.check import build_graph
    >>> from archc.compiler.program import library_dir
    >>> graph = build_graph(library_dir() / "resnet.arch", variant="resnet50")
    >>> fields = receptive_fields(graph)
    >>> f = fields["features.1"]  # the stem's 3×3/2 max pool after the 7×7/2 conv
    >>> f.size, f.jump, f.start
    ((11, 11), (4, 4), (-5, -5))
"""

from __future__ import annotations

from ..dsl.record import Record
from .graph import Graph, Layer
from .ops.base import GLOBAL, IRREGULAR, POINTWISE, Window

Pair = tuple[int, int]


class Field(Record):
    """One layer's receptive field, per axis (height, width)."""

    size: Pair
    jump: Pair
    start: Pair
    # the first and last input pixel per axis that any of the layer's outputs sees: the field clipped to
    # the input, and to what the layers before it reach (an 11×11/4 conv on 224 pixels never sees the last 5)
    first: Pair
    last: Pair

    def covers(self, input_hw: Pair) -> bool:
        """Whether every output sees the whole input."""
        return all(s <= 0 and s + r >= n for s, r, n in zip(self.start, self.size, input_hw))

    def clipped(self, position: Pair) -> tuple[Pair, Pair]:
        """The (first, last) input pixel per axis that output `position` sees."""
        first = tuple(max(lo, s + i * j) for lo, s, i, j in zip(self.first, self.start, position, self.jump))
        last = tuple(min(hi, s + i * j + r - 1)
                     for hi, s, i, j, r in zip(self.last, self.start, position, self.jump, self.size))
        return first, last  # type: ignore[return-value]


def _input(shape) -> Field:
    return Field((1, 1), (1, 1), (0, 0), (0, 0), (shape[1] - 1, shape[2] - 1))


def receptive_fields(graph: Graph) -> dict[str, Field | None]:
    """Every layer's field, by name; None after an op whose windows are irregular (an adaptive pool whose
    output does not divide its input), or where paths with different jumps meet."""
    fields: dict[str, Field | None] = {"input": _input(graph.input_shape) if len(graph.input_shape) == 3 else None}
    for name in graph.placeholders:  # after an error, a row's stated input: its field is unknown
        fields[name] = None
    for layer in graph.layers():
        fields[layer.name] = _field(layer, [fields.get(source) for source in layer.inputs])
    return fields


def _field(layer: Layer, inputs: list[Field | None]) -> Field | None:
    if any(f is None for f in inputs):
        return None
    if len(inputs) > 1:
        return _union(layer, inputs)  # type: ignore[arg-type]
    before, shape = inputs[0], layer.in_shapes[0]
    window = layer.spec.window(layer)
    if window == IRREGULAR:
        return None
    if window == POINTWISE and layer.out_shape == shape:  # batch norm, activations: the field it was given
        return before
    if window == GLOBAL:  # one window over the whole map; on a vector, each element keeps its field
        window = Window((shape[1], shape[2]), (shape[1], shape[2])) if len(shape) == 3 else Window()
    assert isinstance(window, Window)
    size = tuple(r + d * (k - 1) * j for r, k, d, j in zip(before.size, window.k, window.d, before.jump))
    jump = tuple(j * s for j, s in zip(before.jump, window.s))
    start = tuple(u - p * j for u, p, j in zip(before.start, window.p, before.jump))
    return _reach(Field(size, jump, start, before.first, before.last), layer.out_shape)  # type: ignore[arg-type]


def _reach(field: Field, out_shape) -> Field:
    """The field with the pixels its first and last outputs reach: no output sees beyond them."""
    extent = out_shape[1:] if len(out_shape) == 3 else (1, 1)
    first, _ = field.clipped((0, 0))
    _, last = field.clipped((extent[0] - 1, extent[1] - 1))
    return Field(field.size, field.jump, field.start, first, last)


def _union(layer: Layer, inputs: list[Field]) -> Field | None:
    """Paths meeting at a join: the union of their first outputs' fields, whose jumps must agree. A gate
    of 1×1 (squeeze and excite) scales every position by one value, so every position sees all that the
    gate sees: as a field of the output's jump, one whose window starts far enough back."""
    out = layer.out_shape
    extent = out[1:] if len(out) == 3 else (1, 1)
    moving, fields = set(), []
    for field, shape in zip(inputs, layer.in_shapes):
        if len(shape) == 3 and shape[1:] == (1, 1) and extent != (1, 1):
            fields.append(field)  # its jump is made the others' below
        else:
            moving.add(field.jump)
            fields.append(field)
    if len(moving) > 1:
        return None
    jump = moving.pop() if moving else inputs[0].jump
    spans = []
    for field, shape in zip(fields, layer.in_shapes):
        if len(shape) == 3 and shape[1:] == (1, 1) and extent != (1, 1):
            back = tuple((n - 1) * j for n, j in zip(extent, jump))
            start = tuple(f - b for f, b in zip(field.first, back))
            spans.append((start, tuple(l for l in field.last)))
        else:
            spans.append((field.start, tuple(s + r - 1 for s, r in zip(field.start, field.size))))
    start = tuple(min(s[0][a] for s in spans) for a in (0, 1))
    end = tuple(max(s[1][a] for s in spans) for a in (0, 1))
    first = tuple(min(f.first[a] for f in inputs) for a in (0, 1))
    last = tuple(max(f.last[a] for f in inputs) for a in (0, 1))
    return Field((end[0] - start[0] + 1, end[1] - start[1] + 1), jump, start, first, last)  # type: ignore[arg-type]
