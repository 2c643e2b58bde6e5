"""The source emitter: a readable PyTorch file from the checked graph.

    >>> import archc
    >>> text = archc.source(archc.zoo_path("mobilenet_v3_small.arch"))
    >>> print(next(line for line in text.splitlines() if line.startswith("class Bneck")))
    class Bneck(nn.Module):

One class per block kind, translated from the block's statements: parameters
become `__init__` arguments (after `in_c`, the input channels), `if` becomes
Python `if`, a condition the forward pass needs is kept as a `use_*` flag, and
the channel count is carried in a variable `c` as hand-written code does. The
network class is the tables unrolled: each section a `nn.Sequential` with one
line per table row, the row's text as its comment. Module names are the
graph's (compiler/naming.py), so the generated module's state_dict equals the
in-memory builder's, key for key (tests/test_emit_source.py).

Each op writes its own constructor (`Op.source` in compiler/ops/); shapes the
source cannot express in a block's terms (the size of a map before `flatten`)
are taken from the graph when every use of the block agrees, else emission
stops with an E500 diagnostic. Every name that reaches the file is checked to
be a plain identifier; user text only ever lands in `#` comments, one line each.
"""

from __future__ import annotations

import inspect
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import jinja2

from ..dsl import ast
from ..dsl.diagnostics import ArchError, Diagnostic
from .evaluate import BUILTINS, Env, Ref, _round, evaluate, make_divisible
from .graph import Graph
from .naming import IDENTIFIER, body_names, python_name
from .ops import OPS, lookup

TEMPLATES = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
                               autoescape=False, keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True,
                               undefined=jinja2.StrictUndefined)

# Python builtins a translated expression may call; a block parameter of the same name is renamed.
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


# ----------------------------------------------------------------------------- literals and expressions
@dataclass
class Emission:
    graph: Graph
    program: object
    network_env: Env
    helpers: set[str] = field(default_factory=set)  # prelude functions the file needs
    factories: set[str] = field(default_factory=set)  # ops passed as values: `def relu(c): ...`
    classes: dict[str, str] = field(default_factory=dict)  # block -> class name
    rendered: dict[str, dict] = field(default_factory=dict)  # block -> template data, in first-use order
    names_cache: dict[int, dict] = field(default_factory=dict)

    def literal(self, value, file: str = "", span: ast.Span = ast.NO_SPAN) -> str:
        if isinstance(value, bool) or value is None:
            return repr(value)
        if isinstance(value, (int, float)):
            return repr(value)
        if isinstance(value, str):
            return repr(value)
        if isinstance(value, tuple):
            return "(" + ", ".join(self.literal(v, file, span) for v in value) + ("," if len(value) == 1 else "") + ")"
        if isinstance(value, Ref) and value.kind == "op" and not value.args and not value.kwargs:
            return self.factory(value.name)
        raise EmitError(f"a value of this kind ({type(value).__name__}) cannot be passed in the emitted source",
                        file, span, hint="pass ops without arguments, numbers, booleans or sizes")

    def factory(self, op_name: str) -> str:
        self.factories.add(op_name)
        return op_name

    def class_for(self, block: str) -> str:
        if block not in self.classes:
            taken = set(self.classes.values()) | {"StochasticDepth"}
            name = camel(identifier(block, "block name"))
            while name in taken:
                name += "_"
            self.classes[block] = name
        return self.classes[block]


class Scope:
    """What the names of a block body mean in Python."""

    def __init__(self, emission: Emission, block: str, definition: ast.BlockDef, file: str):
        self.emission, self.block, self.file = emission, block, file
        self.params = {p.name: python_name(p.name) if p.name not in PY_BUILTINS else p.name + "_"
                       for p in definition.params}
        for dsl in self.params:
            identifier(dsl, "parameter name", file, definition.span)
        self.locals: dict[str, str] = {}
        self.uses_hw = False

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
            if node.attr in ("h", "w"):
                self.uses_hw = True
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


# ----------------------------------------------------------------------------- block bodies
class BodyWriter:
    """Translates one block's statements into `__init__` and `forward` lines."""

    def __init__(self, emission: Emission, scope: Scope, names: dict, instances_of):
        self.emission, self.scope, self.names = emission, scope, names
        self.instances_of = instances_of  # (file, span) -> graph layers / instances made by that statement
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
            local = python_name(identifier(stmt.name, "name", file, stmt.span))
            if local in PY_BUILTINS:
                local += "_"
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
            self.init.append(f"{pad}{target} = {value}(c) if {value} is not None else nn.Identity()")
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
                self.init.append(f"{pad}{target} = {op.source(args, 'c', rank, self.emission.helpers)}")
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
        args += [f"{python_name(kw.name) if kw.name not in PY_BUILTINS else kw.name + '_'}={self.scope.expr(kw.value)}"
                 for kw in call.kwargs]
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
        found = self.instances_of(self.scope.file, stmt.call.span)
        if not found:
            raise EmitError(f"no use of this {what} was built, so its shape is unknown", self.scope.file,
                            stmt.call.span)
        return found

    def rank_at(self, stmt) -> int:
        found = self.instances_of(self.scope.file, stmt.call.span)
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


__all__ = [
    "OPS",
    "TEMPLATES",
    "BodyWriter",
    "Emission",
    "EmitError",
    "Scope",
    "_round",
    "camel",
    "comment",
    "identifier",
    "inspect",
    "make_divisible",
]


# ----------------------------------------------------------------------------- the file
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


def _uses_hw(node) -> bool:
    if isinstance(node, ast.Attr):
        return node.obj == "in" and node.attr in ("h", "w")
    if isinstance(node, list):
        return any(_uses_hw(n) for n in node)
    if isinstance(node, ast.Node):
        return any(_uses_hw(getattr(node, f)) for f in type(node).model_fields if f != "span")
    return False


def _refers(node, names: set[str]) -> bool:
    """Does an expression read one of `names` or the input shape?"""
    if isinstance(node, ast.Name):
        return node.id in names
    if isinstance(node, ast.Attr):
        return True
    if isinstance(node, list):
        return any(_refers(n, names) for n in node)
    if isinstance(node, ast.Node):
        return any(_refers(getattr(node, f), names) for f in type(node).model_fields if f != "span")
    return False


class Writer(Emission):
    def block_uses_hw(self, block: str) -> bool:
        return _uses_hw(self.program.blocks[block][0].body)

    def translate(self, block: str) -> None:
        if block in self.rendered or block in self._busy:
            return
        self._busy.add(block)
        definition, file = self.program.blocks[block]
        scope = Scope(self, block, definition, file)
        names = body_names(definition.body, self.names_cache)
        writer = BodyWriter(self, scope, names, self.uses)
        signature, defaults = ["in_c"], []
        if self.block_uses_hw(block):
            signature += ["in_h", "in_w"]
        own = {p.name for p in definition.params}
        for param in definition.params:
            py = scope.params[param.name]
            if param.default is None:
                signature.append(py)
            elif _refers(param.default, own):  # a default computed from other parameters or the input
                signature.append(f"{py}=None")
                defaults.append(f"if {py} is None:")
                defaults.append(f"    {py} = {scope.expr(param.default)}")
            else:
                signature.append(f"{py}={scope.expr(param.default)}")
        writer.body(definition.body, "self", "x", 0, names)
        self._busy.discard(block)
        doc = f"{block}({', '.join(p.name for p in definition.params)}) from {Path(file).name}, line {definition.span.line}"
        self.rendered[block] = {"name": self.class_for(block), "doc": docstring(doc),
                                "signature": ", ".join(signature), "init": defaults + ["c = in_c"] + writer.init,
                                "forward": writer.fwd}

    def uses(self, file: str, span: ast.Span):
        return self._index.get((file, _key(span)), [])


def _key(span: ast.Span) -> tuple[int, int, int, int]:
    return (span.line, span.col, span.end_line, span.end_col)


def emit(graph: Graph, name: str | None = None) -> str:
    """The generated module's text; raises ArchError (E500) where the network cannot be written as source."""
    program = graph.program
    try:
        return _emit(graph, program, name)
    except EmitError as error:
        raise ArchError([error.diagnostic]) from None


def _emit(graph: Graph, program, name: str | None) -> str:
    from .elaborate import global_env

    writer = Writer(graph=graph, program=program, network_env=global_env(program, graph.params))
    writer._busy = set()
    writer._index = {}
    for layer in graph.layers():
        writer._index.setdefault((layer.file, _key(layer.span)), []).append((layer.in_shapes[0], layer))
    for inst in graph.instances.values():
        writer._index.setdefault((inst.call_file, _key(inst.span)), []).append((inst.in_shape, inst))
    network = program.network
    net_class = camel(identifier(network.name, "network name", program.file, network.span))
    top = _top_level(writer, graph, program)
    classes = [writer.rendered[b] for b in writer.rendered]
    if net_class in {c["name"] for c in classes}:
        net_class += "Network"
    helpers = sorted(writer.helpers - {"math", "StochasticDepth"})
    sources = {"make_divisible": inspect.getsource(make_divisible),
               "round_half_up": inspect.getsource(_round).replace("def _round(", "def round_half_up("),
               "conv_padding": inspect.getsource(_conv_padding())}
    factories = []
    for op_name in sorted(writer.factories):
        op = OPS[op_name]
        factories.append({"name": identifier(op_name, "op name"), "ctor": op.source({}, "c", 3, writer.helpers)})
    return TEMPLATES.get_template("network.py.j2").render(
        file=comment(Path(program.file).name), network=comment(network.name), net_class=net_class,
        params=[comment(f"{k} = {v!r}") for k, v in graph.params.items()],
        input=" × ".join(str(d) for d in graph.input_shape),
        uses_math="math" in writer.helpers, uses_depth="StochasticDepth" in writer.helpers,
        uses_torch="StochasticDepth" in writer.helpers or any("torch." in line for c in classes for line in c["forward"]),
        helpers=[sources[h] for h in helpers], factories=factories, classes=classes, **top)


def _conv_padding():
    from .ops.conv import conv_padding

    return conv_padding


def _top_level(writer: Writer, graph: Graph, program) -> dict:
    """The network class: each section an nn.Sequential, a line per element; aux heads; forward."""
    aux_tops = {python_name(a) for a in graph.aux}
    elements: dict[tuple[str, ...], list] = {}
    for layer in graph.layers():
        parts = layer.name.split(".")
        head = parts[0]
        key = (head,) if head in aux_tops else tuple(parts[:2])
        if head not in aux_tops and (len(parts) < 2 or not parts[1].isdigit()):
            raise EmitError(f"a {layer.op} directly in a network section cannot be emitted yet", layer.file,
                            layer.span, hint="put the residual, concat or gate in a block")
        elements.setdefault(key, []).append(layer)
    sections: dict[str, list] = {}
    members: list[dict] = []  # sections and aux heads in the order the graph registers them
    for key, layers in elements.items():
        path = ".".join(key)
        line = _element(writer, graph, path, layers[0])
        if len(key) == 1:
            members.append({"aux": True, "name": key[0], **line})
        elif key[0] in sections and members[-1].get("name") != key[0]:
            raise EmitError(f"an aux head stands inside section '{key[0]}', which cannot be emitted yet",
                            layers[0].file, layers[0].span, hint="put the aux statement at the end of the section")
        else:
            if key[0] not in sections:
                sections[key[0]] = []
                members.append({"aux": False, "name": key[0], "lines": sections[key[0]]})
            sections[key[0]].append(line)
    # Where each aux head reads from: the output of a whole element.
    taps: dict[str, str] = {}
    element_of = {layer.name: ".".join(k) for k, ls in elements.items() for layer in ls}
    aux_inputs = []
    for aux in graph.aux:
        py = python_name(aux)
        first = elements[(py,)][0]
        source = first.inputs[0]
        where = element_of.get(source)
        if where is None or elements[tuple(where.split("."))][-1].name != source:
            raise EmitError(f"the aux head '{comment(aux)}' reads from inside a block, which cannot be emitted yet",
                            first.file, first.span)
        taps[where] = f"{py}_in"
        aux_inputs.append({"name": py, "var": f"{py}_in"})
    forward = []
    for section, lines in sections.items():
        tapped = [i for i, line in enumerate(lines) if f"{section}.{line['index']}" in taps]
        if not tapped:
            forward.append(f"x = self.{section}(x)")
            continue
        start = 0
        for i in tapped:
            forward.append(f"x = self.{section}[{start}:{i + 1}](x)" if i > start else f"x = self.{section}[{i}](x)")
            forward.append(f"{taps[section + '.' + lines[i]['index']]} = x")
            start = i + 1
        if start < len(lines):
            forward.append(f"x = self.{section}[{start}:](x)")
    return {"members": members, "aux_inputs": aux_inputs, "forward": forward}


def _element(writer: Writer, graph: Graph, path: str, first) -> dict:
    sources = graph.program.sources
    inst = graph.instances.get(path)
    if inst is not None:
        definition, _file = graph.program.blocks[inst.block]
        cls = writer.class_for(inst.block)
        writer.translate(inst.block)
        args = [str(inst.in_shape[0])]
        if writer.block_uses_hw(inst.block):
            args += [str(inst.in_shape[1]), str(inst.in_shape[2])]
        scope = Scope(writer, inst.block, definition, _file)
        for param in definition.params:
            value = writer.literal(inst.values[param.name], inst.call_file, inst.span)
            if param.default is None:
                args.append(value)
            elif _refers(param.default, {p.name for p in definition.params}) or value != scope.expr(param.default):
                args.append(f"{scope.params[param.name]}={value}")
        ctor = f"{cls}({', '.join(args)})"
        row, row_file, span, file = inst.row, inst.row_file, inst.span, inst.call_file
    else:
        layer = graph.nodes[path]
        op = layer.spec
        given = {}
        for field_name, info in type(layer.attrs).model_fields.items():
            value = getattr(layer.attrs, field_name)
            if info.is_required() or value != info.default:
                given[field_name] = writer.literal(value, layer.file, layer.span)
        ctor = op.source(given, str(layer.in_shapes[0][0]), len(layer.in_shapes[0]), writer.helpers)
        row, row_file, span, file = layer.row, layer.row_file, layer.span, layer.file
    text = sources.get(row_file if row is not None else file, "").splitlines()
    line = (row or span).line
    source_line = comment(text[line - 1]) if 0 < line <= len(text) else ""
    return {"index": path.split(".")[-1], "ctor": ctor, "comment": source_line}


__all__ = ["EmitError", "emit", "comment", "docstring", "identifier"]
