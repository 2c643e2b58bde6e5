"""Completion: what may stand where the cursor is.

The text being typed does not parse (that is why it is being completed), so the place is read
from the current line: a `use` path, a table's header or one of its cells (its column found by
counting `|` and named by the header line above), the parentheses of a call, or the start of a
statement. What may stand there comes from the last text of the file that loaded: its blocks
(their parameters and the column headings they bind), constants, network parameters, and the ops.
"""

from __future__ import annotations

from pathlib import Path

from lsprotocol import types

from ..compiler.evaluate import BUILTINS
from ..compiler.ops import ALIASES, CALLABLE, lookup
from ..compiler.program import Program, library_dir
from ..compiler.tables import ROLES, normalize
from ..dsl.printer import param
from .documents import Request
from .hover import block_text, op_text
from .positions import IDENTIFIER_CHARS, Text

KEYWORDS = ["use", "let", "block", "network", "input", "variant"]
STATEMENTS = ["let", "if", "else", "residual", "shortcut", "concat", "branch", "multiply", "output", "aux"]
CALL_KEYWORDS = {"residual": ["stochastic_depth"]}


def complete(request: Request) -> list[types.CompletionItem]:
    documents, key, text = request.documents, request.key, request.text
    line, col = text.place(request.params.position)
    before = text.line(line)[:col - 1]
    program = documents.program(key)
    stripped = before.lstrip()
    if stripped.startswith("use") and before.count('"') == 1:
        return _paths(key, before.split('"', 1)[1])
    if stripped.startswith("|"):
        return _table(program, text, line, before)
    callee = _open_call(before)
    if callee is not None:
        return _arguments(program, callee, stripped)
    if stripped == before:  # column 0: a top-level item
        return [_item(k, types.CompletionItemKind.Keyword) for k in KEYWORDS] if _typing_word(stripped) else []
    if _typing_word(stripped):  # the start of a statement
        return _callables(program) + [_item(k, types.CompletionItemKind.Keyword) for k in STATEMENTS]
    return _values(program) + _callables(program)


def _typing_word(text: str) -> bool:
    return all(c in IDENTIFIER_CHARS for c in text)


def _item(label: str, kind, detail: str | None = None, doc: str | None = None, insert: str | None = None):
    documentation = types.MarkupContent(kind=types.MarkupKind.Markdown, value=doc) if doc else None
    return types.CompletionItem(label=label, kind=kind, detail=detail, documentation=documentation,
                                insert_text=insert)


def _callables(program: Program | None) -> list[types.CompletionItem]:
    """Blocks (with their parameters) and ops, for an operator cell or a statement."""
    items = []
    if program is not None:
        for name, (block, _file) in sorted(program.blocks.items()):
            signature = f"{name}({', '.join(param(p) for p in block.params)})"
            items.append(_item(name, types.CompletionItemKind.Class, signature, block_text(program, name)))
        for name, (let, _file) in sorted(program.lets.items()):
            if let.value.kind in ("name", "call") and _holds_callable(program, let.value):
                items.append(_item(name, types.CompletionItemKind.Function, f"let {name}", None))
    for name in sorted(CALLABLE):
        op = lookup(name)
        fields = ", ".join(op.Attrs.model_fields)
        detail = f"{name}({fields})" + (f" = {ALIASES[name]}" if name in ALIASES else "")
        items.append(_item(name, types.CompletionItemKind.Function, detail, op_text(name)))
    return items


def _holds_callable(program: Program, value) -> bool:
    name = value.id if value.kind == "name" else value.func
    return name in program.blocks or lookup(name) is not None


def _values(program: Program | None) -> list[types.CompletionItem]:
    """Constants and network parameters: what a parameter cell or an argument may name."""
    items = []
    if program is not None:
        items += [_item(n, types.CompletionItemKind.Constant, f"let {n}") for n in sorted(program.lets)]
        if program.network is not None:
            items += [_item(p.name, types.CompletionItemKind.Variable, f"network parameter {param(p)}")
                      for p in program.network.params]
    items += [_item(n, types.CompletionItemKind.Function, "builtin") for n in sorted(BUILTINS)]
    return items


def _paths(key: str, typed: str) -> list[types.CompletionItem]:
    """The .arch files a `use` can name: beside the file, and in the block library."""
    found: dict[str, str] = {}
    roots = [(library_dir(), "block library")]
    if Path(key).is_absolute():
        roots.insert(0, (Path(key).parent, "beside this file"))
    folder = typed.rsplit("/", 1)[0] if "/" in typed else ""
    for root, where in roots:
        base = root / folder
        if not base.is_dir():
            continue
        for path in sorted(base.iterdir()):
            relative = f"{folder}/{path.name}" if folder else path.name
            if path.suffix == ".arch" and path.is_file() and str(path.resolve()) != str(Path(key).resolve()):
                found.setdefault(relative, where)
            elif path.is_dir() and not path.name.startswith((".", "_")):
                found.setdefault(relative + "/", where)
    # Inside a folder (`use "blocks/`) the editor completes the word after the `/`: offer the names there.
    return [_item(p[len(folder) + 1:] if folder else p,
                  types.CompletionItemKind.Folder if p.endswith("/") else types.CompletionItemKind.File, where)
            for p, where in found.items()]


def _open_call(before: str) -> str | None:
    """The name before the innermost parenthesis still open at the cursor, outside strings."""
    opened, in_string = [], False
    for i, ch in enumerate(before):
        if ch == '"':
            in_string = not in_string
        elif in_string:
            continue
        elif ch == "(":
            opened.append(i)
        elif ch == ")" and opened:
            opened.pop()
    if not opened or in_string:
        return None
    head = before[:opened[-1]].rstrip()
    start = len(head)
    while start > 0 and head[start - 1] in IDENTIFIER_CHARS:
        start -= 1
    return head[start:] or None


def _arguments(program: Program | None, callee: str, stripped: str) -> list[types.CompletionItem]:
    """Inside `callee(`: its parameter names, then what their values may be."""
    items = []
    if stripped.startswith("variant") and program is not None and program.network is not None:
        names = [(p.name, param(p)) for p in program.network.params]  # a variant sets the network's parameters
    elif program is not None and callee in program.blocks:
        names = [(p.name, param(p)) for p in program.blocks[callee][0].params]
    elif lookup(callee) is not None:
        names = [(n, n) for n in lookup(callee).Attrs.model_fields]
    else:
        names = [(n, n) for n in CALL_KEYWORDS.get(callee, [])]
    items += [_item(f"{n} =", types.CompletionItemKind.Field, detail, insert=f"{n} = ") for n, detail in names]
    return items + _values(program)


def _table(program: Program | None, text: Text, line: int, before: str) -> list[types.CompletionItem]:
    header_line = line
    while header_line > 1 and text.line(header_line - 1).lstrip().startswith("|"):
        header_line -= 1
    column = before.count("|") - 1
    if header_line == line:
        return _headings(program)
    headings = [h.strip() for h in text.line(header_line).strip().strip("|").split("|")]
    heading = headings[column] if 0 <= column < len(headings) else ""
    if ROLES.get(normalize(heading)) == "op":
        cell = before.rsplit("|", 1)[1]
        if "," in cell:  # after the block's name: a kernel, or a flag the block binds
            return _flags(program, cell.split(",", 1)[0].strip())
        return _callables(program)
    return _values(program)


def _headings(program: Program | None) -> list[types.CompletionItem]:
    """Column headings: the ones with a role (operator, input, n ...) and those the blocks bind."""
    items = {h: _item(h, types.CompletionItemKind.Keyword, f"the {role} column") for h, role in ROLES.items()
             if h and role not in ("label",)}
    for name, (block, _file) in sorted((program.blocks if program else {}).items()):
        for p in block.params:
            for heading in [*p.aliases, p.name]:
                items.setdefault(heading, _item(heading, types.CompletionItemKind.Field, f"binds {name}.{p.name}"))
    return list(items.values())


def _flags(program: Program | None, callee: str) -> list[types.CompletionItem]:
    """The flags an operator cell may add after the block's name (`conv2d 1x1, NBN`)."""
    name = callee.split()[0] if callee.split() else ""
    if program is None or name not in program.blocks:
        return []
    return [_item(alias, types.CompletionItemKind.EnumMember, f"sets {name}.{p.name}")
            for p in program.blocks[name][0].params for alias in p.aliases]
