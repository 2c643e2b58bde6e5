"""The compiler as a row of passes, each from a frozen state to the next (sqlglot's RULES):

    load → resolve → lower → bind → elaborate → check cells

`archc check` summarises the last state (compiler/check.py), `archc build` and
`archc.build` emit from its graph (compiler/emit_source.py); both run this one
row, so they cannot see different networks.

    >>> from archc.compiler.program import library_dir
    >>> state = compile_network(library_dir() / "nin.arch")
    >>> state.graph.shape_of(state.graph.result), [d.code for d in state.diagnostics]
    ((10,), [])
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..dsl import ast
from ..dsl.diagnostics import ArchError, Diagnostic, did_you_mean
from ..dsl.record import Record, replace
from ..dsl.source import read_source
from .cells import check_cells
from .elaborate import Elaborator
from .evaluate import CompileError, evaluate, global_env
from .graph import Graph
from .lower import Lowered, lower
from .program import Program, load
from .resolve import resolve
from .sizes import looks_channels_last


class UsageError(Exception):
    """A bad command-line value (exit status 2), as opposed to a bad .arch file."""


class Request(Record):
    path: str
    text: str | None = None
    variant: str | None = None
    input: tuple[int, ...] | None = None
    params: tuple[tuple[str, Any], ...] = ()
    overlay: tuple[tuple[str, str], ...] = ()  # used files' texts in place of the disk's (an editor's buffers)


class State(Record):
    request: Request
    program: Program | None = None
    lowered: Lowered | None = None
    values: dict[str, Any] | None = None  # the network's parameter values
    printed: dict[str, Any] | None = None  # the values the file prints (its defaults)
    input_shape: tuple[int, ...] | None = None
    declared: tuple[int, ...] | None = None  # the file's `input`, at its defaults
    graph: Graph | None = None
    printed_unchecked: int = 0  # cells the network as printed leaves unchecked (a `where` rescales at the defaults)
    diagnostics: tuple[Diagnostic, ...] = ()
    sources: dict[str, str] | None = None  # every file's text, for rendering diagnostics
    stopped: bool = False  # a pass found that nothing after it can run
    library: bool = False  # the file defines no network

    @property
    def ok(self) -> bool:
        return not any(d.severity == "error" for d in self.diagnostics)


def load_pass(state: State) -> State:
    request = state.request
    try:
        program = load(request.path, request.text, dict(request.overlay))
    except ArchError as error:
        return replace(state, diagnostics=tuple(error.diagnostics), stopped=True,
                       sources=sources_of(error.diagnostics, request.path, request.text))
    return replace(state, program=program, sources=program.sources,
                   diagnostics=state.diagnostics + tuple(program.diagnostics))


def resolve_pass(state: State) -> State:
    return replace(state, diagnostics=state.diagnostics + tuple(resolve(state.program)))


def lower_pass(state: State) -> State:
    return replace(state, lowered=lower(state.program))


def bind_pass(state: State) -> State:
    """The network's parameter values (defaults, then the variant's, then --set) and its input."""
    program, request = state.program, state.request
    if program.network is None:
        return replace(state, stopped=True, library=True)
    try:
        values = _parameters(program, request.variant, dict(request.params))
        # As printed: every parameter at its default; one without a default takes the value given.
        required = {p.name: values[p.name] for p in program.network.params if p.default is None}
        printed = _parameters(program, None, required)
        declared = _declared_input(program, printed)
        input_shape = tuple(request.input or _declared_input(program, values))
    except UsageError:
        if not state.ok:  # the file's own errors first
            return replace(state, stopped=True)
        raise
    except CompileError as error:
        return replace(state, stopped=True, diagnostics=state.diagnostics + (
            Diagnostic(code=error.code, message=error.message, file=program.file, span=error.span,
                       hint=error.hint),))
    return replace(state, values=values, printed=printed, declared=declared, input_shape=input_shape)


def elaborate_pass(state: State) -> State:
    """The graph of the network asked for; when that is not the network as printed, the cells are
    checked on an elaboration of the printed one (a wrong cell is wrong whatever the settings)."""
    if state.values == state.printed and state.input_shape == state.declared:
        found, graph = _as_printed(state)
        return replace(state, graph=graph, printed_unchecked=0, diagnostics=state.diagnostics + tuple(found))
    elaborator = Elaborator(state.program, state.lowered, state.values, state.input_shape, as_printed=False)
    graph = elaborator.run()
    printed_found, printed = _as_printed(state)
    cells, printed_unchecked = check_cells(printed)
    return replace(state, graph=graph, printed_unchecked=printed_unchecked,
                   diagnostics=state.diagnostics + tuple(printed_found + cells + elaborator.diagnostics))


MAX_RETRIES = 6  # wrong size cells tried as typos; each try is one more elaboration


def _elaborate_printed(state: State, trusted: frozenset = frozenset()) -> tuple[list, Graph]:
    elaborator = Elaborator(state.program, state.lowered, state.printed, state.declared, as_printed=True,
                            trusted=trusted)
    graph = elaborator.run()
    return list(elaborator.diagnostics), graph


def _as_printed(state: State) -> tuple[list, Graph]:
    """The network as printed: its diagnostics and graph. After a wrong size cell elaboration goes on
    from the size the cell states, so that a missing stride is reported once and not at every row
    below it; but when the cell itself is the mistake (a typo), the rows below then disagree with it.
    Each wrong cell is tried the other way (going on from the size the rows produce) and kept so when
    fewer cells are then wrong."""
    found, graph = _elaborate_printed(state)
    cells = check_cells(graph)[0]
    best, trusted = len(found) + len(cells), frozenset()
    for diagnostic in [d for d in cells if d.code == "E302"][:MAX_RETRIES]:
        attempt = trusted | {(diagnostic.file, diagnostic.span.line, diagnostic.span.col)}
        tried_found, tried = _elaborate_printed(state, attempt)
        count = len(tried_found) + len(check_cells(tried)[0])
        if count < best:
            best, trusted, found, graph = count, attempt, tried_found, tried
    return found, graph


def cells_pass(state: State) -> State:
    found, unchecked = check_cells(state.graph)
    if unchecked:
        shown = "×".join(str(d) for d in state.declared)
        as_printed = state.values == state.printed and state.input_shape == state.declared
        rescaled = as_printed or state.printed_unchecked > 0
        hint = ("`where` rescales the table even at the defaults, so the cells after the first rescaled value "
                "are not checked") if rescaled else f"they were checked at its defaults and input {shown}"
        program = state.program
        found.append(Diagnostic(
            code="N001", severity="note", file=program.file, span=program.input.span if program.input else ast.NO_SPAN,
            message=f"{unchecked} size and figure cells describe the network as printed, not these settings",
            hint=hint))
    return replace(state, diagnostics=state.diagnostics + tuple(found))


PASSES = (load_pass, resolve_pass, lower_pass, bind_pass, elaborate_pass, cells_pass)


def compile_network(path: str | Path, *, variant: str | None = None, input: tuple[int, ...] | None = None,
                    text: str | None = None, overlay: dict[str, str] | None = None, **params: Any) -> State:
    """Run every pass; stops early (state.stopped) when one finds nothing more can run."""
    state = State(Request(str(path), text, variant, input, tuple(params.items()), tuple((overlay or {}).items())))
    for run in PASSES:
        state = run(state)
        if state.stopped:
            break
    return replace(state, diagnostics=tuple(dedupe(list(state.diagnostics))))


# ------------------------------------------------------------ the parameters


def _parameters(program: Program, variant: str | None, overrides: dict[str, Any]) -> dict[str, Any]:
    """The network's parameter values: defaults, then the variant's, then --set.

    Defaults are evaluated in order after the others are known, so
    `width = 2 * k` follows `--set k=3`.
    """
    network = program.network
    names = [p.name for p in network.params]
    env = global_env(program, {})
    given: dict[str, Any] = {}
    if variant is not None:
        chosen = program.variants.get(variant)
        if chosen is None:
            raise UsageError(f"{program.file} has no variant '{variant}'" + choices(variant, program.variants))
        for kwarg in chosen.kwargs:
            if kwarg.name not in names:
                raise CompileError("E202", f"variant '{variant}' sets '{kwarg.name}', which {network.name} does not have",
                                   kwarg.span, hint=did_you_mean(kwarg.name, names))
            given[kwarg.name] = evaluate(kwarg.value, env)
    for name, value in overrides.items():
        if name not in names:
            raise UsageError(f"{network.name} has no parameter '{name}'" + choices(name, names))
        if isinstance(value, str) and value.isidentifier():
            try:  # `--set block=bottleneck`: a name from the file or the op registry
                value = env.lookup(value, network.span)
            except CompileError:
                raise UsageError(f"--set {name}={value}: '{value}' names nothing in {program.file}"
                                 + choices(value, env.names())) from None
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


def choices(word: str, options) -> str:
    hint = did_you_mean(word, options)
    listed = ", ".join(sorted(options)) or "none"
    return f"; {hint}" if hint else f" (it has: {listed})"


def _declared_input(program: Program, values: dict[str, Any]) -> tuple[int, ...]:
    if program.input is None:
        raise CompileError("E205", "the network declares no input size", program.network.span,
                           hint="add a line such as `input 3 x 224 x 224`")
    dims = program.input.dims
    env = global_env(program, values)
    sizes = [evaluate(i, env) for i in dims.items]
    if any(isinstance(s, bool) or not isinstance(s, int) or not 1 <= s <= 1 << 16 for s in sizes):
        raise CompileError("E209", f"the input size must be whole numbers from 1 to 65536, got {sizes}", dims.span)
    if any(dims.squared):  # the paper's 224² × 3
        if len(sizes) != 2 or dims.squared != [True, False]:
            raise CompileError("E209", "the input is C x H x W, like 3 x 224 x 224, or the paper's 224² × 3", dims.span)
        return (sizes[1], sizes[0], sizes[0])
    if len(sizes) != 3:
        raise CompileError("E209", "the input is C x H x W, like 3 x 224 x 224", dims.span)
    if looks_channels_last(tuple(sizes)):
        c, h, w = sizes
        raise CompileError("E209", f"the input reads as {c} channels of {h}×{w}: `input` is C x H x W", dims.span,
                           hint=f"an image of {c}×{h} with {w} channels is `input {w} x {c} x {h}` (or `{c}² × {w}`)")
    return tuple(sizes)


# ------------------------------------------------------------ diagnostics


def dedupe(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
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


def sources_of(diagnostics, path: str, text: str | None) -> dict[str, str]:
    """The text of every file a load error points into, for rendering its line."""
    sources = {path: text} if text is not None else {}
    for d in diagnostics:
        if d.file not in sources:
            try:
                sources[d.file] = read_source(d.file, errors="replace")  # bounded; lines as the parser counts them
            except OSError:
                pass
    return sources
