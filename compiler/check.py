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

from pydantic import BaseModel, ConfigDict

from ..dsl import ast
from ..dsl.diagnostics import ArchError, Diagnostic, did_you_mean
from ..dsl.source import read_source
from .conventions import CONVENTIONS, layer_macs
from .conventions import DEFAULT as DEFAULT_CONVENTION
from .elaborate import Elaborator
from .evaluate import CompileError, Ref, evaluate
from .graph import Graph
from .program import Program, load
from .resolve import resolve
from .sizes import parse_input, parse_memory

BYTES_PER_ELEMENT = 4  # float32, as torchinfo assumes


class UsageError(Exception):
    """A bad command-line value (exit status 2), as opposed to a bad .arch file."""


class LayerReport(BaseModel):
    model_config = ConfigDict(extra="forbid")
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


class Memory(BaseModel):
    model_config = ConfigDict(extra="forbid")
    input_mb: float
    forward_backward_mb: float
    params_mb: float
    total_mb: float


class Report(BaseModel):
    """The data of `archc check --json`. Shapes exclude the batch; `macs` is for the whole batch,
    counted under `convention` (compiler/conventions.py), as are the layers' MACs per sample."""

    model_config = ConfigDict(extra="forbid")
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
    layers: list[LayerReport]
    outputs: dict[str, list[int]]
    diagnostics: list[Diagnostic]
    sources: dict[str, str] = {}

    @property
    def ok(self) -> bool:
        return not any(d.severity == "error" for d in self.diagnostics)

    def as_json(self) -> dict:
        data = self.model_dump(exclude={"sources", "diagnostics"})
        data["diagnostics"] = [d.as_json() for d in self.diagnostics]
        return data


def check(path: str | Path, *, variant: str | None = None, input: str | tuple[int, int, int] | None = None,
          batch: int = 1, memory: str | int | None = None, text: str | None = None,
          convention: str = DEFAULT_CONVENTION, **params: Any) -> Report:
    """Check a .arch file: every shape, parameter count, MAC count and memory figure.

    `convention` names how MACs are counted: torchinfo (default), thop or fvcore.
    Raises UsageError for bad arguments; problems in the file come back as
    `report.diagnostics` (ArchError is caught here too).
    """
    if batch < 1:
        raise UsageError("the batch must be at least 1")
    if convention not in CONVENTIONS:
        raise UsageError(f"no MAC convention '{convention}'" + _choices(convention, CONVENTIONS))
    budget = parse_memory(memory) if isinstance(memory, str) else memory
    shape_override = parse_input(input) if isinstance(input, str) else input
    try:
        program = load(path, text)
    except ArchError as error:
        return _failed(error.diagnostics, sources_of(error.diagnostics, str(path), text), batch, budget)
    diagnostics = list(program.diagnostics) + resolve(program)
    if program.network is None:
        if not any(d.severity == "error" for d in diagnostics):
            diagnostics.append(Diagnostic(
                code="N002", file=str(path), span=ast.Span(line=1, col=1, end_line=1, end_col=2), severity="note",
                message=f"a library of {_count(len(program.blocks), 'block')} and {_count(len(program.lets), 'constant')}; "
                        "no network to check",
                hint="names are checked now; shapes when a network uses the blocks"))
        return _failed(_dedupe(diagnostics), program.sources, batch, budget)
    try:
        graph, values, found = _elaborate(program, variant, params, shape_override)
    except UsageError:
        if any(d.severity == "error" for d in diagnostics):
            return _failed(_dedupe(diagnostics), program.sources, batch, budget)  # the file's own errors first
        raise
    except CompileError as error:
        diagnostics.append(Diagnostic(code=error.code, message=error.message, file=program.file, span=error.span,
                                      hint=error.hint))
        return _failed(_dedupe(diagnostics), program.sources, batch, budget)
    return _summarise(program, graph, variant, values, batch, budget, _dedupe(diagnostics + found), convention)


def build_graph(path: str | Path, *, variant: str | None = None, input: str | tuple[int, int, int] | None = None,
                text: str | None = None, **params: Any) -> Graph:
    """The checked graph IR of a network; raises ArchError if the file has errors."""
    program = load(path, text)
    diagnostics = list(program.diagnostics) + resolve(program)
    if program.network is None:
        raise ArchError([Diagnostic(code="E201", file=str(path), message="this file defines no network",
                                    span=ast.Span(line=1, col=1, end_line=1, end_col=2),
                                    hint="a file of blocks is used by a network file: `use \"FILE\"`")])
    try:
        graph, values, found = _elaborate(program, variant, params, parse_input(input) if isinstance(input, str) else input)
    except CompileError as error:
        raise ArchError([Diagnostic(code=error.code, message=error.message, file=program.file, span=error.span)]) from None
    errors = [d for d in diagnostics + found if d.severity == "error"]
    if errors:
        raise ArchError(_dedupe(errors))
    graph.program, graph.params = program, values
    return graph


def _elaborate(program: Program, variant, params, shape_override):
    values = _parameters(program, variant, params)
    # As printed: every parameter at its default; one without a default takes the value given.
    required = {p.name: values[p.name] for p in program.network.params if p.default is None}
    printed = _parameters(program, None, required)
    declared = _declared_input(program, printed)
    input_shape = tuple(shape_override or _declared_input(program, values))
    as_printed = values == printed and input_shape == declared
    diagnostics: list[Diagnostic] = []
    unchecked_as_printed = None
    if not as_printed:
        # The size and params/ops columns describe the network as printed: check
        # them there (a wrong cell is wrong whatever the settings), then compute
        # the network asked for without them.
        at_defaults = Elaborator(program, printed, declared, as_printed=True)
        at_defaults.run()
        diagnostics += at_defaults.diagnostics
        unchecked_as_printed = at_defaults.unchecked
    elaborator = Elaborator(program, values, input_shape, as_printed=as_printed)
    graph = elaborator.run()
    diagnostics += elaborator.diagnostics
    if elaborator.unchecked:
        shown = "×".join(str(d) for d in declared)
        if unchecked_as_printed == 0:
            hint = f"they were checked at its defaults and input {shown}"
        else:
            hint = "`where` rescales the table even at the defaults, so the cells after the first rescaled value " \
                   "are not checked"
        diagnostics.append(Diagnostic(
            code="N001", severity="note", file=program.file, span=program.input.span if program.input else ast.NO_SPAN,
            message=f"{elaborator.unchecked} size and figure cells describe the network as printed, not these settings",
            hint=hint))
    return graph, values, diagnostics


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def sources_of(diagnostics: list[Diagnostic], path: str, text: str | None) -> dict[str, str]:
    """The text of every file a load error points into, for rendering its line."""
    sources = {path: text} if text is not None else {}
    for d in diagnostics:
        if d.file not in sources:
            try:
                sources[d.file] = read_source(d.file, errors="replace")  # bounded; lines as the parser counts them
            except OSError:
                pass
    return sources


def _parameters(program: Program, variant: str | None, overrides: dict[str, Any]) -> dict[str, Any]:
    """The network's parameter values: defaults, then the variant's, then --set.

    Defaults are evaluated in order after the others are known, so
    `width = 2 * k` follows `--set k=3`.
    """
    network = program.network
    names = [p.name for p in network.params]
    from .elaborate import global_env

    env = global_env(program, {})
    given: dict[str, Any] = {}
    if variant is not None:
        chosen = program.variants.get(variant)
        if chosen is None:
            raise UsageError(f"{program.file} has no variant '{variant}'" + _choices(variant, program.variants))
        for kwarg in chosen.kwargs:
            if kwarg.name not in names:
                raise CompileError("E202", f"variant '{variant}' sets '{kwarg.name}', which {network.name} does not have",
                                   kwarg.span, hint=did_you_mean(kwarg.name, names))
            given[kwarg.name] = evaluate(kwarg.value, env)
    for name, value in overrides.items():
        if name not in names:
            raise UsageError(f"{network.name} has no parameter '{name}'" + _choices(name, names))
        if isinstance(value, str) and value.isidentifier():
            try:  # `--set block=bottleneck`: a name from the file or the op registry
                value = env.lookup(value, network.span)
            except CompileError:
                raise UsageError(f"--set {name}={value}: '{value}' names nothing in {program.file}"
                                 + _choices(value, env.names())) from None
        given[name] = value
    values: dict[str, Any] = {}
    for param in network.params:
        if param.name in given:
            values[param.name] = given[param.name]
        elif param.default is not None:
            values[param.name] = evaluate(param.default, env.child(dict(values)))
        else:
            raise UsageError(f"{network.name} needs a value for '{param.name}' (--set {param.name}=VALUE)")
    return values


def _choices(word: str, options) -> str:
    hint = did_you_mean(word, options)
    listed = ", ".join(sorted(options)) or "none"
    return f"; {hint}" if hint else f" (it has: {listed})"


def _declared_input(program: Program, values: dict[str, Any]) -> tuple[int, ...]:
    if program.input is None:
        raise CompileError("E205", "the network declares no input size", program.network.span,
                           hint="add a line such as `input 3 x 224 x 224`")
    from .elaborate import global_env

    dims = program.input.dims
    sizes = [evaluate(i, global_env(program, values)) for i in dims.items]
    if any(isinstance(s, bool) or not isinstance(s, int) or not 1 <= s <= 1 << 16 for s in sizes):
        raise CompileError("E209", f"the input size must be whole numbers from 1 to 65536, got {sizes}", dims.span)
    if any(dims.squared):  # the paper's 224² × 3
        if len(sizes) != 2 or dims.squared != [True, False]:
            raise CompileError("E209", "the input is C x H x W, like 3 x 224 x 224, or the paper's 224² × 3", dims.span)
        return (sizes[1], sizes[0], sizes[0])
    if len(sizes) != 3:
        raise CompileError("E209", "the input is C x H x W, like 3 x 224 x 224", dims.span)
    return tuple(sizes)


def _dedupe(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    """One diagnostic per mistake: name resolution and elaboration may both see an
    unknown name, elaboration at the whole call, resolution at the argument."""
    out: list[Diagnostic] = []
    for d in diagnostics:
        if not any(k.file == d.file and k.severity == d.severity and (k.code == d.code or k.span == d.span)
                   and _within(k.span, d.span) for k in out):
            out.append(d)
    return out


def _within(inner: ast.Span, outer: ast.Span) -> bool:
    return (outer.line, outer.col) <= (inner.line, inner.col) and \
        (inner.end_line, inner.end_col) <= (outer.end_line, outer.end_col)


def _failed(diagnostics, sources, batch: int, budget) -> Report:
    zero = Memory(input_mb=0, forward_backward_mb=0, params_mb=0, total_mb=0)
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


def _summarise(program, graph: Graph, variant, values, batch, budget, diagnostics, convention) -> Report:
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
        layers=[LayerReport(name=l.name, op=l.op, file=l.file, line=l.span.line, row_file=l.row_file or None,
                            row_line=l.row.line if l.row else None,
                            output_shape=list(l.out_shape), params=l.param_count, buffers=l.buffer_count,
                            macs=layer_macs(l, convention), aux=l.aux) for l in layers],
        outputs={name: list(graph.shape_of(node)) for name, node in graph.outputs.items()},
        diagnostics=diagnostics, sources=program.sources)


def _plain(value):
    return str(value) if isinstance(value, Ref) else value
