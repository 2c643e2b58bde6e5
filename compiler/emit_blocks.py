"""Block bodies as Python: the half of the source emitter that translates a
block's statements (compiler/emit_source.py writes the file and the network).

`Scope` turns a block's expressions into Python source: its parameters and
`let`s become variables, `in.c`/`in.h`/`in.w` the constructor's `in_c`,
`in_h`, `in_w`, constants and ops their value for this network. `BodyWriter`
turns its statements into `__init__` lines (modules named as the graph names
them, compiler/naming.py; the channel count carried in `c`) and `forward`
lines (a condition the forward pass needs read from a `use_*` flag).
"""

from __future__ import annotations

import unicodedata

from ..dsl import ast
from ..dsl.diagnostics import Diagnostic
from .evaluate import BUILTINS, Env, evaluate
from .naming import IDENTIFIER, body_names, python_name
from .ops import lookup

# Python builtins and helpers a translated expression may call; a parameter or `let` of the same name is renamed.
PY_BUILTINS = {"min", "max", "int", "float", "abs", "round", "make_divisible", "round_half_up", "conv_padding",
               "math", "StochasticDepth", "OrderedDict", "len", "sum", "range", "bool", "tuple"}


class EmitError(Exception):
    def __init__(self, message: str, file: str = "", span: ast.Span = ast.NO_SPAN, hint: str | None = None):
        super().__init__(message)
        self.diagnostic = Diagnostic(code="E500", message=message, file=file, span=span, hint=hint)


def comment(text: str) -> str:
    """User text as one safe comment line: control characters (newlines too) shown as '?'."""
    return "".join("?" if unicodedata.category(ch).startswith(("C", "Z")) and ch != " " else ch for ch in text).strip()


def docstring(text: str) -> str:
    """User text inside a generated docstring: one line, its quotes and backslashes escaped."""
    return comment(text).replace("\\", "\\\\").replace('"', '\\"')


def identifier(name: str, what: str, file: str = "", span: ast.Span = ast.NO_SPAN) -> str:
    if not IDENTIFIER.match(name):
        raise EmitError(f"the {what} '{comment(name)}' is not a plain Python identifier, so it cannot be emitted",
                        file, span, hint="use ASCII letters, digits and underscores")
    return name


def camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.split("_") if part) or "Block"


def local_name(name: str) -> str:
    """A block parameter or `let` as a Python variable: not a keyword, nor a builtin the code calls."""
    return name + "_" if name in PY_BUILTINS else python_name(name)


class Scope:
    """What the names of a block body mean in Python."""

    def __init__(self, emission, block: str, definition: ast.BlockDef, file: str):
        self.emission, self.block, self.file = emission, block, file
        self.params = {p.name: local_name(p.name) for p in definition.params}
        for dsl in self.params:
            identifier(dsl, "parameter name", file, definition.span)
        self.locals: dict[str, str] = {}

    def name(self, node: ast.Name) -> str:
        if node.id in self.locals:
            return self.locals[node.id]
        if node.id in self.params:
            return self.params[node.id]
        if node.id == "in":
            raise EmitError("the whole input shape `in` cannot be used as a value in emitted source", self.file,
                            node.span, hint="use in.c, in.h or in.w")
        # a constant or an op: its value, fixed for this network
        value = evaluate(node, self.emission.network_env.parent)
        return self.emission.literal(value, self.file, node.span)

    def expr(self, node) -> str:
        kind = node.kind
        if kind in ("num", "bool", "none", "str"):
            return self.emission.literal(evaluate(node, Env({})), self.file, node.span)
        if kind == "name":
            return self.name(node)
        if kind == "attr":
            if node.obj != "in" or node.attr not in ("c", "h", "w"):
                raise EmitError(f"'{node.obj}.{node.attr}' cannot be emitted", self.file, node.span)
            return {"c": "in_c", "h": "in_h", "w": "in_w"}[node.attr]
        if kind == "binop":
            return f"({self.expr(node.left)} {node.op} {self.expr(node.right)})"
        if kind == "neg":
            return f"(-{self.expr(node.operand)})"
        if kind == "not":
            return f"(not {self.expr(node.operand)})"
        if kind == "compare":
            return f"({self.expr(node.left)} {node.op} {self.expr(node.right)})"
        if kind == "boolop":
            return "(" + f" {node.op} ".join(self.expr(v) for v in node.values) + ")"
        if kind == "ifexp":
            return f"({self.expr(node.then)} if {self.expr(node.cond)} else {self.expr(node.other)})"
        if kind == "dims" and node.stride is None:
            items = [self.expr(i) for i in node.items]
            if len(items) == 1 and node.squared[0]:
                items = items * 2
            return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
        if kind == "call" and node.func in BUILTINS and not node.kwargs:
            args = ", ".join(self.expr(a) for a in node.args)
            if node.func == "make_divisible":
                self.emission.helpers.add("make_divisible")
                return f"make_divisible({args})"
            if node.func == "round":
                self.emission.helpers.add("round_half_up")
                return f"round_half_up({args})"
            if node.func in ("ceil", "floor"):
                self.emission.helpers.add("math")
                return f"math.{node.func}({args})"
            return f"{node.func}({args})"
        raise EmitError(f"this {kind} cannot be written in the emitted source", self.file, node.span)


class BodyWriter:
    """Translates one block's statements into `__init__` and `forward` lines."""

    def __init__(self, emission, scope: Scope, names: dict):
        self.emission, self.scope, self.names = emission, scope, names
        self.init: list[str] = []
        self.fwd: list[str] = []
        self.counter = 0
        self.flags: set[str] = set()

    def fresh(self, base: str) -> str:
        self.counter += 1
        return f"{base}_{self.counter}"

    def flag(self, base: str) -> str:
        name = f"use_{base}".rstrip("_")
        while name in self.flags or name in self.names.values():
            name += "_"
        self.flags.add(name)
        return name

    def body(self, stmts: list, owner: str, var: str, indent: int, names: dict) -> None:
        for stmt in stmts:
            self.stmt(stmt, owner, var, indent, names)

    def stmt(self, stmt, owner: str, var: str, ind: int, names: dict) -> None:
        pad, file = "    " * ind, self.scope.file
        kind = stmt.kind
        if kind == "let":
            local = local_name(identifier(stmt.name, "name", file, stmt.span))
            self.init.append(f"{pad}{local} = {bare(self.scope.expr(stmt.value))}")
            self.scope.locals[stmt.name] = local
        elif kind == "call_stmt":
            self.call(stmt, owner, var, ind, names[("call", id(stmt))])
        elif kind == "if":
            first = next((names.get(("call", id(s))) for s in _calls(stmt.then)), None) or "branch"
            flag = self.flag(first)
            self.init.append(f"{pad}self.{flag} = bool({bare(self.scope.expr(stmt.cond))})")
            self.init.append(f"{pad}if self.{flag}:")
            self.fwd.append(f"{pad}if self.{flag}:")
            self.block_of(stmt.then, owner, var, ind + 1, names)
            if stmt.other:
                self.init.append(f"{pad}else:")
                self.fwd.append(f"{pad}else:")
                self.block_of(stmt.other, owner, var, ind + 1, names)
        elif kind == "residual":
            self.residual(stmt, owner, var, ind, names)
        elif kind == "multiply":
            gate = self.fresh("gate")
            self.fwd.append(f"{pad}{gate} = {var}")
            self.body(stmt.body, owner, gate, ind, names)
            self.fwd.append(f"{pad}{var} = {var} * {gate}")
        elif kind == "concat":
            self.concat(stmt, owner, var, ind, names)
        else:
            raise EmitError(f"a {kind} statement inside a block cannot be emitted yet", file, stmt.span,
                            hint="tables, outputs and aux heads belong to the network's sections")

    def block_of(self, stmts, owner, var, ind, names):
        before = (len(self.init), len(self.fwd))
        self.body(stmts, owner, var, ind, names)
        if len(self.init) == before[0]:
            self.init.append("    " * ind + "pass")
        if len(self.fwd) == before[1]:
            self.fwd.append("    " * ind + "pass")

    def call(self, stmt: ast.CallStmt, owner: str, var: str, ind: int, name: str) -> None:
        pad, file, call = "    " * ind, self.scope.file, stmt.call
        target = f"{owner}.{name}"
        if call.func in self.scope.params or call.func in self.scope.locals:  # an op passed in: nl(), norm()
            if call.args or call.kwargs:
                raise EmitError("an op passed as a parameter can only be called without arguments here", file,
                                call.span)
            value = self.scope.params.get(call.func) or self.scope.locals[call.func]
            made = f"{value}(c, inplace=True)" if self.emission.in_place_everywhere(file, call.span) else f"{value}(c)"
            self.init.append(f"{pad}{target} = {made} if {value} is not None else nn.Identity()")
            self.fwd.append(f"{pad}{var} = {target}({var})")
            return
        op = lookup(call.func)
        if op is not None:
            fields = list(op.Attrs.model_fields)
            args = dict(zip(fields, (self.scope.expr(a) for a in call.args)))
            for kw in call.kwargs:
                args[kw.name] = self.scope.expr(kw.value)
            rank = self.rank_at(stmt)
            if op.name == "flatten":
                self.init.append(f"{pad}{target} = nn.Flatten()")
                area = self.flat_area(stmt)
                if area != 1:
                    self.init.append(f"{pad}c = c * {area}  # the map before flatten is {area} positions in every use")
            else:
                extra = {"inplace": "True"} if self.emission.in_place_everywhere(file, call.span) else {}
                self.init.append(f"{pad}{target} = {op.source(args, 'c', rank, self.emission.helpers, **extra)}")
                out = op.out_channels(args, "c")
                if out != "c":
                    self.init.append(f"{pad}c = {out}")
            self.fwd.append(f"{pad}{var} = {target}({var})")
            return
        if call.func not in self.emission.program.blocks:
            raise EmitError(f"'{call.func}' cannot be called in emitted source", file, call.span)
        cls = self.emission.class_for(call.func)
        args = ["c"]
        if self.emission.block_uses_hw(call.func):
            h, w = self.hw_of(stmt)
            args += [str(h), str(w)]
        args += [self.scope.expr(a) for a in call.args]
        args += [f"{local_name(kw.name)}={self.scope.expr(kw.value)}" for kw in call.kwargs]
        self.emission.translate(call.func)
        self.init.append(f"{pad}{target} = {cls}({', '.join(args)})")
        self.init.append(f"{pad}c = {target}.out_channels")
        self.fwd.append(f"{pad}{var} = {target}({var})")

    def residual(self, stmt: ast.Residual, owner, var, ind, names):
        pad = "    " * ind
        active = "True"
        if stmt.cond is not None:
            active = self.flag("residual")
            self.init.append(f"{pad}self.{active} = bool({bare(self.scope.expr(stmt.cond))})")
            active = f"self.{active}"
        identity = self.fresh("identity")
        c_in = f"c_{identity}"
        if stmt.shortcut is not None:
            self.init.append(f"{pad}{c_in} = c")
        self.fwd.append(f"{pad}{identity} = {var}")
        self.body(stmt.body, owner, var, ind, names)
        short = stmt.shortcut
        skip = identity
        if short is not None:
            flag = self.flag("shortcut")
            cond = f" and {self.scope.expr(short.cond)}" if short.cond is not None else ""
            self.init.append(f"{pad}self.{flag} = bool({active}{cond})")
            self.init.append(f"{pad}if self.{flag}:")
            c_out = self.fresh("c")
            self.init.append(f"{pad}    {c_out} = c")
            self.init.append(f"{pad}    c = {c_in}")
            sub = f"{owner}.{names[('shortcut', id(stmt))]}"
            self.init.append(f"{pad}    {sub} = nn.Sequential()")
            self.container(short.body, sub, ind + 1)
            self.init.append(f"{pad}    c = {c_out}")
            skip = f"({sub}({identity}) if self.{flag} else {identity})"
        depth = next((k.value for k in stmt.kwargs if k.name == "stochastic_depth"), None)
        fwd_pad = pad
        if active != "True":
            self.fwd.append(f"{pad}if {active}:")
            fwd_pad = pad + "    "
        if depth is not None:
            flag = self.flag("stochastic_depth")
            p = self.scope.expr(depth)
            self.emission.helpers.add("StochasticDepth")
            target = f"{owner}.{names[('depth', id(stmt))]}"
            self.init.append(f"{pad}self.{flag} = bool({active} and {p})")
            self.init.append(f"{pad}if self.{flag}:")
            self.init.append(f"{pad}    {target} = StochasticDepth({p}, 'row')")
            self.fwd.append(f"{fwd_pad}if self.{flag}:")
            self.fwd.append(f"{fwd_pad}    {var} = {target}({var})")
        if self.emission.in_place_everywhere(self.scope.file, stmt.span, op="add"):  # torchvision: out += identity
            self.fwd.append(f"{fwd_pad}{var} += {skip}")
        else:
            self.fwd.append(f"{fwd_pad}{var} = {var} + {skip}")

    def container(self, stmts, owner: str, ind: int) -> None:
        """A shortcut or branch: an nn.Sequential of its statements when they are plain calls."""
        names = body_names(stmts, self.emission.names_cache)
        if not all(_plain(s) for s in stmts):
            raise EmitError("a shortcut or branch with a residual, gate or concat inside cannot be emitted yet",
                            self.scope.file, stmts[0].span if stmts else ast.NO_SPAN,
                            hint="move it into a block of its own")
        saved = self.fwd
        self.fwd = []
        self.body(stmts, owner, "_", ind, names)  # Sequential runs its modules in order: no forward lines
        self.fwd = saved

    def concat(self, stmt: ast.Concat, owner, var, ind, names):
        pad = "    " * ind
        c_in = self.fresh("c_in")
        self.init.append(f"{pad}{c_in} = c")
        widths, outs = [], []
        for branch in stmt.branches:
            sub = f"{owner}.{names[('branch', id(branch))]}"
            width = self.fresh("c")
            self.init.append(f"{pad}c = {c_in}")
            self.init.append(f"{pad}{sub} = nn.Sequential()")
            if all(_plain(s) for s in branch.body):
                self.container(branch.body, sub, ind)
                outs.append(f"{sub}({var})")
            else:  # a branch with a nested concat (Inception v3's E block): written out here
                branch_var = self.fresh("y")
                self.fwd.append(f"{pad}{branch_var} = {var}")
                self.body(branch.body, sub, branch_var, ind, body_names(branch.body, self.emission.names_cache))
                outs.append(branch_var)
            self.init.append(f"{pad}{width} = c")
            widths.append(width)
        self.init.append(f"{pad}c = {' + '.join(widths)}")
        self.fwd.append(f"{pad}{var} = torch.cat([{', '.join(outs)}], 1)")

    # --- shapes taken from the graph, the same in every use or refused
    def _uses(self, stmt, what: str):
        found = self.emission.uses(self.scope.file, stmt.call.span)
        if not found:
            raise EmitError(f"no use of this {what} was built, so its shape is unknown", self.scope.file,
                            stmt.call.span)
        return found

    def rank_at(self, stmt) -> int:
        found = self.emission.uses(self.scope.file, stmt.call.span)
        if not found:  # on a branch no use of the block takes: a feature map, the rank of every op but linear's
            return 3
        ranks = {len(shape) for shape, _ in found}
        if len(ranks) != 1:
            raise EmitError("this layer sees both feature maps and vectors", self.scope.file, stmt.call.span)
        return ranks.pop()

    def flat_area(self, stmt) -> int:
        areas = {shape[1] * shape[2] if len(shape) == 3 else 1 for shape, _ in self._uses(stmt, "flatten")}
        if len(areas) != 1:
            raise EmitError("the map before this flatten differs between uses of the block, so its width cannot be "
                            "written as a number", self.scope.file, stmt.call.span,
                            hint="pool to a fixed size first (global_avgpool or adaptive_avgpool)")
        return areas.pop()

    def hw_of(self, stmt) -> tuple[int, int]:
        sizes = {shape[1:] for shape, _ in self._uses(stmt, "block")}
        if len(sizes) != 1:
            raise EmitError("this block reads in.h or in.w, and its input size differs between uses",
                            self.scope.file, stmt.call.span)
        return sizes.pop()


def _calls(stmts):
    for s in stmts:
        if s.kind == "call_stmt":
            yield s
        elif s.kind == "if":
            yield from _calls(s.then)
            yield from _calls(s.other)


def _plain(stmt) -> bool:
    if stmt.kind == "call_stmt":
        return True
    if stmt.kind == "if":
        return all(_plain(s) for s in stmt.then + stmt.other)
    return stmt.kind == "let"


def bare(source: str) -> str:
    """`(a and b)` as `a and b`: a condition or statement needs no outer parentheses."""
    if not (source.startswith("(") and source.endswith(")")):
        return source
    depth = 0
    for i, ch in enumerate(source):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth == 0 and i < len(source) - 1:
            return source
    return source[1:-1]


def uses_hw(node) -> bool:
    if isinstance(node, ast.Attr):
        return node.obj == "in" and node.attr in ("h", "w")
    if isinstance(node, list):
        return any(uses_hw(n) for n in node)
    if isinstance(node, ast.Node):
        return any(uses_hw(getattr(node, f)) for f in type(node).model_fields if f != "span")
    return False


def refers(node, names: set[str]) -> bool:
    """Does an expression read one of `names` or the input shape?"""
    if isinstance(node, ast.Name):
        return node.id in names
    if isinstance(node, ast.Attr):
        return True
    if isinstance(node, list):
        return any(refers(n, names) for n in node)
    if isinstance(node, ast.Node):
        return any(refers(getattr(node, f), names) for f in type(node).model_fields if f != "span")
    return False
