"""What the places of a checked file mean: the rows and statements of its network with the
layers each made, and the layers of every statement in a block.

Built from the check's Report (each layer carries its file, its statement's line and its table
row's line) and the loaded Program (the AST, with spans): nothing is elaborated again. Layers
come in build order, and a network's sections run their statements in source order, so the
layers of consecutive statements are consecutive runs; a statement that calls a block has no
line of its own on its layers (they point into the block), and takes the run of the next
top-level module (`features.3`, `aux1`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..compiler.check import LayerReport, Report
from ..compiler.naming import python_name
from ..compiler.program import Program
from ..dsl import ast
from ..dsl.printer import call, cell


@dataclass
class Entry:
    """A table row or a statement of a network section, with the layers it made."""

    span: ast.Span
    kind: str  # "row", "call", "aux" or "output"
    section: str
    label: str  # what it calls, as written: `bneck, 3x3`, `global_avgpool()`
    input: list[int] | None = None  # the shape entering it
    layers: list[LayerReport] = field(default_factory=list)
    row: ast.Row | None = None
    table: ast.Table | None = None
    source: str | None = None  # an aux head's `from NAME`
    last: int = 0  # its last line (its span runs on to where the next line's code starts)

    @property
    def output(self) -> list[int] | None:
        main = [l for l in self.layers if not l.aux] or self.layers
        if main:
            return main[-1].output_shape
        return self.input if self.kind == "output" else None


@dataclass
class Index:
    file: str
    program: Program
    report: Report
    entries: list[Entry]
    statements: dict[tuple[str, int], list[LayerReport]]  # (file, line) -> the layers its op statement made

    def entry_at(self, line: int) -> Entry | None:
        return next((e for e in self.entries if e.span.line <= line <= e.last), None)


def build_index(program: Program, report: Report) -> Index:
    statements: dict[tuple[str, int], list[LayerReport]] = {}
    for layer in report.layers:
        statements.setdefault((layer.file, layer.line), []).append(layer)
    entries = list(_entries(program))
    _assign(entries, report, program.file)
    return Index(program.file, program, report, entries, statements)


def _entries(program: Program):
    for section in program.sections:
        for stmt in section.body:
            if stmt.kind == "table":
                for row in stmt.rows:
                    ops = [i for i, h in enumerate(stmt.header) if _is_operator(h.text)]
                    label = cell(row.cells[ops[0]]) if ops and ops[0] < len(row.cells) else ""
                    last = max([c.span.end_line for c in row.cells] + [row.span.line])
                    yield Entry(row.span, "row", section.name, label, row=row, table=stmt, last=last)
            elif stmt.kind == "call_stmt":
                yield Entry(stmt.span, "call", section.name, call(stmt.call), last=stmt.call.span.end_line)
            elif stmt.kind == "aux":
                yield Entry(stmt.span, "aux", section.name, f"aux {stmt.name} = {call(stmt.call)}", source=stmt.source,
                            last=stmt.call.span.end_line)
            elif stmt.kind == "output":
                yield Entry(stmt.span, "output", section.name, f"output {stmt.name}", last=stmt.span.line)


def _is_operator(heading: str) -> bool:
    from ..compiler.tables import ROLES, normalize

    return ROLES.get(normalize(heading)) == "op"


def _assign(entries: list[Entry], report: Report, file: str) -> None:
    layers = report.layers
    lines = {e.span.line for e in entries}
    at = 0
    shape = list(report.input) or None  # the main path's shape so far

    def anchored(layer: LayerReport) -> bool:  # does the layer name a row or statement of this file?
        return (layer.row_file == file and layer.row_line in lines) or (layer.file == file and layer.line in lines)

    for entry in entries:
        entry.input = report.outputs.get(entry.source, shape) if entry.source else shape
        start = at
        if entry.kind == "row":
            while at < len(layers) and layers[at].row_file == file and layers[at].row_line == entry.span.line:
                at += 1
        elif entry.kind in ("call", "aux") and at < len(layers):
            first = layers[at]
            mine = first.file == file and first.line == entry.span.line and first.row_line is None
            if mine or not anchored(first):
                top = _top_module(first.name, entry)
                while at < len(layers) and _top_module(layers[at].name, entry) == top and \
                        (not anchored(layers[at]) or layers[at].line == entry.span.line):
                    at += 1
        entry.layers = layers[start:at]
        main = [l for l in entry.layers if not l.aux]
        if main:
            shape = main[-1].output_shape


def _top_module(name: str, entry: Entry) -> str:
    """The network-level module a layer belongs to: `features.3` in a section, `aux1` for a head."""
    if entry.kind == "aux":
        return name.split(".", 1)[0]
    section = python_name(entry.section)
    parts = name.split(".")
    return ".".join(parts[:2]) if parts[0] == section else parts[0]
