"""Print an AST back as .arch text in the canonical layout (`archc fmt`).

    >>> print(format_source("let  w=1.0\\nblock b( out ):\\n  conv(out,3)\\n"), end="")
    let w = 1.0
    <BLANKLINE>
    block b(out):
        conv(out, 3)

Four spaces per level, `name = value` with spaces, table columns padded to
their widest cell. Comments stay where they were (before the statement they
preceded, or at the end of its line); runs of blank lines become one. The
output parses to the same tree (`parse ∘ print` is the identity), and
formatting twice changes nothing.
"""

from __future__ import annotations

from . import ast
from .headings import role_of
from .parse import parse
from .source import split_lines

INDENT = "    "

# Binding strength, for the fewest parentheses that keep the tree.
_PRECEDENCE = {"ifexp": 0, "or": 1, "and": 2, "not": 3, "compare": 4, "+": 5, "-": 5,
               "*": 6, "/": 6, "//": 6, "%": 6, "neg": 7, "**": 8}


def format_source(text: str, file: str = "<input>") -> str:
    return Printer(parse(text, file), text).print()


def expr(node, parent: int = -1) -> str:
    """An expression's text; parenthesised when it binds looser than its context."""
    kind = node.kind
    if kind == "num":
        return node.text
    if kind == "bool":
        return "true" if node.value else "false"
    if kind == "none":
        return "none"
    if kind == "str":
        return f'"{node.value}"'
    if kind == "name":
        return node.id
    if kind == "attr":
        return f"{node.obj}.{node.attr}"
    if kind == "call":
        return call(node)
    if kind == "dims":
        if node.text is not None:
            return node.text
        return " x ".join(expr(i, 8) for i in node.items)
    if kind == "kernel":
        return node.text
    if kind == "binop" and node.op == "**":  # right-associative, and its right side may be negative
        level = _PRECEDENCE["**"]
        text = f"{expr(node.left, level + 1)} ** {expr(node.right, _PRECEDENCE['neg'])}"
    elif kind == "binop":
        level = _PRECEDENCE[node.op]
        text = f"{expr(node.left, level)} {node.op} {expr(node.right, level + 1)}"
    elif kind == "neg":
        level = _PRECEDENCE["neg"]
        text = f"-{expr(node.operand, level)}"
    elif kind == "not":
        level = _PRECEDENCE["not"]
        text = f"not {expr(node.operand, level)}"
    elif kind == "compare":
        level = _PRECEDENCE["compare"]
        text = f"{expr(node.left, level + 1)} {node.op} {expr(node.right, level + 1)}"
    elif kind == "boolop":
        level = _PRECEDENCE[node.op]
        text = expr(node.values[0], level) + "".join(f" {node.op} {expr(v, level + 1)}" for v in node.values[1:])
    elif kind == "ifexp":
        level = _PRECEDENCE["ifexp"]
        text = f"{expr(node.then, level + 1)} if {expr(node.cond, level + 1)} else {expr(node.other, level)}"
    else:  # pragma: no cover - every Expr kind is listed above
        raise ValueError(kind)
    return f"({text})" if level < parent else text


def call(node: ast.Call) -> str:
    items = [expr(a) for a in node.args] + [f"{k.name} = {expr(k.value)}" for k in node.kwargs]
    return f"{node.func}({', '.join(items)})"


def kwargs(items: list[ast.Kwarg]) -> str:
    return ", ".join(f"{k.name} = {expr(k.value)}" for k in items)


def param(p: ast.Param) -> str:
    text = p.name + "".join(f' "{a}"' for a in p.aliases)
    return text + (f" = {expr(p.default)}" if p.default is not None else "")


def cell(c: ast.Cell, role: str = "param") -> str:
    """A cell in the canonical layout. Labels and figures stay as written (`dense block (1)`, `12,432`), and
    so do the parts of operator cells (the paper's spellings: `conv3-64`, `Fused-MBConv1`, `SE0.25`);
    values are laid out."""
    if c.state == "absent":
        return "-"
    if c.state == "check":
        return "✓"
    if c.state == "empty":
        return ""
    if role in ("label", "params", "ops") and c.text:
        return c.text  # a figure as the paper prints it: `12,432` is one number, not two parts
    if role == "op" and c.part_texts:
        return ", ".join(c.part_texts)
    if c.state == "exact":
        return "= " + expr(c.parts[0][0])
    return ", ".join(_part(part) for part in c.parts)


def _part(atoms: list) -> str:
    """Atoms of a cell, spaced; a unit letter stays on its number (the paper's `2.7K`, `360M`)."""
    text = ""
    for i, atom in enumerate(atoms):
        unit = atom.kind == "name" and atom.id in ("K", "M", "G", "B") and i > 0 and atoms[i - 1].kind == "num"
        text += ("" if unit or not text else " ") + expr(atom)
    return text


class Printer:
    def __init__(self, module: ast.Module, source: str):
        self.module = module
        self.blank = {i + 1 for i, line in enumerate(split_lines(source)) if not line.strip(" \t")}
        self.comments = sorted(module.comments, key=lambda c: (c.span.line, c.span.col))
        self.lines: list[str] = []

    def print(self) -> str:
        for index, item in enumerate(self.module.items):
            self.leading(item.span.line, "", first=index == 0)
            self.item(item)
        self.leading(10**9, "", first=not self.module.items)
        return "\n".join(self.lines).rstrip("\n") + "\n" if self.lines else ""

    # --------------------------------------------------------- comments, blanks
    def leading(self, line: int, indent: str, first: bool = False) -> None:
        """Comments above `line`, and one blank line where the source had any."""
        while self.comments and self.comments[0].span.line < line:
            comment = self.comments.pop(0)
            self.blank_before(comment.span.line, first)
            first = False
            self.lines.append(indent + comment.text)
        if line < 10**9:
            self.blank_before(line, first)

    def blank_before(self, line: int, first: bool) -> None:
        if not first and (line - 1) in self.blank and self.lines and self.lines[-1] != "":
            self.lines.append("")

    def emit(self, text: str, line: int) -> None:
        """A line of code, with the comment that ended its source line."""
        trailing = [c for c in self.comments if c.span.line == line]
        for c in trailing:
            self.comments.remove(c)
        self.lines.append(text + "".join(f"  {c.text}" for c in trailing))

    # ------------------------------------------------------------------ items
    def item(self, item) -> None:
        kind, line = item.kind, item.span.line
        if kind == "use":
            self.emit(f'use "{item.path}"', line)
        elif kind == "let":
            self.emit(f"let {item.name} = {expr(item.value)}", line)
        elif kind == "network":
            self.emit(f"network {item.name}({', '.join(param(p) for p in item.params)})", line)
        elif kind == "input":
            self.emit(f"input {expr(item.dims)}", line)
        elif kind == "variant":
            self.emit(f"variant {item.name}({kwargs(item.kwargs)})", line)
        elif kind == "block":
            spellings = "".join(f' "{sp}"' for sp in item.spellings)
            self.emit(f"block {item.name}({', '.join(param(p) for p in item.params)}){spellings}:", line)
            self.body(item.body, INDENT)
        elif kind == "section":
            where = f" where {kwargs(item.where)}" if item.where else ""
            self.emit(f"{item.name}{where}:", line)
            self.body(item.body, INDENT)

    def body(self, stmts: list, indent: str) -> None:
        for index, stmt in enumerate(stmts):
            self.leading(stmt.span.line, indent, first=index == 0)
            self.stmt(stmt, indent)

    def stmt(self, s, indent: str) -> None:
        kind, line = s.kind, s.span.line
        if kind == "call_stmt":
            self.emit(indent + call(s.call), line)
        elif kind == "let":
            self.emit(f"{indent}let {s.name} = {expr(s.value)}", line)
        elif kind == "table":
            self.table(s, indent)
        elif kind == "if":
            self.emit(f"{indent}if {expr(s.cond)}:", line)
            self.body(s.then, indent + INDENT)
            if s.other:
                self.lines.append(f"{indent}else:")
                self.body(s.other, indent + INDENT)
        elif kind == "residual":
            options = f"({kwargs(s.kwargs)})" if s.kwargs else ""
            cond = f" if {expr(s.cond)}" if s.cond is not None else ""
            self.emit(f"{indent}residual{options}{cond}:", line)
            self.body(s.body, indent + INDENT)
            if s.shortcut is not None:
                self.leading(s.shortcut.span.line, indent)
                cond = f" if {expr(s.shortcut.cond)}" if s.shortcut.cond is not None else ""
                self.emit(f"{indent}shortcut{cond}:", s.shortcut.span.line)
                self.body(s.shortcut.body, indent + INDENT)
        elif kind == "concat":
            self.emit(f"{indent}concat:", line)
            for index, branch in enumerate(s.branches):
                self.leading(branch.span.line, indent + INDENT, first=index == 0)
                if len(branch.body) == 1 and branch.body[0].kind == "call_stmt":
                    self.emit(f"{indent}{INDENT}branch: {call(branch.body[0].call)}", branch.span.line)
                else:
                    self.emit(f"{indent}{INDENT}branch:", branch.span.line)
                    self.body(branch.body, indent + 2 * INDENT)
        elif kind == "multiply":
            self.emit(f"{indent}multiply:", line)
            self.body(s.body, indent + INDENT)
        elif kind == "output":
            self.emit(f"{indent}output {s.name}", line)
        elif kind == "keep":
            self.emit(f"{indent}keep {s.name}", line)
        elif kind == "from":
            self.emit(f"{indent}from {s.name}", line)
        elif kind == "join":
            self.emit(f"{indent}{s.op} {', '.join(s.names)}", line)
        elif kind == "repeat":
            self.emit(f"{indent}repeat {expr(s.count)}:", line)
            self.body(s.body, indent + INDENT)
        elif kind == "aux":
            cond = f" if {expr(s.cond)}" if s.cond is not None else ""
            source = f" from {s.source}" if s.source is not None else ""
            self.emit(f"{indent}aux {s.name} = {call(s.call)}{source}{cond}", line)

    def table(self, t: ast.Table, indent: str) -> None:
        roles = [role_of(h.text) for h in t.header]
        rows = [[h.text for h in t.header]] + [[cell(c, role) for c, role in zip(r.cells, roles + ["param"] * len(r.cells))]
                                               for r in t.rows]
        widths = [max(len(r[i]) for r in rows if i < len(r)) for i in range(max(len(r) for r in rows))]
        lines = [t.span.line] + [r.span.line for r in t.rows]
        for index, (row, line) in enumerate(zip(rows, lines)):
            if index:
                self.leading(line, indent)
            self.emit(indent + "|" + "".join(_padded(text, widths[i], heading=index == 0)
                                             for i, text in enumerate(row)), line)
            if index == 0 and t.ruled:
                self.emit(indent + "|" + "|".join("-" * (w + 2) for w in widths[:len(row)]) + "|", line)


def _padded(text: str, width: int, heading: bool) -> str:
    """A cell and the bar after it, `width` wide between spaces. A heading `#` is set against its bar:
    `# |` would start a comment (grammar/arch.lark, HEADING), `#|` is the heading."""
    if heading and text == "#":
        return " " + text.rjust(width + 1) + "|"
    return " " + text.ljust(width) + " |"
