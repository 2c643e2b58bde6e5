"""Feature taps: the maps a detector or segmenter takes from a backbone, found statically (timm's
`features_only` contract: the last map at each reduction of the input, with its channels, its reduction
and its receptive field), and the network's named `output`s.

A reduction tap is the output of a section entry (a table row, or one repeat of it; compiler/graph.py
`Element`) that is the last at its reduction before the next entry reduces further; the last map before
the head (the global pool) ends the list. Its name is the entry's module path (`features.3`), which
`archc.build(path, features=[...])` takes (compiler/features.py).

    >>> from archc.compiler.check import build_graph
    >>> from archc.compiler.program import library_dir
    >>> graph = build_graph(library_dir() / "resnet.arch", variant="resnet50")
    >>> [(t.name, t.channels, t.reduction) for t in taps(graph)]  # doctest: +NORMALIZE_WHITESPACE
    [('features.0', 64, 2), ('features.4', 256, 4), ('features.8', 512, 8), ('features.14', 1024, 16),
     ('features.17', 2048, 32), ('features', 2048, 32)]
"""

from __future__ import annotations

from ..dsl.diagnostics import ArchError, Diagnostic, did_you_mean
from ..dsl.record import Record
from .graph import Graph
from .ops.base import GLOBAL, Shape
from .receptive import Field, receptive_fields


class Tap(Record):
    name: str  # the section entry's module path, or the `output`'s name
    layer: str  # the layer whose output it is
    shape: Shape
    reduction: int  # input pixels per map position (the product of the strides before it)
    field: Field | None
    output: bool = False  # a named `output` rather than a reduction step

    @property
    def channels(self) -> int:
        return self.shape[0]


def element_outputs(graph: Graph) -> dict[str, str]:
    """Each section entry's module path -> the layer whose output it returns (its last layer)."""
    last: dict[str, str] = {}
    paths = {e.path for e in graph.elements}
    for layer in graph.layers():
        parts = layer.name.split(".")
        for n in range(len(parts), 0, -1):
            prefix = ".".join(parts[:n])
            if prefix in paths:
                last[prefix] = layer.name
                break
    return {e.path: last[e.path] for e in graph.elements if e.path in last}


def taps(graph: Graph, fields: dict | None = None) -> list[Tap]:
    """The reduction taps in order, then the named outputs that are maps (`fields`: the graph's receptive
    fields, where the caller has them)."""
    fields = fields if fields is not None else receptive_fields(graph)
    height = graph.input_shape[1] if len(graph.input_shape) == 3 else 1
    steps: list[Tap] = []
    heads = set(graph.aux)
    outputs = element_outputs(graph)
    for element in graph.elements:
        layer = outputs.get(element.path)
        if layer is None or element.section in heads or graph.layer(layer).aux:
            continue
        shape = graph.layer(layer).out_shape
        if len(shape) != 3 or _pooled(graph, layer):
            break  # the head: no map after it, or the global pool's 1×1
        field = fields[layer]
        reduction = field.jump[0] if field is not None else max(1, round(height / shape[1]))
        tap = Tap(element.path, layer, shape, reduction, field)
        if steps and steps[-1].reduction == reduction:
            steps[-1] = tap
        elif not steps or reduction > steps[-1].reduction:
            steps.append(tap)
    named = []
    for name, layer in graph.outputs.items():
        shape = graph.shape_of(layer)  # an output may be the input itself, or a row's stated size after an error
        if len(shape) == 3:
            field = fields.get(layer)
            reduction = field.jump[0] if field is not None else max(1, round(height / shape[1]))
            named.append(Tap(name, layer, shape, reduction, field, output=True))
    return steps + named


def _pooled(graph: Graph, name: str) -> bool:
    """Whether a layer's map is the head's global pool (or what pointwise layers make of it, ConvNeXt's layer
    norm): a 1×1 map that the convolutions make at a small input (ResNet's last stage at 32×32) is a tap."""
    layer = graph.layer(name)
    while layer.out_shape[1:] == (1, 1):
        if layer.spec.window(layer) == GLOBAL:
            return True
        if len(layer.inputs) != 1 or layer.inputs[0] not in graph or layer.in_shapes[0][1:] != (1, 1):
            return False
        layer = graph.layer(layer.inputs[0])
    return False


def select(graph: Graph, names, file: str = "") -> list[Tap]:
    """The taps named (True: every reduction tap), in the order given; ArchError for an unknown name."""
    found = taps(graph)
    if names is True:
        return [t for t in found if not t.output]
    by_name = {t.name: t for t in found}
    chosen, errors = [], []
    for name in [names] if isinstance(names, str) else list(names):
        if name in by_name:
            chosen.append(by_name[name])
            continue
        hint = did_you_mean(str(name), by_name) or "the taps are " + ", ".join(by_name)
        errors.append(Diagnostic(code="E200", file=file or "<input>", message=f"no feature tap '{name}'",
                                 hint=hint, span=graph.program.network.span if graph.program else None))
    if errors:
        raise ArchError(errors)
    return chosen
