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
from functools import lru_cache
from typing import Any

from ..dsl import ast
from ..dsl.diagnostics import did_you_mean
from ..dsl.record import Record, fields
from .pyexpr import BoolOp, Cmp, IfElse, Lit, Not, PyExpr, Tuple, binary, call, make_divisible, negate, round_half_up

MAX_INT = 1 << 62  # a bigger number is a typo, and would make later arithmetic slow
MAX_DIGITS = 15  # round(v, digits): a double holds about 15 significant digits


class CompileError(Exception):
    """A user error with a location; collected into a diagnostic by the caller."""

    def __init__(self, code: str, message: str, span: ast.Span, hint: str | None = None):
        super().__init__(message)
        self.code, self.message, self.span, self.hint = code, message, span, hint


class Ref(Record):
    """An op or a block, as a value: `act = relu`, `let MBConv6 = mbconv(expand = 6)`."""

    kind: str  # "op" or "block"
    name: str
    args: tuple = ()
    kwargs: tuple[tuple[str, Any], ...] = ()

    def __str__(self) -> str:
        return self.name


class ShapeValue(Record):
    """`in`: the shape entering the current block. A vector reads as F×1×1."""

    shape: tuple[int, ...]

    def attr(self, name: str, span: ast.Span):
        fields = {"c": self.shape[0],
                  "h": self.shape[1] if len(self.shape) == 3 else 1,
                  "w": self.shape[2] if len(self.shape) == 3 else 1}
        if name not in fields:
            raise CompileError("E200", f"a shape has no field '{name}'", span, hint="use in.c, in.h or in.w")
        return fields[name]


class Env(Record, frozen=False):
    """Name -> value, with an optional parent scope."""

    values: dict[str, Any]
    parent: Env | None = None
    lazy: dict[str, Any] = {}  # name -> zero-argument thunk (top-level lets)

    def lookup(self, name: str, span: ast.Span):
        env: Env | None = self
        while env is not None:
            if name in env.values:
                return env.values[name]
            if name in env.lazy:
                return env.lazy[name]()  # evaluates it, after the constants it reads, into env.values
            env = env.parent
        raise CompileError("E200", f"unknown name '{name}'", span, hint=did_you_mean(name, self.names()))

    def callable(self, name: str, span: ast.Span):
        """Look `name` up as something to call. Values that are not ops or blocks do
        not hide one of the same name further out, so `dropout(dropout)` calls the
        op with the parameter; a name that is only ever none (`nl = -`) gives None,
        and the call is left out. `op.NAME` is the primitive op, whatever hides it."""
        if name.startswith("op."):
            from .ops import lookup

            op = lookup(name[3:])
            if op is None:
                raise CompileError("E201", f"there is no op '{name[3:]}'", span)
            return Ref("op", op.name)
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


def _round(v: float, digits: int = 0):
    if isinstance(digits, float) or not -MAX_DIGITS <= digits <= MAX_DIGITS:
        raise ValueError(f"the digits must be a whole number from -{MAX_DIGITS} to {MAX_DIGITS}")
    return round_half_up(v, digits)


def _log(v: float, base: float = math.e) -> float:
    if v <= 0 or base <= 0 or base == 1:
        raise ValueError("log takes a positive number, and a positive base other than 1")
    return math.log(v) / math.log(base) if base != math.e else math.log(v)


def _sqrt(v: float) -> float:
    if v < 0:
        raise ValueError("the square root of a negative number")
    return math.sqrt(v)


BUILTINS = {
    "make_divisible": make_divisible,
    "ceil": lambda v: int(math.ceil(v)),
    "floor": lambda v: int(math.floor(v)),
    "log": _log,
    "sqrt": _sqrt,
    "round": _round,
    "round_even": lambda v: int(round(v)),  # half to even, as torch.round and Python's round: RegNet's widths
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


# ------------------------------------------------------------- as Python
# Each kind of expression above, as the Python that computes it in the emitted file. The emitter
# writes one only after checking it gives the elaborated value in every instance (compiler/pyexpr.py
# `holds`), so where the two could part (and/or return an operand in Python, a boolean here; ops as
# values) the check falls back to the value itself.

PYTHON_BUILTINS = {"make_divisible": "make_divisible", "round": "round_half_up", "ceil": "math.ceil",
                   "floor": "math.floor", "min": "min", "max": "max", "int": "int", "float": "float", "abs": "abs",
                   "log": "math.log", "sqrt": "math.sqrt", "round_even": "round"}


def to_python(node: ast.Expr, scope) -> PyExpr | None:
    """The Python form of `node`; `scope.name(id)` and `scope.field(obj, attr)` give what names
    mean there (None: nothing the file can say, and so is the whole expression)."""
    kind = node.kind
    if kind in ("num", "bool", "str"):
        return Lit(node.value)
    if kind == "none":
        return Lit(None)
    if kind == "name":
        return scope.name(node.id)
    if kind == "attr":
        return scope.field(node.obj, node.attr)
    parts = [to_python(n, scope) for n in _operands(node)]
    if any(p is None for p in parts):
        return None
    if kind == "binop":
        return binary(node.op, *parts)
    if kind == "neg":
        return negate(parts[0])
    if kind == "not":
        return Not(parts[0])
    if kind == "compare":
        return Cmp(node.op, *parts)
    if kind == "boolop":
        both = BoolOp(node.op, tuple(parts))
        logical = all(isinstance(p, (Cmp, Not, BoolOp)) or (isinstance(p, Lit) and isinstance(p.value, bool))
                      for p in parts)
        return both if logical else call("bool", both)  # here and/or give a boolean, not an operand
    if kind == "ifexp":
        return IfElse(parts[0], parts[1], parts[2])
    if kind == "dims" and node.stride is None:
        return Tuple(tuple(parts * 2 if len(parts) == 1 and node.squared[0] else parts))
    if kind == "call" and node.func in PYTHON_BUILTINS and not node.kwargs:
        return call(PYTHON_BUILTINS[node.func], *parts)
    return None  # a partial op or block: the emitter writes its value


def _operands(node) -> list:
    kind = node.kind
    if kind in ("binop", "compare"):
        return [node.left, node.right]
    if kind in ("neg", "not"):
        return [node.operand]
    if kind == "boolop":
        return list(node.values)
    if kind == "ifexp":
        return [node.cond, node.then, node.other]
    if kind == "dims":
        return list(node.items)
    if kind == "call":
        return list(node.args)
    return []


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
    if op == "**":
        return _power(node, a, b)
    return _checked(a % b, node.span)


def _power(node: ast.BinOp, a, b):
    """a ** b with the bounds of every number here: a huge power is an error, not minutes of work."""
    if a == 0 and b < 0:
        raise CompileError("E209", "zero to a negative power", node.span)
    if a < 0 and isinstance(b, float) and not b.is_integer():
        raise CompileError("E209", "a negative number to a fractional power", node.span)
    if isinstance(a, int) and isinstance(b, int) and b >= 0:
        if abs(a) > 1 and b * abs(a).bit_length() > 64:
            raise CompileError("E400", "the power is too large", node.span)
        return _checked(a ** b, node.span)
    try:
        return _checked(float(a) ** float(b), node.span)
    except OverflowError:
        raise CompileError("E400", "the power is too large", node.span) from None


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


def bound_exprs(node: ast.Expr, names: list[str], bound: int, lets: dict[str, ast.Expr] | None = None) -> dict:
    """The expression each argument an op or block value binds came from, by parameter (what `_call`
    above evaluated): `linear(num_classes)` binds linear's first parameter to `num_classes`. `names` are
    the callee's parameters, `bound` the positional arguments its value holds (`len(Ref.args)`), and
    `lets` the top-level lets its names may stand for, followed through: with `let Conv1x1 =
    head(num_classes = num_classes)`, `Conv1x1` binds head's `num_classes` to `num_classes`."""
    found: dict = {}
    for _ in range(len(lets or ()) + 1):  # a chain of lets is at most as long as there are lets
        if node.kind == "name" and lets and node.id in lets:
            node = lets[node.id]
            continue
        if node.kind != "call" or node.func in BUILTINS or bound < len(node.args):
            break
        start = bound - len(node.args)
        found = {**dict(zip(names[start:bound], node.args)), **{k.name: k.value for k in node.kwargs}, **found}
        if not lets or node.func not in lets:
            break
        node, bound = lets[node.func], start
    return found


def top_lets(program) -> dict[str, ast.Expr]:
    """The top-level lets a name in a section may stand for, by name (a network parameter hides one)."""
    params = {p.name for p in program.network.params} if program.network is not None else set()
    return {name: let.value for name, (let, _file) in program.lets.items() if name not in params}


def global_env(program, params: dict[str, Any]) -> Env:
    """ops and blocks <- constants (`let`, evaluated on first use) <- the network's parameters.

    Returns the innermost scope; its parent is what block bodies see, so a block
    from a library never depends on the parameters of the network using it.
    """
    values: dict[str, Any] = dict(_op_refs())
    values.update({name: Ref("block", name) for name in program.blocks})
    constants = Env({}, Env(values))
    network = constants.child(dict(params))
    lets = {name: let for name, (let, _file) in program.lets.items()}
    for name in lets:
        constants.lazy[name] = _Constant(name, lets, network, constants)
    return network


@lru_cache(maxsize=1)
def _op_refs() -> dict[str, Ref]:
    """Every op's name (and alias) to its Ref: the same for every program, made once."""
    from .ops import CALLABLE, lookup

    return {name: Ref("op", lookup(name).name) for name in CALLABLE}


class _Constant:
    """A top-level `let`, evaluated on first use after the constants it reads: in dependency order,
    without recursing through them, so a chain of a thousand lets is no deeper than one."""

    def __init__(self, name: str, lets: dict, network: Env, home: Env):
        self.name, self.lets, self.network, self.home = name, lets, network, home

    def __call__(self):
        order = _dependency_order(self.name, self.lets, self.network, self.home)
        for name in order:
            if name in self.home.lazy:
                value = evaluate(self.lets[name].value, self.network)
                del self.home.lazy[name]
                self.home.values[name] = value
        return self.home.values[self.name]


def _dependency_order(start: str, lets: dict, network: Env, home: Env) -> list[str]:
    """`start` and the unevaluated constants it reads, each after those it reads (an iterative DFS)."""
    def reads(name: str) -> list[str]:
        return [n for n in names_read(lets[name].value) if n in home.lazy and n not in network.values]

    order: list[str] = []
    stack, open_ = [(start, iter(reads(start)))], {start}
    while stack:
        name, pending = stack[-1]
        for dep in pending:
            if dep in open_:
                raise CompileError("E207", f"constant '{dep}' is defined in terms of itself", lets[dep].span)
            if dep not in order:
                stack.append((dep, iter(reads(dep))))
                open_.add(dep)
                break
        else:
            stack.pop()
            open_.discard(name)
            order.append(name)
    return order


def names_read(node) -> list[str]:
    """The names an expression reads, in order (iteratively: expressions nest deeply)."""
    found, todo = [], [node]
    while todo:
        n = todo.pop()
        if isinstance(n, ast.Name):
            found.append(n.id)
        elif isinstance(n, ast.Attr):
            found.append(n.obj)
        elif isinstance(n, ast.Call):
            found.append(n.func)
            todo.extend(n.args)
            todo.extend(k.value for k in n.kwargs)
        elif isinstance(n, ast.Node):
            for f in fields(n):
                value = getattr(n, f)
                if isinstance(value, ast.Node):
                    todo.append(value)
                elif isinstance(value, list):
                    todo.extend(v for v in value if isinstance(v, ast.Node))
    return found
