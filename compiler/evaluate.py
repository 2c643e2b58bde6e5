"""Values and the evaluator of the small expression language.

    >>> from archc.dsl.parse import parse
    >>> let = parse("let c = make_divisible(16 * 0.75, 8)\\n").items[0]
    >>> evaluate(let.value, Env({}))
    16

Values are plain Python numbers, booleans, None and strings, plus `Ref` (an op
or block, maybe with bound arguments) and `ShapeValue` (what `in` evaluates to).
Nothing here calls Python's eval: each node kind has its own case.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..dsl import ast
from ..dsl.diagnostics import did_you_mean

MAX_INT = 1 << 62  # a bigger number is a typo, and would make later arithmetic slow


class CompileError(Exception):
    """A user error with a location; collected into a diagnostic by the caller."""

    def __init__(self, code: str, message: str, span: ast.Span, hint: str | None = None):
        super().__init__(message)
        self.code, self.message, self.span, self.hint = code, message, span, hint


@dataclass(frozen=True)
class Ref:
    """An op or a block, as a value: `act = relu`, `let MBConv6 = mbconv(expand = 6)`."""

    kind: str  # "op" or "block"
    name: str
    args: tuple = ()
    kwargs: tuple[tuple[str, Any], ...] = ()

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class ShapeValue:
    """`in`: the shape entering the current block. A vector reads as F×1×1."""

    shape: tuple[int, ...]

    def attr(self, name: str, span: ast.Span):
        fields = {"c": self.shape[0],
                  "h": self.shape[1] if len(self.shape) == 3 else 1,
                  "w": self.shape[2] if len(self.shape) == 3 else 1}
        if name not in fields:
            raise CompileError("E200", f"a shape has no field '{name}'", span, hint="use in.c, in.h or in.w")
        return fields[name]


@dataclass
class Env:
    """Name -> value, with an optional parent scope."""

    values: dict[str, Any]
    parent: Env | None = None
    lazy: dict[str, Any] = field(default_factory=dict)  # name -> zero-argument thunk (top-level lets)

    def lookup(self, name: str, span: ast.Span):
        env: Env | None = self
        while env is not None:
            if name in env.values:
                return env.values[name]
            if name in env.lazy:
                env.values[name] = env.lazy.pop(name)()
                return env.values[name]
            env = env.parent
        raise CompileError("E200", f"unknown name '{name}'", span, hint=did_you_mean(name, self.names()))

    def callable(self, name: str, span: ast.Span):
        """Look `name` up as something to call. Values that are not ops or blocks do
        not hide one of the same name further out, so `dropout(dropout)` calls the
        op with the parameter; a name that is only ever none (`nl = -`) gives None,
        and the call is left out."""
        env: Env | None = self
        absent = False
        while env is not None:
            for table in (env.values, env.lazy):
                if name in table:
                    value = self.lookup(name, span) if table is env.lazy else table[name]
                    if isinstance(value, Ref):
                        return value
                    absent = absent or value is None
            env = env.parent
        return None if absent else self.lookup(name, span)

    def names(self) -> set[str]:
        env, names = self, set()
        while env is not None:
            names |= set(env.values) | set(env.lazy)
            env = env.parent
        return names

    def child(self, values: dict[str, Any]) -> Env:
        return Env(values, self)


def make_divisible(v: float, divisor: int = 8, min_value: int | None = None) -> int:
    """torchvision's _make_divisible: round to a multiple, never more than 10% down."""
    if divisor <= 0:
        raise ValueError("the divisor must be positive")
    min_value = divisor if min_value is None else min_value
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


def _round(v: float, digits: int = 0):
    scale = 10 ** digits
    result = math.floor(v * scale + 0.5) / scale  # half up, as papers round
    return int(result) if digits == 0 else result


BUILTINS = {
    "make_divisible": make_divisible,
    "ceil": lambda v: int(math.ceil(v)),
    "floor": lambda v: int(math.floor(v)),
    "round": _round,
    "min": min,
    "max": max,
    "int": int,
    "float": float,
    "abs": abs,
}


def type_name(value) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if value is None:
        return "none"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Ref):
        return f"the {value.kind} '{value.name}'"
    if isinstance(value, ShapeValue):
        return "a shape"
    return type(value).__name__


def number(value, span: ast.Span, what: str = "a number"):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CompileError("E209", f"expected {what}, got {type_name(value)}", span)
    return value


def evaluate(node: ast.Expr, env: Env):
    kind = node.kind
    if kind == "num":
        return node.value
    if kind == "bool":
        return node.value
    if kind == "none":
        return None
    if kind == "str":
        return node.value
    if kind == "name":
        return env.lookup(node.id, node.span)
    if kind == "attr":
        obj = env.lookup(node.obj, node.span)
        if not isinstance(obj, ShapeValue):
            raise CompileError("E209", f"'{node.obj}' is {type_name(obj)}; only a shape has fields", node.span)
        return obj.attr(node.attr, node.span)
    if kind == "call":
        return _call(node, env)
    if kind == "binop":
        return _binop(node, evaluate(node.left, env), evaluate(node.right, env))
    if kind == "neg":
        return -number(evaluate(node.operand, env), node.span)
    if kind == "not":
        return not truth(evaluate(node.operand, env), node.operand.span)
    if kind == "compare":
        return _compare(node, evaluate(node.left, env), evaluate(node.right, env))
    if kind == "boolop":
        for value_node in node.values:
            value = truth(evaluate(value_node, env), value_node.span)
            if value == (node.op == "or"):
                return value
        return node.op == "and"
    if kind == "ifexp":
        return evaluate(node.then if truth(evaluate(node.cond, env), node.cond.span) else node.other, env)
    if kind == "dims":  # `1x7` as a value: a kernel or padding pair; `7²` is 7×7
        if node.stride is not None:
            raise CompileError("E209", "a stride after '/' belongs in a table's kernel cell", node.span,
                               hint="in a call, give it as stride = ...")
        sizes = tuple(evaluate(i, env) for i in node.items)
        return sizes * 2 if len(sizes) == 1 and node.squared[0] else sizes
    raise CompileError("E209", f"a {kind} cannot be used as a value here", node.span)


def truth(value, span: ast.Span) -> bool:
    if isinstance(value, bool) or value is None:
        return bool(value)
    if isinstance(value, (int, float)):
        return value != 0
    raise CompileError("E209", f"expected a condition, got {type_name(value)}", span)


def _checked(value, span: ast.Span):
    if isinstance(value, float) and not math.isfinite(value):
        raise CompileError("E209", "the result is not a finite number", span)
    if isinstance(value, int) and abs(value) > MAX_INT:
        raise CompileError("E400", f"the number {value:.3g} is too large", span)
    return value


def _binop(node: ast.BinOp, left, right):
    a, b = number(left, node.left.span), number(right, node.right.span)
    op = node.op
    if op in ("/", "//", "%") and b == 0:
        raise CompileError("E209", "division by zero", node.span)
    if op == "+":
        return _checked(a + b, node.span)
    if op == "-":
        return _checked(a - b, node.span)
    if op == "*":
        if isinstance(a, int) and isinstance(b, int) and a and b and abs(a).bit_length() + abs(b).bit_length() > 64:
            raise CompileError("E400", "the product is too large", node.span)
        return _checked(a * b, node.span)
    if op == "/":
        return _checked(a / b, node.span)
    if op == "//":
        return _checked(a // b, node.span)
    return _checked(a % b, node.span)


def _compare(node: ast.Compare, left, right) -> bool:
    if node.op in ("==", "!="):
        same = left == right
        return same if node.op == "==" else not same
    a, b = number(left, node.left.span), number(right, node.right.span)
    return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[node.op]


def _call(node: ast.Call, env: Env):
    fn = BUILTINS.get(node.func)
    if fn is None:
        # An op or block called inside an expression is a partial: `let MBConv6 = mbconv(expand = 6)`.
        callee = env.callable(node.func, node.span)
        if isinstance(callee, Ref):
            args = tuple(evaluate(a, env) for a in node.args)
            kwargs = tuple((k.name, evaluate(k.value, env)) for k in node.kwargs)
            return Ref(callee.kind, callee.name, callee.args + args, callee.kwargs + kwargs)
        raise CompileError("E209", f"'{node.func}' is {type_name(callee)}, not a function", node.span)
    args = [number(evaluate(a, env), a.span) for a in node.args]
    if node.kwargs:
        raise CompileError("E202", f"{node.func}() takes no named arguments", node.kwargs[0].span)
    try:
        return _checked(fn(*args), node.span)
    except (TypeError, ValueError, OverflowError) as error:
        raise CompileError("E209", f"{node.func}(): {error}", node.span) from None
