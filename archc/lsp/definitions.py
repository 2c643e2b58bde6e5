"""Go to definition, find references and document symbols.

A name means what the checker makes of it: inside a block its parameters and `let`s come first,
inside a section its `let`s, `where` keys and the network's parameters (a variant's names are
the network's parameters too), and then the blocks and constants of the file and of the files
it uses (program.blocks, program.lets). Places come from the AST's spans; the name of a
definition is found on its first line.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from lsprotocol import types

from ..compiler.program import Program, used_file
from ..dsl import ast
from ..dsl.cache import cached_parse
from ..dsl.diagnostics import ArchError
from ..dsl.printer import param
from ..dsl.record import fields
from .documents import Documents, Request, normal
from .positions import Text, last_line

Place = tuple[str, ast.Span]  # (file, the name's span)


def walk(node) -> Iterator[ast.Node]:
    """Every AST node under `node`, itself first, in field order."""
    yield node
    for name in fields(node):
        yield from _walk_value(getattr(node, name))


def _walk_value(value) -> Iterator[ast.Node]:
    if isinstance(value, ast.Node):
        yield from walk(value)
    elif isinstance(value, list):
        for item in value:
            yield from _walk_value(item)


def _head(span: ast.Span, name: str) -> ast.Span:
    """The span of `name` written at the start of `span`."""
    return ast.Span(line=span.line, col=span.col, end_line=span.line, end_col=span.col + len(name))


def uses(item) -> Iterator[tuple[str, ast.Span]]:
    """The names an item uses, each with the span of the name itself."""
    if item.kind == "variant":
        for kwarg in item.kwargs:
            yield kwarg.name, _head(kwarg.span, kwarg.name)
    for node in walk(item):
        kind = getattr(node, "kind", None)
        if kind == "name":
            yield node.id, node.span
        elif kind == "attr":
            yield node.obj, _head(node.span, node.obj)
        elif kind == "call":
            yield node.func, _head(node.span, node.func)


def local_names(item, program: Program | None, text: Text) -> dict[str, ast.Span | None]:
    """The names an item binds for itself, each with the span of its name (None: nowhere to go)."""
    found: dict[str, ast.Span | None] = {}
    if item.kind == "block":
        found["in"] = None
        found.update({p.name: _head(p.span, p.name) for p in item.params})
    elif item.kind in ("section", "network", "input", "variant") and program is not None and program.network:
        found.update({p.name: _head(p.span, p.name) for p in program.network.params})
    if item.kind == "section":
        found.update({k.name: _head(k.span, k.name) for k in item.where})
        found.update({"index": None, "count": None})  # a row's block number and the table's count of them
    for node in walk(item):
        if node is not item and getattr(node, "kind", None) == "let":
            found.setdefault(node.name, text.name_span(node.name, node.span.line, node.span.col + len("let")))
    return found


def global_place(documents: Documents, program: Program, name: str) -> Place | None:
    """Where a block or constant of the program is defined."""
    definition = program.blocks.get(name) or program.lets.get(name)
    if definition is None:
        return None
    item, file = definition
    return file, _text(documents, file).name_span(name, item.span.line, item.span.col + len(item.kind))


def _text(documents: Documents, file: str) -> Text:
    return Text(documents.source(file), None)


def _item_at(module: ast.Module, line: int):
    """The top-level item on `line` (an item's span ends at the start of the line after it)."""
    return next((i for i in module.items if i.span.line <= line <= last_line(i.span)), None)


def definition(request: Request) -> types.Location | None:
    found = find_definition(request.documents, request.key, request.text, request.params.position)
    return request.location(*found) if found else None


def references(request: Request) -> list[types.Location]:
    found = find_references(request.documents, request.key, request.text, request.params.position,
                            request.params.context.include_declaration)
    return [request.location(*place) for place in found]


def find_definition(documents: Documents, key: str, text: Text, position: types.Position) -> Place | None:
    line, col = text.place(position)
    program = documents.program(key)
    module = program.modules.get(key) if program else None
    if module is None:
        return None
    item = _item_at(module, line)
    if item is not None and item.kind == "use":
        target = used_file(key, item.path)
        return (str(target), ast.Span(line=1, col=1, end_line=1, end_col=1)) if target.is_file() else None
    found = name_at(program, key, text, line, col)
    if found is None:
        return None
    item, name = found
    local = local_names(item, program, text)
    if name in local:
        return (key, local[name]) if local[name] is not None else None
    return global_place(documents, program, name)


def name_at(program: Program | None, key: str, text: Text, line: int, col: int) -> tuple[Any, str] | None:
    """The top-level item at (line, col) of `key` and the name under the cursor; None off a name or in a comment."""
    module = program.modules.get(key) if program else None
    if module is None:
        return None
    item = _item_at(module, line)
    word = text.word(line, col)
    if word is None or item is None or any(c.span.line == line and c.span.col <= col for c in module.comments):
        return None
    return item, word[0]


def find_references(documents: Documents, key: str, text: Text, position: types.Position,
                    include_declaration: bool) -> list[Place]:
    """Every use of the name under the cursor that means the same definition, in the files of the open
    documents that read the defining file."""
    target = find_definition(documents, key, text, position)
    word = text.word(*text.place(position))
    if target is None or word is None:
        return []
    name, home = word[0], normal(target[0])
    found: dict[tuple, Place] = {}
    if include_declaration:
        found[(home, target[1].line, target[1].col)] = target
    for program in _programs(documents, home):
        global_target = global_place(documents, program, name)
        for file, module in program.modules.items():
            file_text = _text(documents, file)
            for item in module.items:
                local = local_names(item, program, file_text)
                for used, span in uses(item):
                    if used != name:
                        continue
                    means = (file, local[name]) if name in local else global_target
                    if means is not None and means[1] is not None and normal(means[0]) == home and \
                            means[1] == target[1]:
                        found.setdefault((normal(file), span.line, span.col), (file, span))
    return sorted(found.values(), key=lambda place: (normal(place[0]), place[1].line, place[1].col))


def _programs(documents: Documents, file: str) -> list[Program]:
    """The loaded programs of the open documents that read `file`."""
    programs = []
    for key in documents.open:
        program = documents.program(key)
        if program is not None and any(normal(f) == file for f in program.modules):
            programs.append(program)
    return programs


# --------------------------------------------------------------------- symbols

KINDS = {"network": types.SymbolKind.Class, "block": types.SymbolKind.Function, "let": types.SymbolKind.Constant,
         "variant": types.SymbolKind.EnumMember, "section": types.SymbolKind.Namespace}


def symbols(request: Request) -> list[types.DocumentSymbol]:
    """The network (its parameters inside), its sections and variants, the blocks and constants."""
    text, key = request.text, request.key
    try:
        module = cached_parse(text.text, key)
    except ArchError:
        return []
    out = []
    for item in module.items:
        if item.kind not in KINDS:
            continue
        keyword = 0 if item.kind == "section" else len(item.kind)
        name_span = text.name_span(item.name, item.span.line, item.span.col + keyword)
        detail = children = None
        if item.kind in ("block", "network"):
            detail = f"({', '.join(param(p) for p in item.params)})"
            children = [_symbol(text, p.name, types.SymbolKind.Field, p.span, _head(p.span, p.name))
                        for p in item.params]
        out.append(_symbol(text, item.name, KINDS[item.kind], item.span, name_span, detail, children))
    return out


def _symbol(text: Text, name, kind, span: ast.Span, name_span: ast.Span, detail=None, children=None):
    last = last_line(span)
    span = ast.Span(line=span.line, col=span.col, end_line=last, end_col=len(text.line(last)) + 1)
    return types.DocumentSymbol(name=name, kind=kind, range=text.range(span), selection_range=text.range(name_span),
                                detail=detail, children=children)
