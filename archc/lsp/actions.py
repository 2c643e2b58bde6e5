"""Document formatting (what `archc fmt` writes) and quick fixes for the diagnostics that have one fix:
a misspelt name replaced by the name its did-you-mean hint suggests, and a size cell that
disagrees with the network replaced by the size the check inferred."""

from __future__ import annotations

import re

from lsprotocol import types

from ..compiler.ops import fmt_shape
from ..dsl import ast
from ..dsl.diagnostics import ArchError, Diagnostic, suggestion
from ..dsl.printer import format_source
from .documents import Request, normal
from .index import Entry
from .positions import IDENTIFIER_CHARS, Text

RENAMED = ("E200", "E201", "E202")  # unknown name, operator, parameter: the span starts with the word


def formatting(request: Request) -> list[types.TextEdit] | None:
    text, key = request.text, request.key
    try:
        formatted = format_source(text.text, file=key)
    except ArchError:
        return None  # a file that does not parse is left as it is; its diagnostic says why
    if formatted == text.text:
        return []
    end = types.Position(line=len(text.lines), character=0)
    return [types.TextEdit(range=types.Range(start=types.Position(line=0, character=0), end=end), new_text=formatted)]


def code_actions(request: Request) -> list[types.CodeAction]:
    documents, key, text, params, uri = request.documents, request.key, request.text, request.params, request.uri
    checked = documents.checked.get(key)
    if checked is None:
        return []
    wanted = {(d.code, d.range.start.line, d.range.start.character) for d in params.context.diagnostics}
    actions = []
    for d in checked.diagnostics:
        if normal(d.file) != key:
            continue
        start = text.range(d.span).start
        if wanted and (d.code, start.line, start.character) not in wanted:
            continue
        if not wanted and not _overlaps(text.range(d.span), params.range):
            continue
        fix = _fix(checked, d, text)
        if fix is None:
            continue
        title, span, new = fix
        edit = types.WorkspaceEdit(changes={uri: [types.TextEdit(range=text.range(span), new_text=new)]})
        actions.append(types.CodeAction(title=title, kind=types.CodeActionKind.QuickFix, edit=edit, is_preferred=True,
                                        diagnostics=[sent for sent in params.context.diagnostics
                                                     if sent.range.start == start and sent.code == d.code]))
    return actions


def _overlaps(a: types.Range, b: types.Range) -> bool:
    return (a.start.line, a.start.character) <= (b.end.line, b.end.character) and \
        (b.start.line, b.start.character) <= (a.end.line, a.end.character)


def _fix(checked, d: Diagnostic, text: Text) -> tuple[str, ast.Span, str] | None:
    if d.code in RENAMED:
        return _rename(d, text)
    if d.code == "E302":
        return _resize(checked, d, text)
    return None


def _rename(d: Diagnostic, text: Text) -> tuple[str, ast.Span, str] | None:
    better = suggestion(d.hint)
    line = text.line(d.span.line)
    start = d.span.col - 1
    end = start
    while end < len(line) and line[end] in IDENTIFIER_CHARS:
        end += 1
    word = line[start:end]
    if better is None or not word or f"'{word}'" not in d.message:
        return None  # the hint names a column or a parameter the span does not start with
    span = ast.Span(line=d.span.line, col=start + 1, end_line=d.span.line, end_col=end + 1)
    return f"Change '{word}' to '{better}'", span, better


def _resize(checked, d: Diagnostic, text: Text) -> tuple[str, ast.Span, str] | None:
    """The size cell of an E302 written as the size the network has there, in the cell's own notation."""
    index = checked.index()
    entry = index.entry_at(d.span.line) if index else None
    if entry is None or entry.kind != "row" or entry.row is None:
        return None
    cell = next((c for c in entry.row.cells if c.span == d.span), None)
    shape = _actual(entry, d)
    if cell is None or shape is None or not d.message.endswith(f"but it is {fmt_shape(tuple(shape))}"):
        return None  # the check's message must name the size we would write
    atoms = [a for part in cell.parts for a in part]
    new = size_cell(atoms[0] if len(atoms) == 1 else None, shape)
    if new is None:
        return None
    old = text.line(d.span.line)[d.span.col - 1:d.span.end_col - 1].strip()
    return f"Change '{old}' to '{new}' (the size the network has here)", d.span, new


def _actual(entry: Entry, d: Diagnostic) -> list[int] | None:
    return entry.output if "the output is" in d.message else entry.input


def size_cell(atom, shape: list[int]) -> str | None:
    """`shape` written like the size `atom` is written: `224² × 3`, `112×112×64`, `56²`, `56×56` or `1024`."""
    c, h, w = shape if len(shape) == 3 else (shape[0], 1, 1)
    if atom is None:
        return None
    if atom.kind == "num":
        return str(c)
    if atom.kind != "dims":
        return None
    match = re.search(r"\s*[x×]\s*", atom.text or "")
    sep = match.group(0) if match else "×"
    if len(atom.items) == 2 and atom.squared[0]:
        return f"{h}²{sep}{c}" if h == w else sep.join(map(str, (h, w, c)))
    if len(atom.items) == 1 and atom.squared[0]:
        return f"{h}²" if h == w else f"{h}{sep}{w}"
    if len(atom.items) == 3:
        return sep.join(map(str, (h, w, c)))
    if len(atom.items) == 2:
        return f"{h}{sep}{w}"
    return None
