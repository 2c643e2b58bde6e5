"""The typed AST of a .arch file: frozen records (dsl/record.py), each carrying its span.

One record per grammar rule (grammar/arch.lark). Unions are tagged by `kind`, so
an AST as plain data (`record.as_data`) says what each node is, and two ASTs
compare by value (`strip_spans` drops the positions, for "print then parse gives
the same tree").
"""

from __future__ import annotations

from typing import Literal, Union

from .record import Record, as_data


class Span(Record):
    """Where a node stands in its file: 1-based lines and columns, end exclusive."""

    line: int
    col: int
    end_line: int
    end_col: int


NO_SPAN = Span(line=0, col=0, end_line=0, end_col=0)


class Node(Record):
    span: Span = NO_SPAN


# ----------------------------------------------------------------- expressions


class Num(Node):
    kind: Literal["num"] = "num"
    value: int | float
    text: str  # as written, so `1.0` prints back as `1.0`


class Bool(Node):
    kind: Literal["bool"] = "bool"
    value: bool


class NoneLit(Node):
    kind: Literal["none"] = "none"


class Str(Node):
    kind: Literal["str"] = "str"
    value: str


class Name(Node):
    kind: Literal["name"] = "name"
    id: str


class Attr(Node):
    """`in.c`: a field of a shape-valued name."""

    kind: Literal["attr"] = "attr"
    obj: str
    attr: str


class Kwarg(Node):
    name: str
    value: Expr


class Call(Node):
    kind: Literal["call"] = "call"
    func: str
    args: list[Expr] = []
    kwargs: list[Kwarg] = []


class BinOp(Node):
    kind: Literal["binop"] = "binop"
    op: Literal["+", "-", "*", "/", "//", "%", "**"]
    left: Expr
    right: Expr


class Neg(Node):
    kind: Literal["neg"] = "neg"
    operand: Expr


class Not(Node):
    kind: Literal["not"] = "not"
    operand: Expr


class Compare(Node):
    kind: Literal["compare"] = "compare"
    op: Literal["==", "!=", "<", "<=", ">", ">="]
    left: Expr
    right: Expr


class BoolOp(Node):
    kind: Literal["boolop"] = "boolop"
    op: Literal["and", "or"]
    values: list[Expr]


class IfExp(Node):
    kind: Literal["ifexp"] = "ifexp"
    cond: Expr
    then: Expr
    other: Expr


class Dims(Node):
    """`224² × 3`, `3 x 224 x 224`, `7×7/2`: sizes, each maybe squared, and a stride."""

    kind: Literal["dims"] = "dims"
    items: list[Expr]
    squared: list[bool]
    stride: Expr | None = None
    text: str | None = None  # as written, when it was one token


class Kernel(Node):
    """EfficientNet's `k5x5` in an operator cell."""

    kind: Literal["kernel"] = "kernel"
    size: list[int]
    text: str


Expr = Union[Num, Bool, NoneLit, Str, Name, Attr, Call, BinOp, Neg, Not, Compare, BoolOp, IfExp, Dims, Kernel]

# ---------------------------------------------------------------------- tables


class Heading(Node):
    text: str  # as written, stripped


class Cell(Node):
    """One table cell: `-` is absent, `✓` is true, `= EXPR` is a value no `where` rewrites, else
    comma-separated parts of atoms. `text` is the cell as written (paper spellings: `conv3-64`)."""

    state: Literal["value", "absent", "check", "empty", "exact"] = "value"
    parts: list[list[Expr]] = []
    text: str = ""
    part_texts: list[str] = []  # each comma-separated part as written: `Fused-MBConv1`, `SE0.25`


class Row(Node):
    cells: list[Cell]


# ------------------------------------------------------------------ statements


class CallStmt(Node):
    kind: Literal["call_stmt"] = "call_stmt"
    call: Call


class Table(Node):
    kind: Literal["table"] = "table"
    header: list[Heading]
    rows: list[Row]
    ruled: bool = False  # a Markdown rule `|---|---|` under the header (fmt keeps it)


class Let(Node):
    kind: Literal["let"] = "let"
    name: str
    value: Expr


class If(Node):
    kind: Literal["if"] = "if"
    cond: Expr
    then: list[Stmt]
    other: list[Stmt] = []


class Shortcut(Node):
    cond: Expr | None = None
    body: list[Stmt]


class Residual(Node):
    kind: Literal["residual"] = "residual"
    kwargs: list[Kwarg] = []
    cond: Expr | None = None
    body: list[Stmt]
    shortcut: Shortcut | None = None


class Branch(Node):
    body: list[Stmt]


class Concat(Node):
    kind: Literal["concat"] = "concat"
    branches: list[Branch]


class Multiply(Node):
    kind: Literal["multiply"] = "multiply"
    body: list[Stmt]


class Output(Node):
    kind: Literal["output"] = "output"
    name: str


class Keep(Node):
    """`keep NAME`: the current tensor, named for later statements of the block."""

    kind: Literal["keep"] = "keep"
    name: str


class From(Node):
    """`from NAME`: go on from a tensor named earlier in the block."""

    kind: Literal["from"] = "from"
    name: str


class Join(Node):
    """`concat a, b` / `add a, b`: named tensors joined along channels, or summed."""

    kind: Literal["join"] = "join"
    op: Literal["concat", "add"]
    names: list[str]


class Repeat(Node):
    """`repeat n:`: the body n times, `index` counting from 0."""

    kind: Literal["repeat"] = "repeat"
    count: Expr
    body: list[Stmt]


class Aux(Node):
    kind: Literal["aux"] = "aux"
    name: str
    call: Call
    source: str | None = None  # `from NAME`: an earlier output instead of the current tensor
    cond: Expr | None = None


Stmt = Union[CallStmt, Table, Let, If, Residual, Concat, Multiply, Output, Aux, Keep, From, Join, Repeat]

# ------------------------------------------------------------------- top level


class Param(Node):
    name: str
    aliases: list[str] = []  # column headings / operator flags that bind here
    default: Expr | None = None


class Use(Node):
    kind: Literal["use"] = "use"
    path: str


class BlockDef(Node):
    kind: Literal["block"] = "block"
    name: str
    params: list[Param]
    body: list[Stmt]
    spellings: list[str] = []  # operator-cell spellings: "conv{k}-{out}"


class Network(Node):
    kind: Literal["network"] = "network"
    name: str
    params: list[Param]


class Input(Node):
    kind: Literal["input"] = "input"
    dims: Dims


class Variant(Node):
    kind: Literal["variant"] = "variant"
    name: str
    kwargs: list[Kwarg]


class Section(Node):
    kind: Literal["section"] = "section"
    name: str
    where: list[Kwarg] = []
    body: list[Stmt]


Item = Union[Use, Let, BlockDef, Network, Input, Variant, Section]


class Comment(Node):
    text: str


class Module(Node):
    """A whole file: its items in order, and its comments (kept for `archc fmt`)."""

    items: list[Item]
    comments: list[Comment] = []




def strip_spans(node: Node) -> dict:
    """The node as plain data without positions: equal trees compare equal. A cell's source text (`text`,
    `part_texts`) is dropped too, like its span: its meaning is its parts (fmt lays out a value cell's
    spacing; it keeps the text of the cells whose text is read: labels, operator spellings, figures)."""

    def strip(value):
        if isinstance(value, dict):
            cell = "state" in value and "parts" in value
            return {k: strip(v) for k, v in value.items()
                    if k != "span" and not (cell and k in ("text", "part_texts"))}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return strip(as_data(node))
