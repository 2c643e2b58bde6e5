"""The analyses of `archc check` as report data: receptive fields per layer and row, feature taps, training
memory, every counting convention side by side and a published figure traced to its convention. Each
comes from its own pass over the graph (compiler/receptive.py, taps.py, train_memory.py, conventions.py);
this module only shapes them for the Report (compiler/check.py) and its JSON: records (dsl/record.py), as
the report is our own data, made for every check."""

from __future__ import annotations

import re
from math import prod

from ..dsl.record import Record
from .conventions import CONVENTIONS, UNITS, layer_macs
from .graph import Graph
from .ops import OPS
from .ops.base import CATEGORIES
from .published import PAPERS, TORCHVISION_OPS
from .receptive import Field
from .taps import taps
from .train_memory import ALLOCATOR_OVERHEAD, CUDA_CONTEXT, Recipe, largest_batch, saved_bytes, step_memory


class FieldReport(Record):
    """A receptive field per axis (height, width), in input pixels (compiler/receptive.py)."""

    size: list[int]
    jump: list[int]
    start: list[int]


def field_report(field: Field | None) -> FieldReport | None:
    if field is None:
        return None
    return FieldReport(size=list(field.size), jump=list(field.jump), start=list(field.start))


class RowReport(Record):
    """A table row (or a call in a section): its layers' totals and its output's field."""

    file: str
    line: int
    layers: int
    output_shape: list[int]
    params: int
    macs: int
    rf: FieldReport | None


class TapReport(Record):
    name: str
    layer: str
    output: bool  # a named `output`, not a reduction step
    channels: int
    reduction: int
    shape: list[int]
    rf: FieldReport | None


class TrainingReport(Record):
    """One training step at the report's batch (compiler/train_memory.py): bytes of each part."""

    amp: bool
    channels_last: bool
    optimizer: str
    momentum: float
    batch: int
    saved_bytes: int  # what autograd keeps for backward: the layers' and the loss's (exact)
    loss_saved_bytes: int
    params_bytes: int
    buffers_bytes: int
    gradients_bytes: int
    optimizer_bytes: int
    transient_bytes: int
    peak_bytes: int  # the estimated peak of the step
    max_batch: int | None  # the largest batch that trains in the budget
    cuda_context_bytes: int  # the assumptions behind max_batch
    allocator_overhead: float


class ConventionKind(Record):
    """One kind of layer (an op category): its count under each convention, at the report's batch."""

    kind: str
    counts: dict[str, int]


class Published(Record):
    source: str
    value: float


class ConventionsReport(Record):
    totals: dict[str, int]
    units: dict[str, str]
    kinds: list[ConventionKind]
    published: list[Published]


def rows(graph: Graph, fields: dict, layers: list) -> list[RowReport]:
    """Each table row's layers (repeats of a row are one row), in order of first appearance."""
    found: dict[tuple, list] = {}
    for layer in graph.layers():
        if layer.row is not None:
            found.setdefault((layer.row_file, layer.row.line), []).append(layer)
    out = []
    for (file, line), members in found.items():
        last = members[-1]
        out.append(RowReport(
            file=file, line=line, layers=len(members), output_shape=list(last.out_shape),
            params=sum(l.param_count for l in members), macs=sum(l.macs for l in members),
            rf=field_report(fields.get(last.name))))
    return out


def tap_reports(graph: Graph, fields: dict) -> list[TapReport]:
    return [TapReport(name=t.name, layer=t.layer, output=t.output, channels=t.channels,
                                      reduction=t.reduction, shape=list(t.shape), rf=field_report(t.field))
            for t in taps(graph, fields)]


def training(graph: Graph, batch: int, recipe: Recipe, budget: int | None) -> tuple[TrainingReport, dict]:
    """The step's report, and the saved bytes per layer."""
    saved = saved_bytes(graph, recipe)
    step = step_memory(graph, batch, recipe, saved)
    report = TrainingReport(
        amp=recipe.amp, channels_last=recipe.channels_last, optimizer=recipe.optimizer, momentum=float(recipe.momentum),
        batch=batch, saved_bytes=saved.total(batch), loss_saved_bytes=saved.loss_at(batch), params_bytes=step.params,
        buffers_bytes=step.buffers, gradients_bytes=step.gradients, optimizer_bytes=step.optimizer,
        transient_bytes=step.transient, peak_bytes=step.peak,
        max_batch=largest_batch(graph, budget, recipe, saved=saved) if budget else None,
        cuda_context_bytes=CUDA_CONTEXT, allocator_overhead=ALLOCATOR_OVERHEAD)
    return report, saved.at(batch)


def conventions(graph: Graph, batch: int, key: tuple[str, str | None]) -> ConventionsReport:
    """Every convention's total and its count per kind of layer (the layers that run in eval mode), and the
    published figures for the network."""
    layers = [l for l in graph.layers() if not l.aux]
    kinds = []
    for kind in CATEGORIES:
        members = [l for l in layers if OPS[l.op].category == kind]
        if members:
            kinds.append(ConventionKind(kind=kind, counts={c: sum(layer_macs(l, c, batch) for l in members)
                                                           for c in CONVENTIONS}))
    totals = {c: sum(k.counts[c] for k in kinds) for c in CONVENTIONS}
    published = []
    if key in TORCHVISION_OPS:
        published.append(Published(source="torchvision _ops (GMACs, labelled GFLOPS)",
                                   value=float(batch * TORCHVISION_OPS[key] * 1e9)))
    if key in PAPERS:
        paper = PAPERS[key]
        published.append(Published(source=paper.source, value=float(batch * paper.value)))
    return ConventionsReport(totals=totals, units=dict(UNITS), kinds=kinds, published=published)


_SUFFIX = {"": 1, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}


def parse_figure(text: str) -> tuple[float, float]:
    """`0.122993904G`, `4.09 GFLOPs`, `61,496,952` -> (operations, the resolution it is written to)."""
    match = re.fullmatch(r"\s*(\d[\d,]*(?:\.\d+)?|\.\d+)\s*([KMGT]?)\s*(?:FLOPS?|MACS?|MADDS?|OPS)?\s*", text,
                         flags=re.IGNORECASE)
    if not match:
        raise ValueError(f"cannot read the figure {text!r}: write it like 0.122993904G, 4.09 GFLOPs or 61496952")
    number, scale = match.group(1).replace(",", ""), _SUFFIX[match.group(2).upper()]
    decimals = len(number.partition(".")[2])
    return float(number) * scale, scale / 10**decimals


def explain(figure: str, graph: Graph, batch: int) -> list[str]:
    """Which convention, multiplier (1: the count as the tool gives it; 2: two operations per MAC, as
    reports that call MACs FLOPs double them) and batch give the figure, to the precision it is written
    with; else the three nearest."""
    value, resolution = parse_figure(figure)
    layers = [l for l in graph.layers() if not l.aux]
    candidates = []
    for convention in CONVENTIONS:
        total = sum(layer_macs(l, convention, 1) for l in layers)
        for b in sorted({1, batch}):
            for multiplier in (1, 2):
                candidates.append((b * total * multiplier, convention, multiplier, b))
    exact = [c for c in candidates if abs(c[0] - value) <= resolution / 2]
    lines = []
    for total, convention, multiplier, b in exact or sorted(candidates, key=lambda c: abs(c[0] - value))[:3]:
        head = "is" if exact else f"is not matched; near it ({(total - value) / value:+.2%}):"
        what = f"{'twice ' if multiplier == 2 else ''}{convention}'s {UNITS[convention]}"
        lines.append(f"{figure} {head} {what} at batch {b}: {multiplier} × {total // multiplier:,} = {total:,}")
    return lines
