"""`check`: load, elaborate and summarise a network, never importing torch.

    >>> from archc.compiler.program import library_dir
    >>> report = check(library_dir() / "nin.arch")
    >>> report.ok, report.output_shape
    (True, [10])

Totals and memory follow torchinfo 1.8 in eval mode: mult-adds and the
forward/backward pass size (twice the outputs of every layer holding
parameters) count the layers that run in eval mode, so auxiliary heads are
left out of them but not out of the parameter total.
"""

from __future__ import annotations

from math import prod
from pathlib import Path
from typing import Any

from ..dsl import ast
from ..dsl.diagnostics import ArchError, Diagnostic
from ..dsl.record import Record, as_data, fields, replace
from . import analyses
from .analyses import ConventionsReport, FieldReport, RowReport, TapReport, TrainingReport
from .conventions import CONVENTIONS, layer_macs
from .conventions import DEFAULT as DEFAULT_CONVENTION
from .evaluate import Ref
from .graph import Graph
from .pipeline import State, UsageError, choices, compile_network, sources_of
from .sizes import parse_input, parse_memory
from .receptive import receptive_fields
from .train_memory import OPTIMIZERS, Recipe

BYTES_PER_ELEMENT = 4  # float32, as torchinfo assumes


class LayerReport(Record):
    name: str
    op: str
    file: str
    line: int
    row_file: str | None
    row_line: int | None
    output_shape: list[int]
    params: int
    buffers: int
    macs: int
    aux: bool
    rf: FieldReport | None = None  # its receptive field (compiler/receptive.py)
    saved_bytes: int = 0  # what autograd keeps for its backward in a training step at the batch


class Memory(Record):
    input_mb: float
    forward_backward_mb: float
    params_mb: float
    total_mb: float


class Report(Record):
    """The data of `archc check --json`. Shapes exclude the batch; `macs` is for the whole batch,
    counted under `convention` (compiler/conventions.py), as are the layers' MACs per sample. A record
    (dsl/record.py) of records, as archc makes it from its own figures: `as_data` gives it as plain data."""
    network: str | None
    variant: str | None
    parameters: dict[str, Any]
    input: list[int]
    batch: int
    output_shape: list[int]
    params: int
    trainable_params: int
    buffers: int
    macs: int
    convention: str = DEFAULT_CONVENTION
    memory: Memory
    memory_budget_bytes: int | None
    max_batch: int | None
    batch_multiple: int = 1  # max_batch (and the training one) rounded down to a multiple of it
    layers: list[LayerReport]
    outputs: dict[str, list[int]]
    diagnostics: list[Diagnostic]
    rows: list[RowReport] = []
    taps: list[TapReport] = []  # the feature maps a backbone yields (compiler/taps.py)
    training: TrainingReport | None = None  # one training step's memory (compiler/train_memory.py)
    conventions: ConventionsReport | None = None  # with convention "all": every convention side by side
    explained: list[str] = []  # with `explain`: which convention gives the figure
    sources: dict[str, str] = {}

    @property
    def ok(self) -> bool:
        return not any(d.severity == "error" for d in self.diagnostics)

    def as_json(self) -> dict:
        data = {name: as_data(getattr(self, name)) for name in fields(self) if name not in ("sources", "diagnostics")}
        data["diagnostics"] = [d.as_json() for d in self.diagnostics]
        return data


def check(path: str | Path, *, variant: str | None = None, input: str | tuple[int, int, int] | None = None,
          batch: int = 1, memory: str | int | None = None, text: str | None = None,
          convention: str = DEFAULT_CONVENTION, overlay: dict[str, str] | None = None, recipe: Recipe | None = None,
          explain: str | None = None, batch_multiple: int = 1, **params: Any) -> Report:
    """Check a .arch file: every shape, parameter count, MAC count and memory figure, receptive fields,
    feature taps and a training step's memory.

    `convention` names how MACs are counted: torchinfo (default), thop, fvcore, ptflops, calflops,
    calflops-flops, or "all" (torchinfo's total, and every convention in `report.conventions`). `recipe`:
    the trainer's settings for the training memory (compiler/train_memory.py; default: AdamW, bf16
    autocast, channels_last, as the trainer runs on a GPU). `explain`: a published figure such as
    "0.122993904G", traced to the convention that gives it. `overlay`: texts of used files in place of
    the disk's (compiler/program.py `load`). `batch_multiple`: the largest batches rounded down to a
    multiple of it (seed 000 trains in whole multiples of 32).
    Raises UsageError for bad arguments; problems in the file come back as
    `report.diagnostics` (ArchError is caught here too).
    """
    return checking(path, variant=variant, input=input, batch=batch, memory=memory, text=text,
                    convention=convention, overlay=overlay, recipe=recipe, explain=explain,
                    batch_multiple=batch_multiple, **params).report()


class Checking:
    """A check whose diagnostics are known and whose Report is built when first asked for: an editor
    shows the diagnostics of every keystroke, the figures only when it asks (archc/lsp/documents.py)."""

    def __init__(self, diagnostics: list[Diagnostic], sources: dict[str, str], build):
        self.diagnostics, self.sources = diagnostics, sources  # exactly the Report's
        self._build, self._report = build, None

    def report(self) -> Report:
        if self._report is None:
            self._report, self._build = self._build(), None
        return self._report


def checking(path: str | Path, *, variant: str | None = None, input: str | tuple[int, int, int] | None = None,
             batch: int = 1, memory: str | int | None = None, text: str | None = None,
             convention: str = DEFAULT_CONVENTION, overlay: dict[str, str] | None = None,
             recipe: Recipe | None = None, explain: str | None = None, batch_multiple: int = 1,
             **params: Any) -> Checking:
    """`check`'s validation and passes, the Report left to `.report()`; raises UsageError as `check` does."""
    if batch < 1:
        raise UsageError("the batch must be at least 1")
    if isinstance(batch_multiple, bool) or not isinstance(batch_multiple, int) or not 1 <= batch_multiple <= 1 << 20:
        raise UsageError(f"the batch multiple must be a whole number from 1 to {1 << 20:,}, not {batch_multiple!r}")
    if convention not in CONVENTIONS and convention != "all":
        raise UsageError(f"no MAC convention '{convention}'" + choices(convention, [*CONVENTIONS, "all"]))
    recipe = recipe or Recipe(amp=True, channels_last=True)
    if recipe.optimizer not in OPTIMIZERS:
        raise UsageError(f"no optimizer '{recipe.optimizer}'" + choices(recipe.optimizer, OPTIMIZERS))
    if not 0 <= recipe.momentum < 1:
        raise UsageError(f"the momentum must be at least 0 and below 1, not {recipe.momentum:g}")
    if explain is not None:
        try:
            analyses.parse_figure(explain)
        except ValueError as error:
            raise UsageError(str(error)) from None
    budget = parse_memory(memory) if isinstance(memory, str) else memory
    shape_override = parse_input(input) if isinstance(input, str) else input
    state = compile_network(path, variant=variant, input=shape_override, text=text, overlay=overlay,
                            **params)
    diagnostics = list(state.diagnostics)
    if state.library and state.ok:
        program = state.program
        diagnostics.append(Diagnostic(
            code="N002", file=str(path), span=ast.Span(line=1, col=1, end_line=1, end_col=2), severity="note",
            message=f"a library of {_count(len(program.blocks), 'block')} and {_count(len(program.lets), 'constant')}; "
                    "no network to check",
            hint="names are checked now; shapes when a network uses the blocks"))
    if state.graph is None:
        return Checking(diagnostics, state.sources or {}, lambda: _failed(diagnostics, state.sources or {}, batch,
                                                                          budget))
    return Checking(diagnostics, state.sources or {}, lambda: _rounded(
        _summarise(state, variant, batch, budget, diagnostics, convention, recipe, explain), budget,
        batch_multiple))


def _rounded(report: Report, budget, batch_multiple: int) -> Report:
    if batch_multiple == 1 or budget is None:
        return report
    down = lambda n: n // batch_multiple * batch_multiple  # noqa: E731 - seed 000: whole multiples of 32
    training = replace(report.training, max_batch=down(report.training.max_batch)) \
        if report.training is not None and report.training.max_batch is not None else report.training
    return replace(report, max_batch=down(report.max_batch), batch_multiple=batch_multiple, training=training)


def build_graph(path: str | Path, *, variant: str | None = None, input: str | tuple[int, int, int] | None = None,
                text: str | None = None, **params: Any) -> Graph:
    """The checked graph IR of a network; raises ArchError if the file has errors."""
    state = compile_network(path, variant=variant, input=parse_input(input) if isinstance(input, str) else input,
                            text=text, **params)
    if state.library and state.ok:
        raise ArchError([Diagnostic(code="E201", file=str(path), message="this file defines no network",
                                    span=ast.Span(line=1, col=1, end_line=1, end_col=2),
                                    hint="a file of blocks is used by a network file: `use \"FILE\"`")])
    errors = [d for d in state.diagnostics if d.severity == "error"]
    if errors or state.graph is None:
        raise ArchError(errors)
    return state.graph


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _failed(diagnostics, sources, batch: int, budget) -> Report:
    zero = Memory(input_mb=0.0, forward_backward_mb=0.0, params_mb=0.0, total_mb=0.0)
    return Report(network=None, variant=None, parameters={}, input=[], batch=batch, output_shape=[], params=0,
                  trainable_params=0, buffers=0, macs=0, memory=zero, memory_budget_bytes=budget, max_batch=None,
                  layers=[], outputs={}, diagnostics=diagnostics, sources=sources)


def memory_bytes(graph: Graph, batch: int) -> tuple[int, int, int]:
    """(input, forward/backward, params) in bytes, torchinfo's way."""
    layers = [l for l in graph.layers() if not l.aux]
    input_bytes = batch * prod(graph.input_shape) * BYTES_PER_ELEMENT
    outputs = sum(2 * batch * prod(l.out_shape) * BYTES_PER_ELEMENT for l in layers if l.param_count > 0)
    params = sum(l.param_count for l in layers) * BYTES_PER_ELEMENT
    return input_bytes, outputs, params


def max_batch(graph: Graph, budget: int) -> int:
    """The largest batch whose estimated total (input + forward/backward + params) fits `budget` bytes."""
    per_input, per_outputs, params = memory_bytes(graph, 1)
    per_sample = per_input + per_outputs
    return max(0, (budget - params) // per_sample) if per_sample else 0


def _summarise(state: State, variant, batch, budget, diagnostics, convention, recipe, explain) -> Report:
    program, graph, values = state.program, state.graph, state.values
    receptive = receptive_fields(graph)
    train, saved = analyses.training(graph, batch, recipe, budget)
    every = convention == "all"
    convention = DEFAULT_CONVENTION if every else convention
    layers = graph.layers()
    last = graph.shape_of(graph.result)
    input_b, fwd_b, params_b = memory_bytes(graph, batch)
    mb = lambda b: round(b / 1e6, 2)  # noqa: E731 - torchinfo prints megabytes of 10^6 bytes
    memory = Memory(input_mb=mb(input_b), forward_backward_mb=mb(fwd_b), params_mb=mb(params_b),
                    total_mb=mb(input_b + fwd_b + params_b))
    params = sum(l.param_count for l in layers)
    return Report(
        network=program.network.name, variant=variant, parameters={k: _plain(v) for k, v in values.items()},
        input=list(graph.input_shape), batch=batch, output_shape=list(last), params=params, trainable_params=params,
        buffers=sum(l.buffer_count for l in layers), convention=convention,
        macs=sum(layer_macs(l, convention, batch) for l in layers if not l.aux),
        memory=memory, memory_budget_bytes=budget, max_batch=max_batch(graph, budget) if budget else None,
        layers=[LayerReport(
            name=l.name, op=l.op, file=l.file, line=l.span.line, row_file=l.row_file or None,
            row_line=l.row.line if l.row else None, output_shape=list(l.out_shape), params=l.param_count,
            buffers=l.buffer_count, macs=layer_macs(l, convention), aux=l.aux,
            rf=analyses.field_report(receptive.get(l.name)), saved_bytes=saved[l.name]) for l in layers],
        outputs={name: list(graph.shape_of(node)) for name, node in graph.outputs.items()},
        rows=analyses.rows(graph, receptive, layers), taps=analyses.tap_reports(graph, receptive), training=train,
        conventions=analyses.conventions(graph, batch, (program.network.name, variant)) if every else None,
        explained=analyses.explain(explain, graph, batch) if explain else [],
        diagnostics=diagnostics, sources=program.sources)


def _plain(value):
    return str(value) if isinstance(value, Ref) else value
