"""Elaboration: run the network's sections with concrete parameter values and
build the graph IR, inferring every shape on the way (no torch, no tensors).

Blocks are expanded where they are called, with `in` bound to the incoming
shape, so a condition such as `residual if s == 1 and in.c == out` is decided
here. Errors are collected, not raised: a failing table row is reported and,
where the next row asserts its input size, elaboration picks up from there.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from ..dsl import ast
from ..dsl.diagnostics import Diagnostic, did_you_mean
from .evaluate import CompileError, Env, Ref, ShapeValue, evaluate, truth, type_name
from .graph import Graph, Instance, Layer, Site, Tensor
from .naming import body_names, python_name
from .ops import CALLABLE, OPS, ShapeError, lookup
from .program import Program

MAX_LAYERS = 10_000  # EfficientNet-B7 has under 1,000; keeps an absurd repeat to an error in a second
MAX_DEPTH = 48  # nested block calls


class Abort(Exception):
    """Stop elaborating: a limit was hit (already reported)."""


class Elaborator:
    def __init__(self, program: Program, params: dict[str, Any], input_shape: tuple[int, ...], as_printed: bool):
        self.program = program
        self.graph = Graph(input_shape=input_shape)
        self.diagnostics: list[Diagnostic] = []
        self.as_printed = as_printed  # size columns are checked only for the network as printed
        self.unchecked = 0  # size cells skipped because the network is not as printed
        self.calls: list[tuple[str, str, ast.Span]] = []  # (block, file, call span) stack
        self.aux = False
        self._names: dict[int, dict] = {}  # block body -> its statements' module names
        self.network_env = global_env(program, params)  # sections see the network's parameters
        self.globals = self.network_env.parent  # blocks see ops, blocks and constants only

    # ------------------------------------------------------------- reporting
    def report(self, error: CompileError, file: str) -> None:
        hint = error.hint
        if self.calls:
            block, call_file, span = self.calls[-1]
            where = f"in block '{block}', used at {call_file}:{span.line}"
            hint = f"{hint} ({where})" if hint else where
        self.diagnostics.append(Diagnostic(code=error.code, message=error.message, file=file, span=error.span, hint=hint))

    # ------------------------------------------------------------------ run
    def run(self) -> Graph:
        x: Tensor | None = Tensor("input", self.graph.input_shape)
        try:
            for section in self.program.sections:
                env = self.network_env.child({})
                x = self.stmts(section.body, x, env, Site(self.program.file, (python_name(section.name),)), section.where)
                if x is not None:
                    self.graph.outputs[section.name] = x.name  # a section's name is its output's name
                    self.graph.result = x.name
        except Abort:
            return self.graph
        return self.graph

    def stmts(self, body: list, x: Tensor | None, env: Env, site: Site, where=()) -> Tensor | None:
        for stmt in body:
            try:
                x = self.stmt(stmt, x, env, site, where)
            except CompileError as error:
                self.report(error, site.file)
                x = None
        return x

    def stmt(self, stmt, x: Tensor | None, env: Env, site: Site, where) -> Tensor | None:
        kind = stmt.kind
        if kind == "let":
            env.values[stmt.name] = evaluate(stmt.value, env)
            return x
        if kind == "table":
            from .tables import run_table  # tables bind cells to calls made here

            return run_table(self, stmt, x, env, site, where)
        if kind == "aux" and stmt.source is not None:
            return self.aux_head(stmt, self.output_tensor(stmt.source, stmt.span), env, site, x)
        if x is None:
            return None  # the shape is unknown after an error; later statements would only repeat it
        if kind == "call_stmt":
            return self.call_stmt(stmt.call, x, env, site.take("call", stmt))
        if kind == "if":
            body = stmt.then if truth(evaluate(stmt.cond, env), stmt.cond.span) else stmt.other
            return self.stmts(body, x, env, site)
        if kind == "residual":
            return self.residual(stmt, x, env, site)
        if kind == "concat":
            outs = [self.stmts(b.body, x, env, site.take("branch", b).module(names=self.names(b.body)))
                    for b in stmt.branches]
            if any(o is None for o in outs):
                return None
            return self.add_layer("concat", None, [o.name for o in outs], site, stmt.span)
        if kind == "multiply":
            gate = self.stmts(stmt.body, x, env, site)
            if gate is None:
                return None
            return self.add_layer("multiply", None, [x.name, gate.name], site, stmt.span)
        if kind == "output":
            self.name_output(self.graph.outputs, stmt.name, x.name, stmt.span)
            return x
        if kind == "aux":
            return self.aux_head(stmt, x, env, site, x)
        raise CompileError("E209", f"a {kind} cannot stand here", stmt.span)

    def residual(self, stmt: ast.Residual, x: Tensor, env: Env, site: Site) -> Tensor | None:
        active = stmt.cond is None or truth(evaluate(stmt.cond, env), stmt.cond.span)
        y = self.stmts(stmt.body, x, env, site)
        if not active or y is None:
            return y
        skip = x
        short = stmt.shortcut
        if short is not None and (short.cond is None or truth(evaluate(short.cond, env), short.cond.span)):
            skip = self.stmts(short.body, x, env, site.take("shortcut", stmt).module(names=self.names(short.body)))
            if skip is None:
                return None
        options = {k.name: evaluate(k.value, env) for k in stmt.kwargs}
        unknown = set(options) - {"stochastic_depth"}
        if unknown:
            raise CompileError("E202", f"residual takes no option '{sorted(unknown)[0]}'", stmt.span,
                               hint="its one option is stochastic_depth = p")
        p = options.get("stochastic_depth")
        if p:
            y = self.invoke(Ref("op", "stochastic_depth"), [p], {}, y, site.take("depth", stmt), stmt.span)
        return self.add_layer("add", None, [y.name, skip.name], site, stmt.span)

    def aux_head(self, stmt: ast.Aux, source: Tensor, env: Env, site: Site, x: Tensor | None) -> Tensor | None:
        """Build a training-only head on `source`; the main path goes on with `x`."""
        if stmt.cond is None or truth(evaluate(stmt.cond, env), stmt.cond.span):
            was, self.aux = self.aux, True
            try:
                head = self.call_stmt(stmt.call, source, env, site.top(python_name(stmt.name)))
            finally:
                self.aux = was
            if head is not None:
                self.name_output(self.graph.aux, stmt.name, head.name, stmt.span)
        return x

    def output_tensor(self, name: str, span: ast.Span) -> Tensor:
        if name not in self.graph.outputs:
            raise CompileError("E200", f"no output named '{name}' comes before this", span,
                               hint=did_you_mean(name, self.graph.outputs) or "name one with `output NAME`")
        node = self.graph.outputs[name]
        return Tensor(node, self.graph.shape_of(node))

    def name_output(self, table: dict[str, str], name: str, layer: str, span: ast.Span) -> None:
        if name in self.graph.outputs or name in self.graph.aux or name in {s.name for s in self.program.sections}:
            raise CompileError("E204", f"the output name '{name}' is already taken", span,
                               hint="sections, outputs and aux heads each need their own name")
        table[name] = layer

    def names(self, body: list) -> dict:
        return body_names(body, self._names)

    # ----------------------------------------------------------------- calls
    def call_stmt(self, call: ast.Call, x: Tensor, env: Env, site: Site) -> Tensor | None:
        callee = env.callable(call.func, call.span)
        if callee is None:
            site.pending[0] = None
            return x  # a parameter set to none (`nl = -`): the layer is left out
        if not isinstance(callee, Ref):
            raise CompileError("E209", f"'{call.func}' is {type_name(callee)}, not an op or a block", call.span)
        args = [evaluate(a, env) for a in call.args]
        kwargs = {}
        for k in call.kwargs:
            if k.name in kwargs:
                raise CompileError("E202", f"argument '{k.name}' given twice", k.span)
            kwargs[k.name] = evaluate(k.value, env)
        return self.invoke(callee, args, kwargs, x, site, call.span)

    def invoke(self, ref: Ref, args: list, kwargs: dict, x: Tensor, site: Site, span: ast.Span) -> Tensor | None:
        args = list(ref.args) + list(args)
        kwargs = {**dict(ref.kwargs), **kwargs}
        if ref.kind == "op":
            return self.add_layer(ref.name, (args, kwargs), [x.name], site, span)
        return self.block(ref.name, args, kwargs, x, site, span)

    def block(self, name: str, args: list, kwargs: dict, x: Tensor, site: Site, span: ast.Span) -> Tensor | None:
        definition, file = self.program.blocks[name]
        if len(self.calls) >= MAX_DEPTH:
            raise CompileError("E400", f"blocks nest more than {MAX_DEPTH} deep (does '{name}' use itself?)", span)
        names = [p.name for p in definition.params]
        if len(args) > len(names):
            raise CompileError("E210", f"{name} takes {len(names)} arguments, {len(args)} given", span)
        given = dict(zip(names, args))
        for key, value in kwargs.items():
            if key not in names:
                raise CompileError("E202", f"{name} has no parameter '{key}'", span,
                                   hint=did_you_mean(key, names) or f"its parameters: {', '.join(names)}")
            if key in given:
                raise CompileError("E202", f"{name}: argument '{key}' given twice", span)
            given[key] = value
        local = self.globals.child({"in": ShapeValue(x.shape)})
        self.calls.append((name, site.file, span))
        try:
            for param in definition.params:
                if param.name in given:
                    local.values[param.name] = given[param.name]
                elif param.default is not None:
                    local.values[param.name] = evaluate(param.default, local)
                else:
                    raise CompileError("E205", f"{name} needs a value for '{param.name}'", span)
            inner = site.module(file, self.names(definition.body))
            values = {k: v for k, v in local.values.items() if k != "in"}
            self.graph.instances[".".join(inner.scope)] = Instance(name, file, values, x.shape, span, site.row,
                                                                    site.row_file, site.file)
            return self.stmts(definition.body, x, local, inner)
        except CompileError as error:
            if error.span is span:
                raise
            self.report(error, file)
            return None
        finally:
            self.calls.pop()

    def add_layer(self, op_name: str, call, inputs: list[str], site: Site, span: ast.Span) -> Tensor:
        op = OPS[op_name]
        if len(self.graph.order) >= MAX_LAYERS:
            # Point at the user's own row or call, not at a layer deep in a library block.
            file, where = (self.calls[0][1], self.calls[0][2]) if self.calls else (site.file, span)
            if site.row is not None:
                file, where = site.row_file, site.row
            self.diagnostics.append(Diagnostic(code="E400", file=file, span=where,
                                               message=f"the network has more than {MAX_LAYERS:,} layers",
                                               hint="a repeat count or a block that uses itself is far too large"))
            raise Abort
        attrs = op.Attrs() if call is None else bind_attrs(op, *call, span)
        in_shapes = [self.graph.shape_of(i) for i in inputs]
        try:
            out = op.infer(attrs, in_shapes)
        except ShapeError as error:
            message = error.message if error.message.startswith(op_name) or not op.callable_ else f"{op_name}: {error.message}"
            raise CompileError(error.code, message, span, error.hint) from None
        if op.callable_:
            name = ".".join(site.next_name())
        else:  # joins are computed in forward and hold no module: a name outside the module paths
            name = ".".join(site.scope) + f".{op_name}~{len(self.graph.order)}"
        if name in self.graph:  # pragma: no cover - scopes are unique by construction
            raise CompileError("E204", f"two layers would be named '{name}'", span)
        layer = Layer(name=name, op=op_name, attrs=attrs, inputs=inputs, in_shapes=in_shapes, out_shape=out,
                      params=op.param_shapes(attrs, in_shapes), buffers=op.buffer_shapes(attrs, in_shapes),
                      macs=0, file=site.file, span=span, row=site.row, row_file=site.row_file, aux=self.aux)
        layer.macs = op.macs(attrs, in_shapes, out)
        self.graph.add(layer)
        return Tensor(name, out)


def bind_attrs(op, args: list, kwargs: dict, span: ast.Span):
    fields = list(op.Attrs.model_fields)
    if len(args) > len(fields):
        raise CompileError("E210", f"{op.name} takes at most {len(fields)} arguments, {len(args)} given", span,
                           hint=op.doc or None)
    values = dict(zip(fields, args))
    for key, value in kwargs.items():
        if key not in fields:
            raise CompileError("E202", f"{op.name} has no parameter '{key}'", span,
                               hint=did_you_mean(key, fields) or op.doc or None)
        if key in values:
            raise CompileError("E202", f"{op.name}: argument '{key}' given twice", span)
        values[key] = value
    # none means "the default"; where the default is itself none (conv padding: automatic), it is kept.
    values = {k: v for k, v in values.items() if v is not None or op.Attrs.model_fields[k].default is None}
    try:
        return op.Attrs(**values)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"][:1]) or "arguments"
        message = first["msg"]
        if first["type"] == "missing":
            raise CompileError("E205", f"{op.name} needs a value for '{where}'", span, hint=op.doc or None) from None
        raise CompileError("E209", f"{op.name}: '{where}' {message.lower()} (got {first.get('input')!r})", span,
                           hint=op.doc or None) from None


def global_env(program: Program, params: dict[str, Any]) -> Env:
    """ops and blocks <- constants (`let`, evaluated on first use) <- the network's parameters.

    Returns the innermost scope; its parent is what block bodies see, so a block
    from a library never depends on the parameters of the network using it.
    """
    values: dict[str, Any] = {name: Ref("op", lookup(name).name) for name in CALLABLE}
    values.update({name: Ref("block", name) for name in program.blocks})
    constants = Env({}, Env(values))
    network = constants.child(dict(params))
    for name, (let, _file) in program.lets.items():
        constants.lazy[name] = _thunk(let, network, constants)
    return network


def _thunk(let: ast.Let, env: Env, home: Env):
    def value():
        home.lazy[let.name] = _cycle(let)
        return evaluate(let.value, env)

    return value


def _cycle(let: ast.Let):
    def fail():
        raise CompileError("E207", f"constant '{let.name}' is defined in terms of itself", let.span)

    return fail


__all__ = ["Elaborator", "Tensor", "Site", "bind_attrs"]
