"""Hover and inlay hints: what the check found at a row, a statement or a name.

A table row or a section statement shows its input and output shape, its parameters and MACs and
the layers it made; a statement inside a block shows the layers it made in the open networks; a
block or op name shows its signature and the comment above its definition. Inlay hints put each
row's and statement's output shape at the end of its line.
"""

from __future__ import annotations

from pathlib import Path

from lsprotocol import types

from ..compiler.check import LayerReport
from ..compiler.ops import lookup
from ..dsl import ast
from ..dsl.printer import param
from .documents import Documents, Request
from .definitions import name_at
from .index import Entry

MAX_LAYERS_SHOWN = 12


def paper_shape(shape: list[int] | None) -> str:
    """A shape as a paper's table prints it: `56² × 24` (H² × C), `17×8×768`, or `1000` for a vector."""
    if not shape:
        return "?"
    if len(shape) != 3:
        return "×".join(str(d) for d in shape)
    c, h, w = shape
    return f"{h}² × {c}" if h == w else f"{h}×{w}×{c}"


def hover(request: Request) -> types.Hover | None:
    documents, key, text = request.documents, request.key, request.text
    line, col = text.place(request.params.position)
    parts: list[str] = []
    checked = documents.checked.get(key)
    index = checked.index() if checked else None
    entry = index.entry_at(line) if index else None
    if entry is not None:
        parts.append(_entry_text(entry))
    elif index is not None or checked is not None:
        layers = _statement_layers(documents, key, line)
        if layers:
            parts.append(_statement_text(layers))
    program = documents.program(key)
    found = name_at(program, key, text, line, col)
    # A block's parameter may hold an op (`nl()`): there the name is not the block or op of that name.
    if found is not None and not (found[0].kind == "block" and any(p.name == found[1] for p in found[0].params)):
        name = found[1]
        if name in program.blocks:
            parts.append(block_text(program, name))
        elif lookup(name) is not None:
            parts.append(op_text(name))
    if not parts:
        return None
    return types.Hover(contents=types.MarkupContent(kind=types.MarkupKind.Markdown, value="\n\n---\n\n".join(parts)))


def _entry_text(entry: Entry) -> str:
    layers = entry.layers
    params = sum(l.params for l in layers)
    macs = sum(l.macs for l in layers if not l.aux)
    what = {"row": "row", "call": "statement", "aux": "auxiliary head", "output": "output"}[entry.kind]
    lines = [f"**{entry.section}**, {what} `{entry.label}`", "",
             "| input | output | params | MACs per sample |", "|---|---|---:|---:|",
             f"| {paper_shape(entry.input)} | {paper_shape(entry.output)} | {params:,} | {macs:,} |"]
    if entry.kind == "aux":
        lines.append("\nused in training only: its MACs are not in the network's total")
    if layers:
        lines += ["", _layer_listing(layers)]
    elif entry.kind != "output":
        lines += ["", "no layers (an error above, or an optional layer left out)"]
    return "\n".join(lines)


def _layer_listing(layers: list[LayerReport]) -> str:
    shown = layers[:MAX_LAYERS_SHOWN]
    width = max(len(l.name) for l in shown)
    rows = [f"{l.name.ljust(width)}  {l.op:<14} {paper_shape(l.output_shape):>12} {l.params:>11,}" for l in shown]
    if len(layers) > len(shown):
        rows.append(f"… {len(layers) - len(shown)} more layers")
    return "```\n" + "\n".join(rows) + "\n```"


def _statement_layers(documents: Documents, key: str, line: int) -> list[LayerReport]:
    """The layers an op statement of a block made, in every open network's check."""
    found = []
    for checked in documents.checked.values():
        index = checked.index()
        if index is not None:
            found += index.statements.get((key, line), [])
    return found


def _statement_text(layers: list[LayerReport]) -> str:
    shapes = sorted({paper_shape(l.output_shape) for l in layers})
    params = sorted({l.params for l in layers})
    head = f"**{len(layers)} layer{'s' if len(layers) != 1 else ''}** `{layers[0].op}` in the open networks"
    shown = ", ".join(shapes[:6]) + (f", … ({len(shapes)} shapes)" if len(shapes) > 6 else "")
    figures = f"{params[0]:,}" if len(params) == 1 else f"{params[0]:,} to {params[-1]:,}"
    return f"{head}\n\noutput {shown}; params {figures} each\n\n{_layer_listing(layers)}"


def block_text(program, name: str) -> str:
    block, file = program.blocks[name]
    signature = f"block {name}({', '.join(param(p) for p in block.params)})"
    doc = doc_comment(program.modules.get(file), block)
    return f"```arch\n{signature}\n```" + (f"\n\n{doc}" if doc else "") + f"\n\n{_file_name(file)}:{block.span.line}"


def op_text(name: str) -> str:
    op = lookup(name)
    fields = op.Attrs.model_fields
    listed = ", ".join(n if f.is_required() else f"{n} = {_default(f.default)}" for n, f in fields.items())
    alias = f" (`{name}` is `{op.name}`)" if name != op.name else ""
    return f"```arch\n{op.name}({listed})\n```\n\nprimitive op{alias}" + (f": {op.doc}" if op.doc else "")


def _default(value) -> str:
    return {True: "true", False: "false", None: "none"}.get(value, repr(value)) if not isinstance(value, (int, float)) \
        or isinstance(value, bool) else str(value)


def doc_comment(module: ast.Module | None, item) -> str:
    """The comment lines right above a definition, without their `#`."""
    if module is None:
        return ""
    by_line = {c.span.line: c.text for c in module.comments if c.span.col == 1}
    lines, at = [], item.span.line - 1
    while at in by_line:
        lines.insert(0, by_line[at].lstrip("#").strip())
        at -= 1
    return " ".join(lines)


def _file_name(file: str) -> str:
    return Path(file).name


# ----------------------------------------------------------------- inlay hints


def inlay_hints(request: Request) -> list[types.InlayHint]:
    documents, key, text, within = request.documents, request.key, request.text, request.params.range
    checked = documents.checked.get(key)
    if checked is None or not documents.settings.inlay_hints:
        return []
    index = checked.index()
    if index is None:
        return []
    first, last = within.start.line + 1, within.end.line + 1
    module = index.program.modules.get(key)
    comments = {c.span.line: c.span.col for c in module.comments} if module else {}
    hints = []
    for entry in index.entries:
        line = entry.span.line
        if not first <= line <= last or entry.output is None or not entry.layers:
            continue
        code = text.line(line)[:comments.get(line, 0) - 1] if line in comments else text.line(line)
        end = len(code.rstrip())  # after the row's last `|`, before a comment that ends the line
        hints.append(types.InlayHint(position=text.position(line, end + 1), label=f"→ {paper_shape(entry.output)}",
                                     kind=types.InlayHintKind.Type, padding_left=True,
                                     tooltip=f"{sum(l.params for l in entry.layers):,} params"))
    return hints

