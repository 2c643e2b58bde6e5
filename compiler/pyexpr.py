"""Python expressions as the source emitter writes them: a small tree that prints
with Python's precedence, folds what is constant, and evaluates with Python's
own operators, so that the emitter can check an expression before writing it.

    >>> k, d = Name("k"), Lit(1)
    >>> print((k - 1) // 2 * d)
    (k - 1) // 2
    >>> print((Lit(3) - 1) // 2)
    1
    >>> evaluate((k - 1) // 2, {"k": 7})
    3

The emitter never writes user text: a `Name` is a validated identifier, a `Lit`
a number, boolean, string, none or tuple of them, printed by `literal`.
"""

from __future__ import annotations

import math
import operator
from typing import Any

from ..dsl.record import Record

# Python's binding strengths (the language reference's precedence table), loosest first.
PREC = {"ifexp": 1, "or": 2, "and": 3, "not": 4, "cmp": 5, "+": 10, "-": 10, "*": 11, "/": 11, "//": 11,
        "%": 11, "neg": 12, "**": 13, "atom": 14}
BINARY = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
          "//": operator.floordiv, "%": operator.mod, "**": operator.pow}
COMPARE = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt,
           ">=": operator.ge, "is": operator.is_, "is not": operator.is_not}


def short_float(value: float) -> str:
    """The shortest decimal within a few units in the last place: 0.2 * 3 / 16 prints 0.0375, not
    0.037500000000000006 (the difference is rounding noise of the arithmetic that made it)."""
    if not math.isfinite(value):
        raise ValueError(f"{value} has no Python literal")
    for digits in range(1, 18):
        text = f"{value:.{digits}g}"
        if math.isclose(float(text), value, rel_tol=4e-16, abs_tol=0.0):
            break
    text = repr(float(text))
    return text


def literal(value) -> str:
    """A value of the IR as a Python literal."""
    if value is None or isinstance(value, (bool, int, str)):
        return repr(value)
    if isinstance(value, float):
        return short_float(value)
    if isinstance(value, tuple):
        return "(" + ", ".join(literal(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    raise TypeError(f"no literal for {type(value).__name__}")


def same(a, b) -> bool:
    """Equal as the emitted file would compute them: same type, floats up to `short_float`'s rounding."""
    if isinstance(a, tuple) or isinstance(b, tuple):
        return isinstance(a, tuple) and isinstance(b, tuple) and len(a) == len(b) and all(map(same, a, b))
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return a == b or math.isclose(a, b, rel_tol=4e-16, abs_tol=0.0)
    return a == b


class PyExpr(Record, eq=False):
    """Base of the tree. Arithmetic operators build (and fold) nodes, as the op specs write formulas.
    Nodes compare by identity."""

    prec = PREC["atom"]

    def __add__(self, other):
        return binary("+", self, other)

    def __sub__(self, other):
        return binary("-", self, other)

    def __mul__(self, other):
        return binary("*", self, other)

    def __floordiv__(self, other):
        return binary("//", self, other)

    def __truediv__(self, other):
        return binary("/", self, other)

    def __radd__(self, other):
        return binary("+", other, self)

    def __rmul__(self, other):
        return binary("*", other, self)

    def __neg__(self):
        return negate(self)

    def __str__(self) -> str:
        return self.source()

    def source(self) -> str:
        raise NotImplementedError

    def wrapped(self, prec: int) -> str:
        """The source, in parentheses where a context binding `prec` tightly needs them."""
        text = self.source()
        return f"({text})" if self.prec < prec else text


class Lit(PyExpr):
    value: Any

    def source(self) -> str:
        text = literal(self.value)
        return text

    def wrapped(self, prec: int) -> str:
        text = self.source()
        negative = isinstance(self.value, (int, float)) and not isinstance(self.value, bool) and text.startswith("-")
        return f"({text})" if negative and prec > PREC["neg"] else text


class Name(PyExpr):
    id: str

    def source(self) -> str:
        return self.id


class Bin(PyExpr):
    op: str
    left: PyExpr
    right: PyExpr

    @property
    def prec(self):  # type: ignore[override]
        return PREC[self.op]

    def source(self) -> str:
        if self.op == "**":  # right-associative: (a ** b) ** c needs them, a ** b ** c does not
            return f"{self.left.wrapped(self.prec + 1)} ** {self.right.wrapped(PREC['neg'])}"
        # left-associative: a right operand of the same strength needs parentheses (a - (b - c))
        return f"{self.left.wrapped(self.prec)} {self.op} {self.right.wrapped(self.prec + 1)}"


class Neg(PyExpr):
    operand: PyExpr
    prec = PREC["neg"]

    def source(self) -> str:
        return f"-{self.operand.wrapped(self.prec)}"


class Not(PyExpr):
    operand: PyExpr
    prec = PREC["not"]

    def source(self) -> str:
        return f"not {self.operand.wrapped(self.prec)}"


class BoolOp(PyExpr):
    op: str  # "and" / "or": Python's, returning an operand; the emitter wraps values in bool()
    values: tuple[PyExpr, ...]

    @property
    def prec(self):  # type: ignore[override]
        return PREC[self.op]

    def source(self) -> str:
        return f" {self.op} ".join(v.wrapped(self.prec + 1) for v in self.values)


class Cmp(PyExpr):
    op: str
    left: PyExpr
    right: PyExpr
    prec = PREC["cmp"]

    def source(self) -> str:
        # comparisons chain in Python: a comparison operand is always parenthesised
        return f"{self.left.wrapped(self.prec + 1)} {self.op} {self.right.wrapped(self.prec + 1)}"


class IfElse(PyExpr):
    cond: PyExpr
    then: PyExpr
    other: PyExpr
    prec = PREC["ifexp"]

    def source(self) -> str:
        return f"{self.then.wrapped(self.prec + 1)} if {self.cond.wrapped(self.prec + 1)} else " \
               f"{self.other.wrapped(self.prec)}"


class Call(PyExpr):
    func: str  # a dotted name the file defines or imports: "nn.Conv2d", "math.ceil", "make_divisible"
    args: tuple[PyExpr, ...] = ()
    kwargs: tuple[tuple[str, PyExpr], ...] = ()

    def source(self) -> str:
        parts = [a.source() for a in self.args] + [f"{k}={v.source()}" for k, v in self.kwargs]
        return f"{self.func}({', '.join(parts)})"


class Tuple(PyExpr):
    items: tuple[PyExpr, ...]

    def source(self) -> str:
        inner = ", ".join(i.source() for i in self.items)
        return f"({inner},)" if len(self.items) == 1 else f"({inner})"


def lift(value) -> PyExpr:
    return value if isinstance(value, PyExpr) else Lit(value)


def _number(e: PyExpr) -> bool:
    return isinstance(e, Lit) and isinstance(e.value, (int, float)) and not isinstance(e.value, bool)


def binary(op: str, left, right) -> PyExpr:
    """`left op right`, folded when both are numbers, and `x * 1`, `x + 0`, `x // 1` kept as x for ints."""
    left, right = lift(left), lift(right)
    foldable = not (op in ("/", "//", "%") and right.value == 0) if _number(right) else False
    if op == "**" and _number(left) and _number(right):
        foldable = abs(right.value) <= 64 and not (left.value < 0 and isinstance(right.value, float))
    if _number(left) and _number(right) and foldable:
        return Lit(BINARY[op](left.value, right.value))
    unit = {"*": 1, "+": 0, "-": 0, "//": 1}.get(op)
    if unit is not None and isinstance(right, Lit) and type(right.value) is int and right.value == unit:
        return left
    if op in ("*", "+") and isinstance(left, Lit) and type(left.value) is int and left.value == unit:
        return right
    return Bin(op, left, right)


def negate(operand) -> PyExpr:
    operand = lift(operand)
    return Lit(-operand.value) if _number(operand) else Neg(operand)


def call(func: str, *args, **kwargs) -> Call:
    return Call(func, tuple(lift(a) for a in args), tuple((k, lift(v)) for k, v in kwargs.items()))


# ---------------------------------------------------------------- evaluation


def round_half_up(v: float, digits: int = 0):
    """Round half up (towards +inf), as papers round: round(2.5) is 3, round(-2.5) is -2."""
    scale = 10 ** digits
    result = math.floor(v * scale + 0.5) / scale
    return int(result) if digits == 0 else result


def make_divisible(v: float, divisor: int = 8, min_value: int | None = None) -> int:
    """torchvision's _make_divisible: round to a multiple, never more than 10% down."""
    if divisor <= 0:
        raise ValueError("the divisor must be positive")
    min_value = divisor if min_value is None else min_value
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


# The functions an emitted expression may call, as the file defines or imports them. The helpers
# (make_divisible, round_half_up) are copied into the file from here (compiler/emit_source.py).
FUNCTIONS = {"min": min, "max": max, "abs": abs, "int": int, "float": float, "bool": bool,
             "math.ceil": math.ceil, "math.floor": math.floor, "math.sqrt": math.sqrt, "math.log": math.log,
             "make_divisible": make_divisible, "round_half_up": round_half_up}


class NotEvaluable(Exception):
    """The expression calls or names something outside the environment."""


def evaluate(expr: PyExpr, env: dict[str, Any]):
    """The value Python gives `expr` with the variables of `env` (raises whatever Python raises)."""
    if isinstance(expr, Lit):
        return expr.value
    if isinstance(expr, Name):
        if expr.id not in env:
            raise NotEvaluable(expr.id)
        return env[expr.id]
    if isinstance(expr, Bin):
        return BINARY[expr.op](evaluate(expr.left, env), evaluate(expr.right, env))
    if isinstance(expr, Neg):
        return -evaluate(expr.operand, env)
    if isinstance(expr, Not):
        return not evaluate(expr.operand, env)
    if isinstance(expr, BoolOp):
        value = None
        for item in expr.values:
            value = evaluate(item, env)
            if bool(value) == (expr.op == "or"):
                return value
        return value
    if isinstance(expr, Cmp):
        return COMPARE[expr.op](evaluate(expr.left, env), evaluate(expr.right, env))
    if isinstance(expr, IfElse):
        return evaluate(expr.then if evaluate(expr.cond, env) else expr.other, env)
    if isinstance(expr, Tuple):
        return tuple(evaluate(i, env) for i in expr.items)
    if isinstance(expr, Call):
        fn = FUNCTIONS.get(expr.func) or env.get(expr.func)
        if fn is None or not callable(fn):
            raise NotEvaluable(expr.func)
        return fn(*(evaluate(a, env) for a in expr.args), **{k: evaluate(v, env) for k, v in expr.kwargs})
    raise NotEvaluable(type(expr).__name__)


def holds(expr: PyExpr, envs: list[dict[str, Any]], values: list) -> bool:
    """Whether `expr` gives `values[i]` in `envs[i]` for every i: the emitter's test before it writes one."""
    try:
        return all(same(evaluate(expr, env), value) for env, value in zip(envs, values, strict=True))
    except (NotEvaluable, ArithmeticError, TypeError, ValueError, OverflowError):
        return False


def names_in(expr: PyExpr) -> set[str]:
    """The variables an expression reads (function names excluded)."""
    if isinstance(expr, Name):
        return {expr.id}
    found: set[str] = set()
    for part in _parts(expr):
        found |= names_in(part)
    return found


def calls_in(expr: PyExpr) -> set[str]:
    found = {expr.func} if isinstance(expr, Call) else set()
    for part in _parts(expr):
        found |= calls_in(part)
    return found


def _parts(expr: PyExpr) -> list[PyExpr]:
    if isinstance(expr, Bin):
        return [expr.left, expr.right]
    if isinstance(expr, (Neg, Not)):
        return [expr.operand]
    if isinstance(expr, (BoolOp, Tuple)):
        return list(expr.values if isinstance(expr, BoolOp) else expr.items)
    if isinstance(expr, Cmp):
        return [expr.left, expr.right]
    if isinstance(expr, IfElse):
        return [expr.cond, expr.then, expr.other]
    if isinstance(expr, Call):
        return list(expr.args) + [v for _k, v in expr.kwargs]
    return []
