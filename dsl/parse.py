"""Parse .arch text into the typed AST (dsl/ast.py).

    >>> module = parse("let width = 1.0\\n")
    >>> module.items[0].name, module.items[0].value.value
    ('width', 1.0)

The grammar is grammar/arch.lark; this module builds lark's LALR parser once,
turns indentation into _INDENT/_DEDENT, and has one method per rule (_ToAst),
which the parser calls as it reduces the rule (dsl/reduce.py): no parse tree
is built and then walked again. A syntax error raises ArchError with one
located diagnostic.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache
from importlib import resources

from lark import Lark, Token
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken
from lark.indenter import Indenter

from . import ast
from .record import replace
from .reduce import ReducingLark, reducing
from .diagnostics import ArchError, Diagnostic
from .source import MAX_SOURCE_CHARS, MAX_SOURCE_LINES

MAX_LITERAL = 1 << 62  # the evaluator's bound on integers (compiler/evaluate.py, MAX_INT), met already in the text


class _IndentError(Exception):
    """An indentation the parser cannot read; carries the diagnostic's place and words."""

    def __init__(self, line: int, col: int, message: str, hint: str):
        super().__init__(message)
        self.line, self.col, self.message, self.hint = line, col, message, hint


class _ArchIndenter(Indenter):
    """Turns indentation into _INDENT/_DEDENT, comparing indentations as written, as Python does
    for tabs: a body's lines repeat the indentation that opened it, and a deeper line extends it.
    Counting a tab as some number of spaces would guess; a line whose depth depends on the guess
    is an error at its tab (E101)."""

    NL_type = "_NL"
    OPEN_PAREN_types = ["LPAR"]
    CLOSE_PAREN_types = ["RPAR"]
    INDENT_type = "_INDENT"
    DEDENT_type = "_DEDENT"
    tab_len = 8  # unused: indentations are compared as strings (handle_NL)

    def process(self, stream):
        self.opened = [("", 0)]  # each open body's indentation, as written, and the line that opened it
        return super().process(stream)

    def handle_NL(self, token):
        # Comments live inside _NL tokens (see the grammar); keep them for `archc fmt`.
        _comments.extend(_comments_in(token))
        if self.paren_level > 0:
            return
        yield token
        text, line = token.rsplit("\n", 1)[1], token.end_line
        if text == self.opened[-1][0]:
            return
        if text.startswith(self.opened[-1][0]):
            self.opened.append((text, line))
            self.indent_level.append(len(text))
            yield Token.new_borrow_pos(self.INDENT_type, text, token)
            return
        depth = max(k for k, (opened, _) in enumerate(self.opened) if text.startswith(opened))
        if self.opened[depth][0] != text:
            raise _indent_error(text, line, *self.opened[depth + 1])
        while len(self.opened) > depth + 1:
            self.opened.pop()
            self.indent_level.pop()
            yield Token.new_borrow_pos(self.DEDENT_type, text, token)


def _indent_error(text: str, line: int, opened: str, opened_line: int) -> _IndentError:
    """`text` (on `line`) falls short of, or parts from, the indentation `opened` of the body opened at `opened_line`."""
    at = next((i for i, (a, b) in enumerate(zip(text, opened)) if a != b), None)
    if at is None:  # a shorter indentation of the same kind: between two bodies
        return _IndentError(line, len(text) + 1, "this line's indentation matches no enclosing block",
                            "indent it like the statements around it")
    hint = "indent with spaces only (or tabs only): how many spaces a tab is worth is a guess"
    if text[at] == "\t":
        return _IndentError(line, at + 1, f"a tab in the indentation where line {opened_line}, above, has a space", hint)
    return _IndentError(opened_line, at + 1, f"a tab in the indentation where line {line}, below, has a space", hint)


def _comments_in(token: Token) -> list[ast.Comment]:
    found, line, col = [], token.line, token.column
    text = str(token)
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\n":
            line, col, i = line + 1, 1, i + 1
        elif ch == "#":
            end = text.find("\n", i)
            end = len(text) if end < 0 else end
            body = text[i:end].rstrip()
            found.append(_node(ast.Comment, text=body, span=ast.Span(line=line, col=col, end_line=line, end_col=col + len(body))))
            col, i = col + (end - i), end
        else:
            col, i = col + 1, i + 1
    return found


_comments: list[ast.Comment] = []  # the parse's, under dsl/reduce.py's lock


@lru_cache(maxsize=1)
def _parser() -> Lark:
    grammar = resources.files("archc.grammar").joinpath("arch.lark").read_text(encoding="utf-8")
    return _ArchLark(
        grammar,
        parser="lalr",
        lexer="contextual",
        postlex=_ArchIndenter(),
        propagate_positions=True,  # (its positions: dsl/reduce.py computes them)
        maybe_placeholders=True,
        cache=True,
    )


def parse(text: str, file: str = "<input>") -> ast.Module:
    """Parse a whole file. Raises ArchError(diagnostics) on a syntax error."""
    _check_size(text, file)
    if not text.endswith("\n"):
        text += "\n"
    parser = _parser()
    with reducing(_ToAst(text)) as state:
        _comments.clear()
        try:
            built = parser.parse(text)
        except UnexpectedInput as error:
            raise ArchError([_syntax_diagnostic(error, text, file)]) from None
        except _IndentError as error:
            raise ArchError([Diagnostic(code="E101", file=file, message=error.message, hint=error.hint,
                                        span=ast.Span(line=error.line, col=error.col, end_line=error.line,
                                                      end_col=error.col + 1))]) from None
        comments = list(_comments)
    if state.error is not None:  # a rule's method refused its text, and no syntax error came after
        raise ArchError([replace(d, file=file) for d in state.error.diagnostics]) from None
    return replace(built.value, comments=comments)


def _check_size(text: str, file: str) -> None:
    if len(text) > MAX_SOURCE_CHARS or text.count("\n") > MAX_SOURCE_LINES:
        line = min(text.count("\n", 0, MAX_SOURCE_CHARS) + 1, MAX_SOURCE_LINES + 1)
        raise ArchError([Diagnostic(
            code="E102", file=file, span=_line_span(line),
            message=f"file too large: more than {MAX_SOURCE_LINES:,} lines or {MAX_SOURCE_CHARS:,} characters",
            hint="a network table has tens of rows; generate repeats with a repeat column instead")])


_FRIENDLY = {
    "_NL": "end of line", "_INDENT": "an indented body", "_DEDENT": "end of the indented body",
    "NAME": "a name", "NUMBER": "a number", "STRING": "a string", "DIMS": "a size like 3x3",
    "LPAR": "'('", "RPAR": "')'", "COLON": "':'", "COMMA": "','", "EQUAL": "'='", "VBAR": "'|'",
    "HEADING": "a column heading", "$END": "end of file", "KDIMS": "a kernel like k5x5", "MULOP": "an operator",
    "COMPARE": "a comparison", "PLUS": "'+'", "MINUS": "'-'", "CHECK": "'✓'",
}


# What a user most likely left out comes first in a hint.
_FIRST = ["_NL", "VBAR", "RPAR", "COLON", "COMMA", "EQUAL", "NAME", "NUMBER"]
_COMMENT_HINT = "a comment starts with '# ' (a '#' then a space)"


def _syntax_diagnostic(error: UnexpectedInput, text: str, file: str) -> Diagnostic:
    line, col = max(error.line, 1), max(error.column, 1)
    expected = getattr(error, "expected", None) or getattr(error, "allowed", None) or []
    expected = sorted(expected, key=lambda e: (_FIRST.index(e) if e in _FIRST else len(_FIRST), e))
    wanted = ", ".join(dict.fromkeys(_FRIENDLY.get(e, _describe_terminal(e)) for e in expected[:8]))
    hint = f"expected {wanted}" if wanted else None
    if isinstance(error, UnexpectedCharacters):
        got = text[error.pos_in_stream] if error.pos_in_stream < len(text) else "end of file"
        message = f"unexpected character {got!r}"
        hint = _COMMENT_HINT if got == "#" else hint
    elif isinstance(error, UnexpectedEOF):
        message = "unexpected end of file"
    else:
        token = error.token  # type: ignore[attr-defined]
        value = str(token)
        if token.type == "_INDENT":
            # The indent token borrows the position of the newline before it.
            line, col = token.end_line or line, token.end_column or col
            message = "unexpected indentation"
            hint = "only the body of a block, section, if, residual, shortcut, concat, branch or multiply is indented"
        elif token.type == "HEADING":
            # Outside a header the lexer only falls back to a heading when nothing else fits.
            message = f"unexpected character {value.lstrip()[:1]!r}"
            col += len(value) - len(value.lstrip())
        else:
            shown = _FRIENDLY.get(token.type, repr(value)) if token.type.startswith("_") or token.type == "$END" else repr(value)
            message = f"unexpected {shown}"
            if isinstance(error, UnexpectedToken) and token.type in ("_NL", "$END") and token.line:
                line, col = token.line, token.column
        if value.lstrip().startswith("#"):
            hint = _COMMENT_HINT
    return Diagnostic(code="E100", file=file, message=message, hint=hint,
                      span=ast.Span(line=line, col=col, end_line=line, end_col=col + 1))


def _describe_terminal(name: str) -> str:
    pattern = _parser().get_terminal(name).pattern if name in {t.name for t in _parser().terminals} else None
    if pattern is not None and pattern.type == "str":
        return repr(pattern.value)
    return name.lower()


def _line_span(line: int) -> ast.Span:
    return ast.Span(line=line, col=1, end_line=line, end_col=2)


def _token_span(token: Token) -> ast.Span:
    return ast.Span(line=token.line, col=token.column, end_line=token.end_line, end_col=token.end_column)


def _span(meta) -> ast.Span:
    if getattr(meta, "empty", True):
        return ast.NO_SPAN
    return ast.Span(line=meta.line, col=meta.column, end_line=meta.end_line, end_col=meta.end_column)


def _node(cls, **fields):
    """Build an AST node without re-validating what the grammar already guarantees."""
    return cls(**fields)


def _number(text: str, span: ast.Span) -> int | float:
    """A number literal's value, or E400 when it is out of the evaluator's range (before Python's
    int() meets a 4,301-digit string, which it refuses)."""
    if not any(c in text for c in ".eE"):
        return _integer(text, span)
    value = float(text)
    if not math.isfinite(value):
        raise _too_large(text, span, "beyond the range of a floating-point number")
    return value


def _integer(digits: str, span: ast.Span) -> int:
    significant = digits.lstrip("0")
    if len(significant) > len(str(MAX_LITERAL)) or int(significant or "0") > MAX_LITERAL:
        raise _too_large(digits, span, f"numbers go up to 2⁶² ({MAX_LITERAL:,})")
    return int(significant or "0")


def _integers_in(token: Token) -> list[tuple[int, re.Match]]:
    """The whole numbers of a one-line DIMS or KDIMS token, each with its match (group 1 its digits,
    group 2 its `²`); a number out of range is E400 at its own digits."""
    found = []
    for match in re.finditer(r"(\d+)(²?)", str(token)):
        col = token.column + match.start()
        found.append((_integer(match.group(1), ast.Span(line=token.line, col=col, end_line=token.line,
                                                        end_col=col + len(match.group(1)))), match))
    return found


def _too_large(text: str, span: ast.Span, why: str) -> ArchError:
    shown = text if len(text) <= 24 else f"{text[:12]}…{text[-4:]} ({len(text):,} characters)"
    return ArchError([Diagnostic(code="E400", span=span, message=f"the number {shown} is too large: {why}")])


_RULE = object()  # the Markdown rule under a table's header: the table keeps only that it had one


class _Part(list):
    """A cell's comma-separated part: its atoms, and its text as written."""

    def __init__(self, atoms, text: str):
        super().__init__(atoms)
        self.text = text


class _ToAst:
    """One method per rule of grammar/arch.lark, called with the rule's place (`meta`: line, column,
    end_line, end_column, start_pos, end_pos, empty) and the children it keeps, already built."""

    def __init__(self, source: str | None = None):
        self.source = source

    # ------------------------------------------------------------- top level
    def start(self, meta, items):
        return _node(ast.Module, items=[i for i in items if i is not None], span=_span(meta))

    def use(self, meta, c):
        return _node(ast.Use, path=c[0][1:-1], span=_span(meta))

    def let(self, meta, c):
        return _node(ast.Let, name=str(c[0]), value=c[1], span=_span(meta))

    def block(self, meta, c):
        name, params, *spellings, body = c
        return _node(ast.BlockDef, name=str(name), params=params or [], body=body,
                     spellings=[s[1:-1] for s in spellings], span=_span(meta))

    def network(self, meta, c):
        return _node(ast.Network, name=str(c[0]), params=c[1] or [], span=_span(meta))

    def input(self, meta, c):
        if not isinstance(c[0], ast.Dims):
            raise ArchError([Diagnostic(code="E100", span=c[0].span, message="the input is C x H x W, like 3 x 224 x 224")])
        return _node(ast.Input, dims=c[0], span=_span(meta))

    def variant(self, meta, c):
        return _node(ast.Variant, name=str(c[0]), kwargs=c[1] or [], span=_span(meta))

    def section(self, meta, c):
        return _node(ast.Section, name=str(c[0]), where=c[1] or [], body=c[2], span=_span(meta))

    def params(self, meta, c):
        return list(c)

    def param(self, meta, c):
        name, *aliases, default = c
        return _node(ast.Param, name=str(name), aliases=[a[1:-1] for a in aliases], default=default, span=_span(meta))

    # ------------------------------------------------------------ statements
    def body(self, meta, c):
        return list(c)

    def inline_body(self, meta, c):
        return list(c)

    def call_stmt(self, meta, c):
        return _node(ast.CallStmt, call=c[0], span=_span(meta))

    def if_stmt(self, meta, c):
        return _node(ast.If, cond=c[0], then=c[1], other=c[2] or [], span=_span(meta))

    def residual(self, meta, c):
        kwargs, cond, body, shortcut = c
        return _node(ast.Residual, kwargs=kwargs or [], cond=cond, body=body, shortcut=shortcut, span=_span(meta))

    def shortcut(self, meta, c):
        return _node(ast.Shortcut, cond=c[0], body=c[1], span=_span(meta))

    def concat(self, meta, c):
        return _node(ast.Concat, branches=list(c), span=_span(meta))

    def branch(self, meta, c):
        return _node(ast.Branch, body=c[0], span=_span(meta))

    def multiply(self, meta, c):
        return _node(ast.Multiply, body=c[0], span=_span(meta))

    def output(self, meta, c):
        return _node(ast.Output, name=str(c[0]), span=_span(meta))

    def keep(self, meta, c):
        return _node(ast.Keep, name=str(c[0]), span=_span(meta))

    def from_stmt(self, meta, c):
        return _node(ast.From, name=str(c[0]), span=_span(meta))

    def join_concat(self, meta, c):
        return _node(ast.Join, op="concat", names=[str(n) for n in c], span=_span(meta))

    def join_add(self, meta, c):
        return _node(ast.Join, op="add", names=[str(n) for n in c], span=_span(meta))

    def repeat(self, meta, c):
        return _node(ast.Repeat, count=c[0], body=c[1], span=_span(meta))

    def aux(self, meta, c):
        return _node(ast.Aux, name=str(c[0]), call=c[1], source=str(c[2]) if c[2] is not None else None, cond=c[3],
                     span=_span(meta))

    # ---------------------------------------------------------------- tables
    def table(self, meta, c):
        ruled = len(c) > 1 and c[1] is _RULE
        return _node(ast.Table, header=c[0], rows=list(c[2:] if ruled else c[1:]), ruled=ruled, span=_span(meta))

    def rule(self, meta, c):
        return _RULE

    def header(self, meta, c):
        span = _span(meta)
        return [_node(ast.Heading, text=str(t).strip(), span=_token_span(t)) if t is not None else _node(ast.Heading, text="", span=span)
                for t in c]

    def row(self, meta, c):
        return _node(ast.Row, cells=list(c), span=_span(meta))

    def cell(self, meta, c):
        return _node(ast.Cell, parts=[list(p) for p in c], part_texts=[p.text for p in c], text=self.text_of(meta),
                     span=_span(meta))

    def exact_cell(self, meta, c):
        return _node(ast.Cell, state="exact", parts=[[c[0]]], text=self.text_of(meta), span=_span(meta))

    def text_of(self, meta) -> str:
        """The source as written between a node's ends (one line: cells never span lines)."""
        if getattr(meta, "empty", True) or self.source is None:
            return ""
        return " ".join(self.source[meta.start_pos:meta.end_pos].split())

    def absent_cell(self, meta, c):
        return _node(ast.Cell, state="absent", span=_token_span(c[0]))

    def check_cell(self, meta, c):
        return _node(ast.Cell, state="check", span=_token_span(c[0]))

    def empty_cell(self, meta, c):
        return _node(ast.Cell, state="empty", span=_span(meta))

    def cell_part(self, meta, c):
        return _Part(c, self.text_of(meta))

    def kernel(self, meta, c):
        sizes = [value for value, _ in _integers_in(c[0])]
        return _node(ast.Kernel, size=sizes, text=str(c[0]), span=_token_span(c[0]))

    def dims(self, meta, c):
        # The DIMS token (`224² × 3`, `7×7/2`) is split into its numbers here.
        token = c[0]
        numbers = _integers_in(token)
        stride = numbers.pop() if "/" in token else None
        span = _token_span(token)
        items = [_node(ast.Num, value=value, text=match.group(1), span=span) for value, match in numbers]
        squared = [bool(match.group(2)) for _, match in numbers]
        stride_num = _node(ast.Num, value=stride[0], text=stride[1].group(1), span=span) if stride else None
        return _node(ast.Dims, items=items, squared=squared, stride=stride_num, text=" ".join(str(token).split()),
                     span=span)

    def dims_expr(self, meta, c):
        return _node(ast.Dims, items=list(c), squared=[False] * len(c), span=_span(meta))

    # ----------------------------------------------------------- expressions
    def ifexp(self, meta, c):
        return _node(ast.IfExp, then=c[0], cond=c[1], other=c[2], span=_span(meta))

    def or_(self, meta, c):
        return _node(ast.BoolOp, op="or", values=list(c), span=_span(meta))

    def and_(self, meta, c):
        return _node(ast.BoolOp, op="and", values=list(c), span=_span(meta))

    def not_(self, meta, c):
        return _node(ast.Not, operand=c[0], span=_span(meta))

    def compare(self, meta, c):
        return _node(ast.Compare, left=c[0], op=str(c[1]), right=c[2], span=_span(meta))

    def arith(self, meta, c):
        left = c[0]
        for op, right in zip(c[1::2], c[2::2]):
            span = ast.Span(line=left.span.line, col=left.span.col, end_line=right.span.end_line, end_col=right.span.end_col)
            left = _node(ast.BinOp, op=str(op), left=left, right=right, span=span)
        return left

    def neg(self, meta, c):
        return _node(ast.Neg, operand=c[-1], span=_span(meta))

    def power(self, meta, c):
        return _node(ast.BinOp, op="**", left=c[0], right=c[2], span=_span(meta))

    def number(self, meta, c):
        return _node(ast.Num, value=_number(str(c[0]), _token_span(c[0])), text=str(c[0]), span=_token_span(c[0]))

    def true(self, meta, c):
        return _node(ast.Bool, value=True, span=_span(meta))

    def false(self, meta, c):
        return _node(ast.Bool, value=False, span=_span(meta))

    def none(self, meta, c):
        return _node(ast.NoneLit, span=_span(meta))

    def string(self, meta, c):
        return _node(ast.Str, value=str(c[0])[1:-1], span=_token_span(c[0]))

    def name(self, meta, c):
        return _node(ast.Name, id=str(c[0]), span=_token_span(c[0]))

    def attr(self, meta, c):
        return _node(ast.Attr, obj=str(c[0]), attr=str(c[1]), span=_span(meta))

    def call(self, meta, c):
        c = [c[0], c[1], c[2]] if len(c) == 3 else [c[0], None, c[1]]
        items = c[2] or []
        seen_kwarg = None
        for item in items:
            if isinstance(item, ast.Kwarg):
                seen_kwarg = item
            elif seen_kwarg is not None:
                raise ArchError([Diagnostic(code="E100", span=item.span, message="a positional argument follows a named one",
                                            hint=f"put it before '{seen_kwarg.name} = ...'")])
        args = [a for a in items if not isinstance(a, ast.Kwarg)]
        kwargs = [a for a in items if isinstance(a, ast.Kwarg)]
        func = str(c[0]) if c[1] is None else f"{c[0]}.{c[1]}"  # `op.conv`: the op itself
        return _node(ast.Call, func=func, args=args, kwargs=kwargs, span=_span(meta))

    def args(self, meta, c):
        return list(c)

    def kwarg(self, meta, c):
        return _node(ast.Kwarg, name=str(c[0]), value=c[1], span=_span(meta))

    kwarg_item = kwarg

    def kwargs(self, meta, c):
        return list(c)


class _ArchLark(ReducingLark):
    """The parser `_parser()` builds: its rules reduce to what _ToAst's methods make of them."""

    methods_class = _ToAst
