"""One Python class per template (a block, or a compound statement of a section),
written from the template's statements (compiler/lower.py) and what they did in
each of its instances (compiler/graph.py): the half of the source emitter that
writes block bodies (compiler/emit_source.py writes the network and the file).

`__init__` builds each statement's module under the name the graph gives it; a
condition that differs between instances becomes a `use_*` flag that `forward`
reads, a condition that holds in every instance is no condition at all, and a
statement no instance runs is not written. Every argument, channel count and
condition is chosen by compiler/emit_values.py from the IR's values, so the
class builds what the checker checked in each instance.
"""

from __future__ import annotations

from ..dsl.record import Record
from .elaborate import Made
from .emit_values import Context, EmitError, ModuleClass
from .evaluate import Ref, global_env, to_python
from .graph import Instance, Layer
from .lower import TCall, TConcat, TFrom, TIf, TJoin, TKeep, TLet, TMultiply, TRepeat, TResidual, TTable, Template, children
from .ops import OPS
from .ops.base import NO_DEFAULT
from .pyexpr import (FUNCTIONS, BoolOp, Call, Cmp, IfElse, Lit, Name, PyExpr, Tuple, binary, call, calls_in, holds,
                     names_in, same)

MAX_CANDIDATES = 8


class Branched(Record):
    """The channels after an `if` whose branches end at different widths: `reduce if self.use_x else in_c`."""

    flag: str  # the `self.use_*` attribute, bound in each instance's variables
    then: tuple
    other: tuple


class Signature(Record, frozen=False):
    required: list[tuple[str, str]]  # (.arch name, Python name), positional after in_c
    optional: list[tuple[str, str, PyExpr]]  # and their defaults
    hoisted: list[str]  # keyword-only: values the class cannot compute (compiler/emit_values.py)


class ClassCode(Record, frozen=False):
    name: str
    doc: str
    signature: Signature
    init: list[str]
    forward: list[str]
    index: dict[str, int]  # instance path -> its position (for the hoisted values)
    hoisted: dict[str, dict[int, object]] = {}

    def signature_text(self) -> str:
        parts = ["in_c"] + [py for _n, py in self.signature.required]
        parts += [f"{py}={default}" for _n, py, default in self.signature.optional]
        if self.signature.hoisted:
            parts += ["*"] + self.signature.hoisted
        return ", ".join(parts)


class Scope:
    """What the names of a template mean in its class: variables, or values fixed for the network."""

    def __init__(self, writer: ClassWriter, extra: dict | None = None):
        self.writer, self.extra = writer, extra or {}

    def name(self, ident: str) -> PyExpr | None:
        if ident in self.extra:
            return self.extra[ident]
        var = self.writer.vars.get(ident)
        if var is not None:
            return Name(var)
        if ident == "in" or self.writer.template.implicit:
            return None  # a network parameter or section `let`: the value itself is written
        try:
            value = self.writer.emission.constants.lookup(ident, None)
        except Exception:  # noqa: BLE001 - a name the template cannot see: no expression
            return None
        try:
            return self.writer.emission.values.value(value)
        except EmitError:
            return None

    def field(self, obj: str, attr: str) -> PyExpr | None:
        if obj == "in" and attr in ("c", "h", "w") and not self.writer.template.implicit:
            return Name(f"in_{attr}")
        return None


class ClassWriter:
    def __init__(self, emission, template: Template, instances: list[Instance], class_name: str, recursive: bool):
        self.emission, self.template, self.instances = emission, template, instances
        self.class_name = class_name
        self.graph = emission.graph
        self.vars = {p.name: p.var for p in template.params}
        self.vars.update({s.name: s.var for s in _lets(template.body)})
        envs = []
        for i, inst in enumerate(instances):
            shape = inst.in_shape
            env = {"#": i, "in_c": shape[0], "in_h": shape[1] if len(shape) == 3 else 1,
                   "in_w": shape[2] if len(shape) == 3 else 1}
            env.update({p.var: inst.values[p.name] for p in template.params})
            envs.append(emission.values.env(env))
        taken = set(self.vars.values()) | {"in_c", "in_h", "in_w"}
        self.ctx = Context(envs, emission.values, taken, recursive=recursive)
        self.init: list[str] = []
        self.fwd: list[str] = []
        self.counters: dict[str, int] = {}
        self.flags: set[str] = set()
        self.defaults: list[str] = []
        self.kept: dict[str, list] = {}  # a named tensor -> the channel candidates where it was kept
        self.scope = Scope(self)

    # ------------------------------------------------------------ helpers
    def trace(self, ctx: Context, key: int) -> list:
        return [self.instances[env["#"]].trace.get(key) for env in ctx.envs]

    def fresh(self, base: str) -> str:
        n = self.counters.get(base, 0)
        self.counters[base] = n + 1
        return base if n == 0 else f"{base}_{n}"

    def py(self, node, scope: Scope | None = None) -> PyExpr | None:
        return None if node is None else to_python(node, scope or self.scope)

    def where(self, span) -> tuple:
        return (self.template.file, span)

    # ------------------------------------------------------------- the class
    def write(self) -> ClassCode:
        signature = self.parameters()
        self.body(self.template.body, self.ctx, "self", "x", 0, [Name("in_c")], plain=False)
        for extra in ("in_h", "in_w"):  # the input's size, where the class reads it: its caller knows it
            if extra in self.ctx.reads and extra not in self.ctx.hoisted:
                self.ctx.hoisted[extra] = {env["#"]: env[extra] for env in self.ctx.envs}
        signature.hoisted = list(self.ctx.hoisted)
        doc = self.template.doc or f"{self.template.name} from {self.template.file.rsplit('/', 1)[-1]}"
        return ClassCode(self.class_name, doc, signature, self.first() + self.defaults + self.init, self.fwd,
                         {inst.path: i for i, inst in enumerate(self.instances)}, self.ctx.hoisted)

    def first(self) -> list[str]:
        """Modules registered before the others (layer scale, a shortcut before its body, where the reference
        registers them so): a placeholder first, the module where its statement stands."""
        names = []
        for inst in self.instances:
            prefix = inst.path + "."
            for path in sorted(self.graph.first):
                if path.startswith(prefix) and "." not in path[len(prefix):] and path[len(prefix):] not in names:
                    names.append(path[len(prefix):])
        return [f'self.register_module("{n}", None)  # registered before the others, as the reference does'
                for n in names]

    def parameters(self) -> Signature:
        """Required parameters first (Python's order), then those with a default the file can write: the
        .arch file's own where it is a constant, a value every instance that took it agrees on, or an
        expression of the others (`out=None`, then `if out is None: out = 4 * width` in __init__)."""
        required, optional = [], []
        own = set(self.vars.values()) | {"in_c", "in_h", "in_w"}
        for p in self.template.params:
            defaulted = [p.name not in inst.given for inst in self.instances]
            envs = [env for env, d in zip(self.ctx.envs, defaulted) if d]
            values = [env[p.var] for env in envs]
            written = self.py(p.default)
            if p.default is None:
                required.append((p.name, p.var))
            elif written is not None and not names_in(written) & own and (
                    holds(written, envs, values) if envs else not calls_in(written) & set(FUNCTIONS)):
                # a default no instance takes is written only when it computes nothing: arithmetic the
                # checker never evaluated (`s = round(1, 100000000)`) must not run when the file is imported
                optional.append((p.name, p.var, written))
            elif envs and all(same(values[0], v) for v in values[1:]):
                optional.append((p.name, p.var, self.emission.values.value(values[0])))
            elif written is not None and envs and holds(written, envs, values) and not any(
                    env[p.var] is None for env, d in zip(self.ctx.envs, defaulted) if not d):
                optional.append((p.name, p.var, Lit(None)))  # computed from the others: after them, in __init__
                self.defaults += [f"if {p.var} is None:", f"    {p.var} = {written}"]
                self.ctx.reads |= names_in(written) & own
            else:
                required.append((p.name, p.var))
        return Signature(required, optional, [])

    # --------------------------------------------------------- statements
    def body(self, stmts, ctx: Context, owner: str, var: str, ind: int, chan: list, plain: bool) -> list:
        for stmt in stmts:
            if ctx.envs:
                chan = self.stmt(stmt, ctx, owner, var, ind, chan, plain)
        return chan

    def line(self, lines: list, ind: int, text: str) -> None:
        lines.append("    " * ind + text)

    def stmt(self, s, ctx: Context, owner: str, var: str, ind: int, chan: list, plain: bool) -> list:
        if isinstance(s, TLet):
            values = self.trace(ctx, s.key)
            expr = ctx.choose(values, [self.py(s.value)], s.var, self.where(s.span))
            self.line(self.init, ind, f"{s.var} = {expr}")
            ctx.bind(s.var, values)
            return chan
        if isinstance(s, TCall):
            return self.call(s, ctx, owner, var, ind, chan, plain)
        if isinstance(s, TIf):
            return self.if_(s, ctx, owner, var, ind, chan, plain)
        if isinstance(s, TResidual):
            return self.residual(s, ctx, owner, var, ind, chan)
        if isinstance(s, TConcat):
            return self.concat(s, ctx, owner, var, ind, chan)
        if isinstance(s, TMultiply):
            gate = self.fresh(s.gate)
            self.line(self.fwd, ind, f"{gate} = {var}")
            self.body(s.body, ctx, owner, gate, ind, chan, plain=False)
            self.line(self.fwd, ind, f"{var} = {var} * {gate}")
            return chan
        if isinstance(s, TTable):
            return self.table(s, ctx, owner, var, ind, chan, plain)
        if isinstance(s, TKeep):
            self.line(self.fwd, ind, f"{s.var} = {var}")
            self.kept[s.name] = chan
            return chan
        if isinstance(s, TFrom):
            self.line(self.fwd, ind, f"{var} = {s.var}")
            return self.kept.get(s.name, [])
        if isinstance(s, TJoin):
            if s.op == "concat":
                self.emission.values.helpers.add("torch")
                self.line(self.fwd, ind, f"{var} = torch.cat([{', '.join(s.vars)}], 1)")
                widths = [(self.kept.get(n) or [None])[0] for n in s.names]
                return [_total(widths)] if all(w is not None for w in widths) else []
            self.line(self.fwd, ind, f"{var} = {' + '.join(s.vars)}")
            return self.kept.get(s.names[0], [])
        if isinstance(s, TRepeat):
            from .emit_rows import repeat_source

            return repeat_source(self, s, ctx, owner, var, ind, chan, plain)
        raise EmitError("this statement cannot stand in a block", *self.where(s.span))  # pragma: no cover

    def flagged(self, ctx: Context, keep: list[bool], flag: str, candidates: list, ind: int, span) -> str:
        """`self.FLAG = <condition>`: which instances run what follows."""
        while flag in self.flags:
            flag += "_"
        self.flags.add(flag)
        cond = ctx.choose(keep, candidates + [call("bool", c) for c in candidates if c is not None], flag,
                          self.where(span))
        self.line(self.init, ind, f"self.{flag} = {cond}")
        ctx.bind(f"self.{flag}", keep)
        return flag

    def if_(self, s: TIf, ctx, owner, var, ind, chan, plain) -> list:
        taken = self.trace(ctx, s.key)
        if all(taken):
            return self.body(s.then, ctx, owner, var, ind, chan, plain)
        if not any(taken):
            return self.body(s.other, ctx, owner, var, ind, chan, plain)
        flag = self.flagged(ctx, taken, s.flag, [self.py(s.cond)], ind, s.span)
        ends = {True: chan, False: chan}
        for branch, keep, head in ((s.then, taken, f"if self.{flag}:"), (s.other, [not t for t in taken], "else:")):
            if not branch or not any(keep):
                continue
            self.line(self.init, ind, head)
            if not plain:
                self.line(self.fwd, ind, head)
            marks = (len(self.init), len(self.fwd))
            ends[keep is taken] = self.body(branch, ctx.only(keep), owner, var, ind + 1, chan, plain)
            if len(self.init) == marks[0]:
                self.line(self.init, ind + 1, "pass")
            if not plain and len(self.fwd) == marks[1]:
                self.line(self.fwd, ind + 1, "pass")
        branched = Branched(f"self.{flag}", tuple(ends[True]), tuple(ends[False]))
        return [branched] + [c for c in ends[True] + ends[False] + chan if not isinstance(c, Branched)][:MAX_CANDIDATES]

    # ------------------------------------------------------------ calls
    def call(self, s: TCall, ctx, owner, var, ind, chan, plain) -> list:
        mades: list[Made] = self.trace(ctx, s.key)
        present = [m is not None and m.path is not None for m in mades]
        if not any(present):
            return chan  # the callee is none in every instance: nothing to build
        if not all(present):
            func = Name(self.vars[s.call.func]) if s.call.func in self.vars else None
            flag = self.flagged(ctx, present, f"use_{s.module}", [Cmp("is not", func, Lit(None)) if func else None],
                                ind, s.span)
            self.line(self.init, ind, f"if self.{flag}:")
            if not plain:
                self.line(self.fwd, ind, f"if self.{flag}:")
            chan = self.call(s, ctx.only(present), owner, var, ind + 1, chan, plain)
            return chan
        made = [self.graph.nodes.get(m.path) or self.graph.instances[m.path] for m in mades]
        ctor, chan = self.construct(s, ctx, made, mades, chan)
        self.line(self.init, ind, f"{owner}.{s.module} = {ctor}")
        if not plain:
            self.line(self.fwd, ind, f"{var} = {owner}.{s.module}({var})")
        return chan

    def construct(self, s: TCall, ctx: Context, made: list, mades: list[Made], chan: list, scope=None):
        """The constructor call for what statement `s` made in each instance, and the channel candidates after it.
        `scope`: what names mean where it stands (a repeat's `index`)."""
        call_ = s.call
        py = (lambda node: self.py(node, scope)) if scope is not None else self.py
        vias = [m.via for m in made]
        var = self.vars.get(call_.func)
        dynamic = var is not None and all(env.get(var) == via for env, via in zip(ctx.envs, vias))
        if not dynamic and not all(v == vias[0] for v in vias[1:]):
            raise EmitError(f"'{call_.func}' calls different ops or blocks in different uses of the block, which "
                            "the emitted source cannot say", *self.where(call_.span))
        hint = "in_features" if isinstance(made[0], Layer) and made[0].op == "linear" else "in_channels"
        in_c = self.channels(ctx, [_in_channels(m) for m in made], chan, call_.span, hint)
        if dynamic:
            return self.dynamic(s, ctx, made, mades, var, in_c, py), chan
        ref = vias[0]
        if isinstance(made[0], Layer):
            exprs = _arg_exprs(call_, list(OPS[ref.name].fields), len(ref.args))
            ctor = op_ctor(ctx, made, {k: py(v) for k, v in exprs.items()}, in_c, self.emission)
            return ctor, _after_op(made[0], ctor, chan, exprs, self)
        names = [p.name for p in self.graph.lowered.blocks[ref.name].params]
        exprs = _arg_exprs(call_, names, len(ref.args))
        ctor = self.emission.block_ctor(ctx, made, {k: py(v) for k, v in exprs.items()}, in_c,
                                        self.where(call_.span))
        return ctor, ([a for a in ctor.args[1:]] + [v for _k, v in ctor.kwargs] + chan)[:MAX_CANDIDATES]

    def dynamic(self, s: TCall, ctx, made, mades: list[Made], var: str, in_c: PyExpr, py=None) -> Call:
        """`nl(c)`: the callee is a parameter holding an op or block (a factory or a class)."""
        positional = {m.positional for m in mades}
        if len(positional) != 1:
            raise EmitError(f"'{s.call.func}' binds its arguments differently in different uses of the block",
                            *self.where(s.call.span), hint="name the arguments: f(out = 16)")
        names = list(positional.pop()) + [k.name for k in s.call.kwargs]
        nodes = list(s.call.args) + [k.value for k in s.call.kwargs]
        kwargs = []
        py = py or self.py
        for name, node in zip(names, nodes):
            values = [getattr(m.attrs, name) if isinstance(m, Layer) else m.values[name] for m in made]
            kwargs.append((name, ctx.choose(values, [py(node)], name, self.where(s.call.span))))
        if all(isinstance(m, Layer) for m in made) and all(self.emission.in_place.get(m.name) == 0 for m in made) \
                and all(OPS[m.op].in_place for m in made):
            kwargs.append(("inplace", Lit(True)))
        if any(isinstance(m, Instance) and self.emission.classes_code[m.block].signature.hoisted for m in made):
            raise EmitError(f"the block called through '{s.call.func}' needs values its caller cannot give",
                            *self.where(s.call.span))
        return Call(var, (in_c,), tuple(kwargs))

    def channels(self, ctx: Context, values: list, chan: list, span, hint: str = "in_channels") -> PyExpr:
        """The input channels of what is built next: what the statements before it made, a variable that
        holds them, or, after an `if`, one of each branch's (`reduce if self.use_x else in_c`)."""
        candidates = []
        for c in chan:
            candidates += self.branched(ctx, values, c) if isinstance(c, Branched) else [c]
        candidates += [Name(v) for v in self.vars.values()] + [Name("in_c")]
        return ctx.choose(values, candidates, hint, self.where(span))

    def branched(self, ctx: Context, values: list, b: Branched) -> list:
        taken = [bool(env.get(b.flag)) for env in ctx.envs]
        pick = {}
        for side, cands in ((True, b.then), (False, b.other)):
            sub = ctx.only([t == side for t in taken])
            sub_values = [v for v, t in zip(values, taken) if t == side]
            flat = [x for c in cands for x in (self.branched(sub, sub_values, c) if isinstance(c, Branched) else [c])]
            pick[side] = next((c for c in flat if c is not None and holds(c, sub.envs, sub_values)), None)
        if pick[True] is None or pick[False] is None:
            return []
        if str(pick[True]) == str(pick[False]):
            return [pick[True]]
        return [pick[True], IfElse(Name(b.flag), pick[True], pick[False])]

    # ------------------------------------------------------- compound ones
    def residual(self, s: TResidual, ctx, owner, var, ind, chan) -> list:
        infos = [i or {} for i in self.trace(ctx, s.key)]
        active = [bool(i.get("active")) for i in infos]
        if not any(active):
            return self.body(s.body, ctx, owner, var, ind, chan, plain=False)
        flag = None
        if not all(active):
            flag = self.flagged(ctx, active, s.flag, [self.py(s.cond)], ind, s.span)
        identity = self.fresh(s.identity)
        self.line(self.fwd, ind, f"{identity} = {var}")
        out = self.body(s.body, ctx, owner, var, ind, chan, plain=False)
        pad = ind + 1 if flag else ind
        if flag:
            self.line(self.fwd, ind, f"if self.{flag}:")
        shortcut = [a and bool(i.get("shortcut")) for a, i in zip(active, infos)]
        if s.shortcut is not None and any(shortcut):
            cond = self.py(s.shortcut.cond)
            self.shortcut(s, ctx, shortcut, self.part_of(flag, cond), owner, identity, ind, pad, chan)
        depth = [a and bool(i.get("depth")) for a, i in zip(active, infos)]
        if s.depth_module and any(depth):
            option = next(k.value for k in s.options if k.name == "stochastic_depth")
            self.depth(s, ctx, depth, self.part_of(flag, self.py(option)), option, owner, var, ind, pad)
        adds = [self.graph.nodes[i["add"]] for i, a in zip(infos, active) if a]
        if all(self.emission.in_place.get(a.name) == 0 for a in adds):  # torchvision: out += identity
            self.line(self.fwd, pad, f"{var} += {identity}")
        else:
            self.line(self.fwd, pad, f"{var} = {var} + {identity}")
        return out

    def part_of(self, flag: str | None, cond: PyExpr | None) -> list:
        """Candidates for a part of a residual that exists where the residual does and `cond` holds."""
        if cond is None:
            return [Name(f"self.{flag}")] if flag else []
        if flag is None:
            return [cond]
        return [BoolOp("and", (Name(f"self.{flag}"), cond))]

    def shortcut(self, s: TResidual, ctx, present: list[bool], candidates: list, owner, identity, ind, pad,
                 chan) -> None:
        short = s.shortcut
        flag = None
        if not all(present):
            flag = self.flagged(ctx, present, short.flag, candidates, ind, short.span)
            self.line(self.init, ind, f"if self.{flag}:")
            ind += 1
        ctx = ctx.only(present)
        target = f"{owner}.{short.module}"
        self.line(self.init, ind, f"{target} = nn.Sequential()")
        fwd_pad = pad + 1 if flag else pad
        if flag:
            self.line(self.fwd, pad, f"if self.{flag}:")
        if _plain(short.body):
            self.body(short.body, ctx, target, identity, ind, chan, plain=True)
            self.line(self.fwd, fwd_pad, f"{identity} = {target}({identity})")
        else:
            self.body(short.body, ctx, target, identity, fwd_pad, chan, plain=False)

    def depth(self, s: TResidual, ctx, present: list[bool], candidates: list, option, owner, var, ind, pad) -> None:
        flag = None
        if not all(present):
            flag = self.flagged(ctx, present, f"use_{s.depth_module}", candidates, ind, s.span)
            self.line(self.init, ind, f"if self.{flag}:")
        ctx = ctx.only(present)
        layers = [self.graph.nodes[i["depth"]] for i in self.trace(ctx, s.key)]
        ctor = op_ctor(ctx, layers, {"p": self.py(option), "mode": None}, None, self.emission)
        self.line(self.init, ind + (1 if flag else 0), f"{owner}.{s.depth_module} = {ctor}")
        if flag:
            self.line(self.fwd, pad, f"if self.{flag}:")
        self.line(self.fwd, pad + (1 if flag else 0), f"{var} = {owner}.{s.depth_module}({var})")

    def concat(self, s: TConcat, ctx, owner, var, ind, chan) -> list:
        outs, widths = [], []
        for branch in s.branches:
            target = f"{owner}.{branch.module}"
            self.line(self.init, ind, f"{target} = nn.Sequential()")
            if _plain(branch.body):
                ends = self.body(branch.body, ctx, target, var, ind, chan, plain=True)
                outs.append(f"{target}({var})")
            else:  # a branch with a nested concat (Inception v3's E block): written out here
                y = self.fresh("y")
                self.line(self.fwd, ind, f"{y} = {var}")
                ends = self.body(branch.body, ctx, target, y, ind, chan, plain=False)
                outs.append(y)
            widths.append(ends[0] if ends else None)
        self.line(self.fwd, ind, f"{var} = torch.cat([{', '.join(outs)}], 1)")
        self.emission.values.helpers.add("torch")
        return [_total(widths)] if all(w is not None for w in widths) else []

    def table(self, s: TTable, ctx, owner, var, ind, chan, plain) -> list:
        """A table in a block: its rows are an nn.Sequential (compiler/emit_rows.py writes the rows)."""
        from .emit_rows import rows_source

        traces = self.trace(ctx, s.key)
        target = f"{owner}.{s.module}"
        items, chan = rows_source(self, ctx, s, traces, chan)
        self.line(self.init, ind, f"{target} = nn.Sequential(")
        for item, comment in items:
            self.line(self.init, ind + 1, f"{item},{'  # ' + comment if comment else ''}")
        self.line(self.init, ind, ")")
        if not plain:
            self.line(self.fwd, ind, f"{var} = {target}({var})")
        return chan


# ------------------------------------------------------------------ op calls


def op_ctor(ctx: Context, layers: list[Layer], attr_exprs: dict, in_c: PyExpr | None, emission) -> Call:
    """`nn.Conv2d(in_c, out, 3, stride=s, padding=1)`: the op spec's constructor (compiler/ops/base.py `Arg`)
    with each argument chosen to give every instance's value."""
    op = OPS[layers[0].op]
    ranks = {len(l.in_shapes[0]) for l in layers}
    module = op.module_for(ranks.pop()) if len(ranks) == 1 else None
    if module is None:
        module = ctx.choose([ModuleClass(op.module_for(len(l.in_shapes[0]))) for l in layers], [], "norm_class")
        module = module.source()
    chosen, attr_values = {}, {}
    for name in op.Attrs.model_fields:
        attr_values[name] = values = [getattr(l.attrs, name) for l in layers]
        chosen[name] = ctx.try_choose(values, [attr_exprs.get(name)])
    args = [in_c] if op.channels else []
    kwargs = []
    for arg in op.args:
        values = [arg.value(l.attrs) for l in layers]
        if not arg.positional and arg.default is not NO_DEFAULT and all(same(v, arg.default) for v in values):
            continue
        if arg.attr is not None:
            candidates = [chosen.get(arg.attr)]
        elif all(same(values[0], v) for v in values[1:]):
            candidates = []  # the same everywhere: the literal reads best
        else:
            candidates = arg.formula(chosen, attr_values) if arg.formula else []
        expr = ctx.choose(values, candidates, arg.keyword)
        if arg.positional:
            args.append(expr)
        else:
            kwargs.append((arg.keyword, expr))
    if op.in_place and all(emission.in_place.get(l.name) == 0 for l in layers):
        kwargs.append(("inplace", Lit(True)))
    return Call(module, tuple(args), tuple(kwargs))


def _after_op(layer: Layer, ctor: Call, chan: list, exprs: dict, writer) -> list:
    """The channel candidates after an op: what its spec says of them (compiler/ops/base.py `out_channels`)."""
    op = OPS[layer.op]
    written = dict(zip([a.attr for a in op.args if a.positional], ctor.args[1 if op.channels else 0:]))
    written.update({a.attr: v for a in op.args for k, v in ctor.kwargs if k == a.keyword})
    first = chan[0] if chan and not isinstance(chan[0], Branched) else None
    after = op.out_channels(first, written)
    if after is first:
        return chan
    return [after] if after is not None else []


def _arg_exprs(call_, names: list[str], bound: int) -> dict:
    """The .arch expression of each parameter a call sets (after `bound` set by a partial)."""
    exprs = dict(zip(names[bound:], call_.args))
    exprs.update({k.name: k.value for k in call_.kwargs})
    return exprs


def _in_channels(made) -> int:
    return made.in_shapes[0][0] if isinstance(made, Layer) else made.in_shape[0]


def _total(widths: list) -> PyExpr:
    total = widths[0]
    for w in widths[1:]:
        total = binary("+", total, w)
    return total


def _plain(body) -> bool:
    """A shortcut or branch of calls (and lets and ifs of calls): an nn.Sequential runs it."""
    return all(isinstance(s, (TCall, TLet)) or (isinstance(s, TIf) and _plain(s.then) and _plain(s.other))
               for s in body)


def _lets(body):
    for s in body:
        if isinstance(s, TLet):
            yield s
        for inner in children(s):
            yield from _lets(inner)


__all__ = ["ClassCode", "ClassWriter", "Signature", "op_ctor", "global_env", "Tuple", "BoolOp", "IfElse"]
