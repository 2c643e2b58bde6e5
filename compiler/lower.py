"""Lowering: the AST of a program's blocks and sections as templates, once per program.

A template is a block's statements with what does not depend on the call fixed
in advance: each statement's key (how an instance's trace refers to it), the
module name it gives (compiler/naming.py), the Python names of its variables
and `use_*` flags. Elaboration (compiler/elaborate.py) runs templates with
concrete values and records, per instance, what each statement did; the source
emitter (compiler/emit_classes.py) writes one class per template from those
records. Neither reads the block ASTs again.

A residual, concat or gate standing directly in a network section is lowered
as a template of its own (`implicit`): it becomes one element of the section's
Sequential, as a block call does, so the section stays a torch Sequential.
"""

from __future__ import annotations

import itertools
import keyword

from ..dsl import ast
from ..dsl.record import Record
from .naming import python_name, scope_names

# What a constructor's code calls or reads besides its variables: Python's builtins and the file's
# helpers, imports and op factories. A parameter or `let` of one of these names gets a trailing underscore.
LOCAL_RESERVED = frozenset({"min", "max", "int", "float", "abs", "round", "bool", "isinstance", "len", "sum",
                            "range", "tuple", "super", "self", "nn", "torch", "math", "partial", "make_divisible",
                            "round_half_up", "conv_padding", "StochasticDepth", "LayerNorm2d", "ChannelLinear",
                            "LayerScale", "Chunk", "ShuffleChannels", "in_c", "in_h", "in_w", "i", "build"})


def tensor_name(name: str) -> str:
    """A named tensor (`keep NAME`) as a variable of forward, apart from the forward's own."""
    return f"{local_name(name)}_t"


def local_name(name: str) -> str:
    """A block parameter or `let` as a Python variable of the class's constructor."""
    from .ops import CALLABLE  # the op factories a value may name

    taken = keyword.iskeyword(name) or keyword.issoftkeyword(name) or name.startswith("_")
    return name + "_" if taken or name in LOCAL_RESERVED or name in CALLABLE else name


class TParam(Record):
    name: str
    var: str
    default: ast.Expr | None
    aliases: tuple[str, ...]
    span: ast.Span


class TStmt(Record):
    key: int
    span: ast.Span


class TLet(TStmt):
    name: str
    var: str
    value: ast.Expr


class TCall(TStmt):
    call: ast.Call
    module: str | None  # its name inside a block; None in a section (positional)


class TIf(TStmt):
    cond: ast.Expr
    then: tuple
    other: tuple
    flag: str


class TShortcut(TStmt):
    cond: ast.Expr | None
    body: tuple
    module: str
    flag: str


class TResidual(TStmt):
    cond: ast.Expr | None
    options: tuple[ast.Kwarg, ...]
    body: tuple
    shortcut: TShortcut | None
    depth_module: str | None  # the stochastic depth layer's name, when the residual has the option
    flag: str
    identity: str  # the forward's name for the skip input


class TBranch(TStmt):
    body: tuple
    module: str


class TConcat(TStmt):
    branches: tuple[TBranch, ...]


class TMultiply(TStmt):
    body: tuple
    gate: str  # the forward's name for the gate


class TTable(TStmt):
    table: ast.Table
    module: str | None  # inside a block, its rows are an nn.Sequential of this name


class TOutput(TStmt):
    name: str


class TKeep(TStmt):
    name: str
    var: str  # the forward's variable holding it


class TFrom(TStmt):
    name: str
    var: str


class TJoin(TStmt):
    op: str  # "concat" or "add"
    names: tuple[str, ...]
    vars: tuple[str, ...]


class TRepeat(TStmt):
    """`repeat n:`; its iterations are an nn.Sequential (`module`): each the body's one call, or an
    instance of the body's own template (`template`) when the body has more."""

    count: ast.Expr
    body: tuple
    module: str | None
    template: str | None


class TAux(TStmt):
    aux: ast.Aux


class TImplicit(TStmt):
    """A residual, concat or gate standing in a section: one element, made from its own template."""

    template: str


class Template(Record):
    """A block (or a compound statement of a section) as the emitter writes one class."""

    name: str
    file: str
    params: tuple[TParam, ...]
    body: tuple
    span: ast.Span
    doc: str = ""  # the comment above the block definition
    implicit: bool = False  # a section's residual, concat or gate (or a repeat's body), not a block of the file
    spellings: tuple[str, ...] = ()  # operator-cell spellings: "conv{k}-{out}"


class SectionT(Record):
    name: str
    where: tuple[ast.Kwarg, ...]
    body: tuple
    span: ast.Span


class Lowered(Record, frozen=False):
    blocks: dict[str, Template] = {}  # the file's blocks, and "SECTION:N" implicit ones
    sections: tuple[SectionT, ...] = ()


COMPOUND = ("residual", "concat", "multiply")


def lower(program) -> Lowered:
    keys = itertools.count(1)
    out = Lowered()
    for name, (definition, file) in program.blocks.items():
        names = scope_names(definition.body)
        params = tuple(TParam(p.name, local_name(p.name), p.default, tuple(p.aliases), p.span)
                       for p in definition.params)
        body = _Lowerer(keys, names, out.blocks, f"{name}:", file).stmts(definition.body)
        out.blocks[name] = Template(name, file, params, body, definition.span,
                                    doc=_doc(program, file, definition.span), spellings=tuple(definition.spellings))
    sections = []
    for section in program.sections:
        lowerer = _Lowerer(keys, None, out.blocks, f"{section.name}:", program.file)
        sections.append(SectionT(section.name, tuple(section.where), lowerer.stmts(section.body), section.span))
    out.sections = tuple(sections)
    return out


def _doc(program, file: str, span: ast.Span) -> str:
    """The run of comment lines ending right above `span` (the block's description)."""
    module = program.modules.get(file)
    if module is None:
        return ""
    by_line = {c.span.line: c.text for c in module.comments if c.span.col == 1}
    lines, line = [], span.line - 1
    while line in by_line:
        lines.append(by_line[line].lstrip("#").strip())
        line -= 1
    return " ".join(reversed(lines))


class _Lowerer:
    def __init__(self, keys, names: dict | None, templates: dict | None = None, prefix: str = "", file: str = "",
                 flags: set | None = None):
        self.keys, self.names = keys, names
        self.flags: set[str] = set() if flags is None else flags  # one set per class: flags are its attributes
        self.templates, self.prefix, self.file = templates, prefix, file  # in a section: where implicit ones go
        self.taken = set(names.values()) if names else set()  # the class's attribute names

    def nested(self, body) -> tuple:
        """A shortcut's or branch's body: a module of its own, with its own names."""
        inner = _Lowerer(self.keys, scope_names(body), flags=self.flags)
        inner.taken = self.taken
        return inner.stmts(body)

    def name(self, role: str, node) -> str | None:
        return None if self.names is None else self.names[(role, id(node))]

    def flag(self, base: str) -> str:
        name = python_name(f"use_{base}".rstrip("_"))
        while name in self.flags or name in self.taken:
            name += "_"
        self.flags.add(name)
        return name

    def stmts(self, body) -> tuple:
        return tuple(self.stmt(s) for s in body)

    def stmt(self, s):
        key = next(self.keys)
        kind = s.kind
        if kind == "let":
            return TLet(key, s.span, s.name, local_name(s.name), s.value)
        if kind == "call_stmt":
            return TCall(key, s.span, s.call, self.name("call", s))
        if kind == "if":
            first = next((self.name("call", c) for c in _calls(s.then)), None) or "branch"
            return TIf(key, s.span, s.cond, self.stmts(s.then), self.stmts(s.other), self.flag(first))
        if kind == "table":
            return TTable(key, s.span, s, self.name("layers", s))
        if kind == "keep":
            return TKeep(key, s.span, s.name, tensor_name(s.name))
        if kind == "from":
            return TFrom(key, s.span, s.name, tensor_name(s.name))
        if kind == "join":
            return TJoin(key, s.span, s.op, tuple(s.names), tuple(tensor_name(n) for n in s.names))
        if kind == "repeat":
            return self.repeat(key, s)
        if kind == "output":
            return TOutput(key, s.span, s.name)
        if kind == "aux":
            return TAux(key, s.span, s)
        if self.names is None:  # in a section: a template of its own
            name = f"{self.prefix}{sum(t.startswith(self.prefix) and t[len(self.prefix):].isdigit() for t in self.templates)}"
            body = _Lowerer(self.keys, scope_names([s])).stmts([s])
            self.templates[name] = Template(name, self.file, (), body, s.span, implicit=True)
            return TImplicit(key, s.span, name)
        return self.compound_stmt(key, s)

    def repeat(self, key: int, s) -> TRepeat:
        if len(s.body) == 1 and s.body[0].kind == "call_stmt":  # each iteration is the call's module
            body = _Lowerer(self.keys, {("call", id(s.body[0])): None}, flags=self.flags).stmts(s.body)
            return TRepeat(key, s.span, s.count, body, self.name("layers", s), None)
        name = f"{self.prefix}repeat{key}"
        body = _Lowerer(self.keys, scope_names(s.body), self.templates, self.prefix, self.file).stmts(s.body)
        if self.templates is not None:
            self.templates[name] = Template(name, self.file, (), body, s.span, implicit=True)
        return TRepeat(key, s.span, s.count, body, self.name("layers", s), name)

    def compound_stmt(self, key: int, s):
        if s.kind == "residual":
            short = s.shortcut
            shortcut = None
            if short is not None:
                shortcut = TShortcut(next(self.keys), short.span, short.cond, self.nested(short.body),
                                     self.name("shortcut", s) or "shortcut", self.flag("shortcut"))
            depth = self.name("depth", s) if any(k.name == "stochastic_depth" for k in s.kwargs) else None
            return TResidual(key, s.span, s.cond, tuple(s.kwargs), self.stmts(s.body), shortcut, depth,
                             self.flag("residual"), "identity")
        if s.kind == "concat":
            return TConcat(key, s.span, tuple(TBranch(next(self.keys), b.span, self.nested(b.body),
                                                      self.name("branch", b) or f"branch_{i}")
                                              for i, b in enumerate(s.branches)))
        return TMultiply(key, s.span, self.stmts(s.body), "gate")


def _calls(stmts):
    for s in stmts:
        if s.kind == "call_stmt":
            yield s
        elif s.kind == "if":
            yield from _calls(s.then)
            yield from _calls(s.other)


def walk(body):
    """Every statement of a template body, nested ones included, in source order."""
    for stmt in body:
        yield stmt
        for inner in children(stmt):
            yield from walk(inner)


def children(stmt) -> list[tuple]:
    if isinstance(stmt, TIf):
        return [stmt.then, stmt.other]
    if isinstance(stmt, TRepeat) and stmt.template is None:
        return [stmt.body]
    if isinstance(stmt, TResidual):
        return [stmt.body] + ([stmt.shortcut.body] if stmt.shortcut else [])
    if isinstance(stmt, TConcat):
        return [b.body for b in stmt.branches]
    if isinstance(stmt, TMultiply):
        return [stmt.body]
    return []
