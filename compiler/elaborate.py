"""Elaboration: run the network's sections with concrete parameter values over the
program's templates (compiler/lower.py) and build the IR (compiler/graph.py),
inferring every shape on the way (no torch, no tensors).

Blocks are expanded where they are called, with `in` bound to the incoming
shape, so a condition such as `residual if s == 1 and in.c == out` is decided
here, and each instance records what its statements did. Errors are collected,
not raised: a failing table row is reported and, where the next row states its
input size, elaboration picks up from there. The work is bounded: layers, block
nesting and statements run (a file of ten lines must not run for minutes).
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from ..dsl import ast
from ..dsl.diagnostics import Diagnostic, did_you_mean
from ..dsl.record import Record, factory
from .evaluate import CompileError, Env, Ref, ShapeValue, evaluate, global_env, truth, type_name
from .graph import CellRecord, Element, Graph, Instance, Layer, Made, Tensor
from .lower import (TAux, TCall, TConcat, TFrom, TIf, TImplicit, TJoin, TKeep, TLet, TMultiply, TOutput, TRepeat,
                    TResidual, TTable)
from .naming import python_name
from .ops import OPS, ShapeError
from .program import Program
from .reuse import MEMO

MAX_LAYERS = 10_000  # EfficientNet-B7 has under 1,000; keeps an absurd repeat to an error in a second
MAX_DEPTH = 48  # nested block calls
MAX_WORK = 50_000  # statements run and calls made: the zoo's most, EfficientNetV2-L, takes 2,855; a hang stops in a second
MAX_REPEAT = 10_000  # as a table's repeat column


class Abort(Exception):
    """Stop elaborating: a limit was hit (already reported)."""


class Site(Record, frozen=False):
    """Where the statement being elaborated stands: its file, the module it adds to (`scope`), the
    instance whose template it belongs to (`frame`, None in a section) and the table row it came from.

    In a section, modules take consecutive positions, as in a torch Sequential (`features.1`); inside
    a block they take their statements' names (`features.1.conv2d_1`, compiler/naming.py). `if`,
    residual bodies and gates add no level; a block call, a shortcut, a concat branch and a table in a
    block do.
    """

    file: str
    scope: tuple[str, ...]
    frame: dict | None = None  # the trace of the instance being elaborated
    owner: str = ""  # that instance's path
    row: ast.Span | None = None
    row_file: str = ""
    counter: list[int] = factory(lambda: [0])  # shared by every Site of the same module
    named: str | None = None  # the one name the next module takes (an aux head: `aux1`, as torchvision)
    element: dict = {}  # a section's next element: its row, repeat, cells
    tensors: dict | None = None  # the instance's named tensors (`keep NAME`)

    def path(self, module: str | None) -> str:
        if self.named is not None:
            return ".".join(self.scope + (self.named,))
        if module is not None:
            return ".".join(self.scope + (module,))
        self.counter[0] += 1
        return ".".join(self.scope + (str(self.counter[0] - 1),))

    def inside(self, path: str, file: str, frame: dict, owner: str) -> Site:
        """The body of a block instance at `path`."""
        return Site(file, tuple(path.split(".")), frame, owner, self.row, self.row_file, tensors={})

    def container(self, module: str) -> Site:
        """A shortcut, branch or block table: a module of the same instance, one level down."""
        return Site(self.file, self.scope + (module,), self.frame, self.owner, self.row, self.row_file,
                    tensors=self.tensors)

    def top(self, name: str) -> Site:
        """Where a module named `name` sits at the top of the network (an aux head)."""
        return Site(self.file, (), None, "", self.row, self.row_file, [0], named=name)

    def at_row(self, row: ast.Span, row_file: str, **element) -> Site:
        return Site(self.file, self.scope, self.frame, self.owner, row, row_file, self.counter, element=element,
                    tensors=self.tensors)

    def note(self, key: int, value) -> None:
        if self.frame is not None:
            self.frame[key] = value


class Elaborator:
    max_work, max_layers = MAX_WORK, MAX_LAYERS  # as compiler/reuse.py reads them

    def __init__(self, program: Program, lowered, params: dict[str, Any], input_shape: tuple[int, ...],
                 as_printed: bool, trusted: frozenset = frozenset()):
        self.program, self.lowered = program, lowered
        self.trusted = trusted  # size cells found wrong that the rows after them do not follow (pipeline.py)
        self.graph = Graph(input_shape=input_shape, program=program, lowered=lowered, params=dict(params))
        self.diagnostics: list[Diagnostic] = []
        self.as_printed = as_printed  # size columns are checked only for the network as printed
        self.rescaled = False  # a `where` rewrite changed a value: the cells after it describe another network
        self.calls: list[tuple] = []  # (block, file, call span, row, row file): the blocks being expanded
        self.aux = False
        self.work = 0
        self.last_made = ""  # the module path of the last call's module (a table row's repeat)
        self.network_env = global_env(program, params)  # sections see the network's parameters
        self.globals = self.network_env.parent  # blocks see ops, blocks and constants only
        self.world = MEMO.world(program, lowered, params)  # what the bodies see, for replaying instances

    # ------------------------------------------------------------- reporting
    def report(self, error: CompileError, file: str) -> None:
        hint = error.hint
        if self.calls:
            block, call_file, span = self.calls[-1][:3]
            where = f"in block '{block}', used at {call_file}:{span.line}"
            hint = f"{hint} ({where})" if hint else where
        self.diagnostics.append(Diagnostic(code=error.code, message=error.message, file=file, span=error.span, hint=hint))

    def limit(self, site: Site, span: ast.Span, message: str, hint: str) -> None:
        # Point at the network's own row or call, not at a statement deep in a library block.
        file, where, row, row_file = self.calls[0][1:] if self.calls else (site.file, span, site.row, site.row_file)
        if row is not None:
            file, where = row_file, row
        self.diagnostics.append(Diagnostic(code="E400", file=file, span=where, message=message, hint=hint))
        raise Abort

    def tick(self, site: Site, span: ast.Span) -> None:
        self.work += 1
        if self.work > MAX_WORK:
            self.limit(site, span, f"elaborating the network takes more than {MAX_WORK:,} steps",
                       "a repeat count or blocks calling blocks many times over multiply far too much")

    @property
    def checking(self) -> bool:
        """Whether size and figure cells describe the network being elaborated (its defaults, no rewrite)."""
        return self.as_printed and not self.rescaled

    def record_cell(self, role: str, file: str, cell, expected, actual) -> CellRecord:
        record = CellRecord(role, file, cell, expected, actual, checked=self.checking)
        self.graph.cells.append(record)
        return record

    # ------------------------------------------------------------------ run
    def run(self) -> Graph:
        x: Tensor | None = Tensor("input", self.graph.input_shape)
        try:
            for section in self.lowered.sections:
                env = self.network_env.child({})
                site = Site(self.program.file, (python_name(section.name),))
                x = self.stmts(section.body, x, env, site, section.where)
                if x is not None:
                    self.graph.outputs[section.name] = x.name  # a section's name is its output's name
                    self.graph.result = x.name
        except Abort:
            pass
        return self.graph

    def stmts(self, body, x: Tensor | None, env: Env, site: Site, where=()) -> Tensor | None:
        for stmt in body:
            try:
                x = self.stmt(stmt, x, env, site, where)
            except CompileError as error:
                self.report(error, site.file)
                x = None
        return x

    def stmt(self, s, x: Tensor | None, env: Env, site: Site, where) -> Tensor | None:
        self.tick(site, s.span)
        if isinstance(s, TLet):
            value = evaluate(s.value, env)
            env.values[s.name] = value
            site.note(s.key, value)
            return x
        if isinstance(s, TTable):
            from .tables import run_table  # tables bind cells to calls made here

            return run_table(self, s, x, env, site, where)
        if isinstance(s, TAux) and s.aux.source is not None:
            return self.aux_head(s.aux, self.output_tensor(s.aux.source, s.span), env, site, x)
        if x is None:
            return None  # the shape is unknown after an error; later statements would only repeat it
        if isinstance(s, TCall):
            return self.call_stmt(s.call, x, env, site, s.module, s.key)
        if isinstance(s, TIf):
            taken = truth(evaluate(s.cond, env), s.cond.span)
            site.note(s.key, taken)
            return self.stmts(s.then if taken else s.other, x, env, site)
        if isinstance(s, TResidual):
            return self.residual(s, x, env, site)
        if isinstance(s, TConcat):
            outs = [self.stmts(b.body, x, env, site.container(b.module)) for b in s.branches]
            if any(o is None for o in outs):
                return None
            return self.join("concat", [o.name for o in outs], site, s)
        if isinstance(s, TMultiply):
            gate = self.stmts(s.body, x, env, site)
            return None if gate is None else self.join("multiply", [x.name, gate.name], site, s)
        if isinstance(s, TOutput):
            if site.frame is not None:
                raise CompileError("E209", "an output names a tensor of the network: it stands in a section, not "
                                   "in a block", s.span, hint="put `output NAME` after the block's call")
            self.name_output(self.graph.outputs, s.name, x.name, s.span)
            return x
        if isinstance(s, TAux):
            return self.aux_head(s.aux, x, env, site, x)
        if isinstance(s, TImplicit):
            return self.implicit(s, x, env, site)
        if isinstance(s, TRepeat):
            return self.repeat(s, x, env, site)
        if isinstance(s, (TKeep, TFrom, TJoin)):
            return self.named(s, x, site)
        raise CompileError("E209", "this statement cannot stand here", s.span)  # pragma: no cover

    def named(self, s, x: Tensor, site: Site) -> Tensor | None:
        """`keep NAME`, `from NAME`, `concat a, b`, `add a, b`: named tensors of a block."""
        if site.tensors is None:
            raise CompileError("E209", "named tensors (keep, from, concat and add of names) stand in a block, not "
                               "in a section", s.span, hint="a section is a sequence: put the statements in a block")
        if isinstance(s, TKeep):
            site.tensors[s.name] = x
            return x
        for name in (s.names if isinstance(s, TJoin) else (s.name,)):
            if name not in site.tensors:
                raise CompileError("E200", f"no tensor named '{name}' is kept before this", s.span,
                                   hint=did_you_mean(name, site.tensors) or "name one with `keep NAME`")
        if isinstance(s, TFrom):
            return site.tensors[s.name]
        return self.join(s.op, [site.tensors[n].name for n in s.names], site, s)

    def repeat(self, s: TRepeat, x: Tensor, env: Env, site: Site) -> Tensor | None:
        """The body `count` times, `index` counting from 0: in a block an nn.Sequential, in a section its entries."""
        count = evaluate(s.count, env)
        if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= MAX_REPEAT:
            raise CompileError("E400" if isinstance(count, int) and count > MAX_REPEAT else "E209",
                               f"the repeat count must be a whole number from 0 to {MAX_REPEAT:,}, got {count!r}",
                               s.count.span)
        inner = site.container(s.module) if site.frame is not None else site
        paths = []
        for index in range(count):
            local = env.child({"index": index})
            at = inner.at_row(s.span, inner.file, source=(s.key, 0), repeat=index, index=index) \
                if site.frame is None else inner
            if s.template is None:
                x = self.call_stmt(s.body[0].call, x, local, at, None, s.body[0].key)
                paths.append(self.last_made if x is not None else None)
            else:
                x = self.implicit(TImplicit(s.key, s.span, s.template), x, local, at)
                paths.append(self.last_made)
            if x is None:
                break
        site.note(s.key, {"paths": paths, "count": count})
        return x

    def residual(self, s: TResidual, x: Tensor, env: Env, site: Site) -> Tensor | None:
        active = s.cond is None or truth(evaluate(s.cond, env), s.cond.span)
        site.note(s.key, {"active": active})
        y = self.stmts(s.body, x, env, site)
        if not active or y is None:
            return y
        skip, shortcut = x, False
        short = s.shortcut
        if short is not None and (short.cond is None or truth(evaluate(short.cond, env), short.cond.span)):
            shortcut = True
            skip = self.stmts(short.body, x, env, site.container(short.module))
            if skip is None:
                return None
        options = {k.name: evaluate(k.value, env) for k in s.options}
        unknown = set(options) - {"stochastic_depth", "shortcut_first"}
        if unknown:
            raise CompileError("E202", f"residual takes no option '{sorted(unknown)[0]}'", s.span,
                               hint="its options are stochastic_depth = p and shortcut_first = true")
        if options.get("shortcut_first") and shortcut:  # registered before the body (torchvision's RegNet: proj, f)
            self.graph.first.add(".".join(site.scope + (short.module,)))
        p = options.get("stochastic_depth")
        depth = None
        if p:
            y = self.invoke(Ref("op", "stochastic_depth"), [p], {}, y, site, s.span, s.depth_module, s.key)
            depth = y.name
        out = self.join("add", [y.name, skip.name], site, s)
        site.note(s.key, {"active": True, "shortcut": shortcut, "depth": depth, "p": p, "add": out.name})
        return out

    def implicit(self, s: TImplicit, x: Tensor, env: Env, site: Site) -> Tensor | None:
        """A residual, concat or gate standing in a section: an element made from its own template."""
        template = self.lowered.blocks[s.template]
        path = site.path(None)
        trace: dict = {}
        self.graph.instances[path] = None  # its place, before its children's
        self.element(site, path)
        y = self.stmts(template.body, x, env, site.inside(path, site.file, trace, path))
        self.graph.instances[path] = Instance(path, s.template, site.file, {}, frozenset(), x.shape,
                                              y.shape if y else None, trace, s.span, site.row, site.row_file,
                                              site.file, owner=site.owner, key=s.key, aux=self.aux)
        self.last_made = path
        return y

    def aux_head(self, stmt: ast.Aux, source: Tensor, env: Env, site: Site, x: Tensor | None) -> Tensor | None:
        """Build a training-only head on `source`; the main path goes on with `x`."""
        if site.frame is not None:
            raise CompileError("E209", "an aux head branches off the network: it stands in a section, not in a "
                               "block", stmt.span, hint="put the aux statement after the block's call")
        if stmt.cond is None or truth(evaluate(stmt.cond, env), stmt.cond.span):
            was, self.aux = self.aux, True
            try:
                head = self.call_stmt(stmt.call, source, env, site.top(python_name(stmt.name)), None, 0)
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

    def element(self, site: Site, path: str) -> None:
        """Record a module made directly in a section (or an aux head at the top) as the section's next entry."""
        if site.frame is None:
            section = site.named if site.named is not None else site.scope[0]
            self.graph.elements.append(Element(path, section, site.row, site.row_file, **site.element))

    # ----------------------------------------------------------------- calls
    def call_stmt(self, call: ast.Call, x: Tensor, env: Env, site: Site, module: str | None, key: int) -> Tensor | None:
        callee = env.callable(call.func, call.span)
        if callee is None:
            site.note(key, Made(None))
            return x  # a parameter set to none (`nl = -`): the layer is left out
        if not isinstance(callee, Ref):
            raise CompileError("E209", f"'{call.func}' is {type_name(callee)}, not an op or a block", call.span)
        args = [evaluate(a, env) for a in call.args]
        kwargs = {}
        for k in call.kwargs:
            if k.name in kwargs:
                raise CompileError("E202", f"argument '{k.name}' given twice", k.span)
            kwargs[k.name] = evaluate(k.value, env)
        return self.invoke(callee, args, kwargs, x, site, call.span, module, key)

    def invoke(self, ref: Ref, args: list, kwargs: dict, x: Tensor, site: Site, span: ast.Span,
               module: str | None, key: int) -> Tensor | None:
        names = self.param_names(ref)
        positional = tuple(names[len(ref.args):len(ref.args) + len(args)])
        args = list(ref.args) + list(args)
        kwargs = {**dict(ref.kwargs), **kwargs}
        self.tick(site, span)
        if ref.kind == "op":
            y = self.add_layer(ref.name, (args, kwargs), [x.name], site, span, module, key, via=ref)
            self.last_made = y.name
            site.note(key, Made(y.name, positional))
            return y
        path = site.path(module)
        site.note(key, Made(path, positional))
        y = self.block(ref, args, kwargs, x, site, span, path, key)
        self.last_made = path
        return y

    def param_names(self, ref: Ref) -> list[str]:
        if ref.kind == "op":
            return list(OPS[ref.name].fields)
        return [p.name for p in self.lowered.blocks[ref.name].params]

    def block(self, ref: Ref, args: list, kwargs: dict, x: Tensor, site: Site, span: ast.Span, path: str,
              key: int) -> Tensor | None:
        name = ref.name
        template = self.lowered.blocks[name]
        if len(self.calls) >= MAX_DEPTH:
            raise CompileError("E400", f"blocks nest more than {MAX_DEPTH} deep (does '{name}' use itself?)", span)
        names = [p.name for p in template.params]
        if len(args) > len(names):
            raise CompileError("E210", f"{name} takes {len(names)} arguments, {len(args)} given", span)
        given = dict(zip(names, args))
        for k, value in kwargs.items():
            if k not in names:
                raise CompileError("E202", f"{name} has no parameter '{k}'", span,
                                   hint=did_you_mean(k, names) or f"its parameters: {', '.join(names)}")
            if k in given:
                raise CompileError("E202", f"{name}: argument '{k}' given twice", span)
            given[k] = value
        local = self.globals.child({"in": ShapeValue(x.shape)})
        self.calls.append((name, site.file, span, site.row, site.row_file))
        try:
            for param in template.params:
                if param.name in given:
                    local.values[param.name] = given[param.name]
                elif param.default is not None:
                    local.values[param.name] = evaluate(param.default, local)
                else:
                    raise CompileError("E205", f"{name} needs a value for '{param.name}'", span)
            values = {p.name: local.values[p.name] for p in template.params}
            self.graph.instances[path] = None  # its place, before its children's
            self.element(site, path)

            def run() -> tuple[Tensor | None, Instance]:
                trace: dict = {}
                y = self.stmts(template.body, x, local, site.inside(path, template.file, trace, path))
                return y, Instance(path, name, template.file, values, frozenset(given), x.shape,
                                   y.shape if y else None, trace, span, site.row, site.row_file, site.file,
                                   site.owner, key, ref, self.aux)

            # everything the body reads (compiler/reuse.py): an instance the last check made alike is replayed
            row = site.row and (site.row.line, site.row.col, site.row.end_line, site.row.end_col)
            parts = (name, values, ref, (tuple(sorted(given)), x.shape, span.line, span.col, span.end_line,
                                         span.end_col, site.file, row, site.row_file, key))
            return MEMO.expand(self, parts, path, site.owner, x, run)
        except CompileError as error:
            self.graph.instances.pop(path, None)
            if error.span is span:
                raise
            self.report(error, template.file)
            return None
        finally:
            self.calls.pop()

    def add_layer(self, op_name: str, call, inputs: list[str], site: Site, span: ast.Span, module: str | None,
                  key: int, via: Ref | None = None) -> Tensor:
        op = OPS[op_name]
        if len(self.graph.order) >= MAX_LAYERS:
            self.limit(site, span, f"the network has more than {MAX_LAYERS:,} layers",
                       "a repeat count or a block that uses itself is far too large")
        attrs, given = (op.make({}), frozenset()) if call is None else bind_attrs(op, *call, span)
        in_shapes = tuple(self.graph.shape_of(i) for i in inputs)
        try:
            out, params, buffers, macs = op.describe(attrs, in_shapes)
        except ShapeError as error:
            message = error.message if error.message.startswith(op_name) or not op.callable_ else f"{op_name}: {error.message}"
            raise CompileError(error.code, message, span, error.hint) from None
        if op.callable_:
            name = site.path(module)
        else:  # joins are computed in forward and hold no module: a name outside the module paths
            name = ".".join(site.scope) + f".{op_name}~{len(self.graph.order)}"
        if name in self.graph:  # pragma: no cover - scopes are unique by construction
            raise CompileError("E204", f"two layers would be named '{name}'", span)
        layer = Layer(name=name, op=op_name, attrs=attrs, inputs=tuple(inputs), in_shapes=in_shapes, out_shape=out,
                      params=params, buffers=buffers, macs=macs, file=site.file, span=span, row=site.row,
                      row_file=site.row_file, aux=self.aux, owner=site.owner, key=key, given=given, via=via)
        self.graph.add(layer)
        if op.callable_:
            self.element(site, name)
            if getattr(attrs, "first", False):  # registered before its block's other modules (layer scale)
                self.graph.first.add(name)
        return Tensor(name, out)

    def join(self, op_name: str, inputs: list[str], site: Site, stmt) -> Tensor:
        y = self.add_layer(op_name, None, inputs, site, stmt.span, None, stmt.key)
        if op_name != "add":
            site.note(stmt.key, y.name)
        return y


def bind_attrs(op, args: list, kwargs: dict, span: ast.Span):
    """The op's attributes from a call's values, and the names the call set (a `none` sets nothing)."""
    fields = op.fields
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
        return op.make(values), frozenset(values)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"][:1]) or "arguments"
        message = first["msg"]
        if first["type"] == "missing":
            raise CompileError("E205", f"{op.name} needs a value for '{where}'", span, hint=op.doc or None) from None
        raise CompileError("E209", f"{op.name}: '{where}' {message.lower()} (got {first.get('input')!r})", span,
                           hint=op.doc or None) from None


__all__ = ["Elaborator", "Made", "Tensor", "Site", "bind_attrs", "global_env"]
