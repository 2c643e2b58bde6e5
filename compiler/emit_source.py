"""The source emitter: a readable PyTorch file from the IR, and the one emitter.

    >>> import archc
    >>> text = archc.source(archc.zoo_path("mobilenet_v3_small.arch"))
    >>> print(next(line for line in text.splitlines() if line.startswith("class Bneck")))
    class Bneck(nn.Module):

One class per block kind (compiler/emit_classes.py), a class per residual,
concat or gate that stands in a section, and the network class: each section an
`nn.Sequential` with a line per table row and a comprehension for its repeats
(compiler/emit_rows.py), the row's text as its comment. `archc.build` is this
file compiled (compiler/emit_torch.py), so the module and the source cannot
differ. Module names are the graph's (compiler/naming.py); every value comes
from the IR (compiler/emit_values.py says how); names that reach the file are
identifiers the grammar allows, escaped where Python would read them otherwise,
and user text only ever lands in `#` comments and docstrings, one line each.
"""

from __future__ import annotations

import inspect
import re
import textwrap
import unicodedata
from pathlib import Path

import jinja2

from ..dsl.diagnostics import ArchError
from ..dsl.source import split_lines
from .emit_carried import Uncarried, carried_params, check_carried, derived_lets
from .emit_classes import Branched, ClassCode, ClassWriter, _after_op, op_ctor
from .emit_rows import LoopContext, section_lines
from .emit_values import Context, EmitError, Values
from .evaluate import Ref, bound_exprs, global_env, names_read, to_python, top_lets
from .graph import Element, Graph, Instance, Layer
from .inplace import in_place_layers
from .lower import TAux, TCall, walk
from .naming import class_name, python_name
from .ops import OPS
from .ops.base import NO_DEFAULT
from .ops.conv import conv_padding
from .pyexpr import Call, Lit, Name, make_divisible, names_in, round_half_up

TEMPLATES = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
                               autoescape=False, keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True,
                               undefined=jinja2.StrictUndefined)

# Functions of the compiler copied into the generated file, so that it computes what archc computes.
HELPERS = {"make_divisible": inspect.getsource(make_divisible), "round_half_up": inspect.getsource(round_half_up),
           "conv_padding": inspect.getsource(conv_padding)}
# The classes ops define in the file, where torch has none (compiler/ops: `Op.defines`).
DEFINED = {op.module: op.defines for op in OPS.values() if op.defines}


def comment(text: str) -> str:
    """User text as one safe comment line: control characters (newlines too) shown as '?'."""
    return "".join("?" if unicodedata.category(ch).startswith(("C", "Z")) and ch != " " else ch for ch in text).strip()


def row_text(line: str) -> str:
    """A table row as a comment: its cells' padding folded, so the line stays short."""
    return re.sub(r"[ \t]{2,}", " ", comment(line))


def docstring(text: str, width: int = 96) -> str:
    """User text inside a generated docstring, wrapped to `width` and indented for a class body; a
    backslash or a run of three quotes cannot end it early."""
    safe = comment(text).replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    if safe.endswith('"'):
        safe += " "
    return "\n    ".join(textwrap.wrap(safe, width)) or "."


def emit(graph: Graph, in_place: bool = True) -> str:
    """The generated module's text; raises ArchError (E500) where the network cannot be written as source.
    `in_place=False` writes no activation or add in place (tests/test_inplace.py compares the two)."""
    try:
        try:
            return Emission(graph, in_place).render()
        except Uncarried:  # num_classes reaches a value no expression of it can write: written as built
            return Emission(graph, in_place, carry=False).render()
    except EmitError as error:
        raise ArchError([error.diagnostic]) from None


class Emission:
    def __init__(self, graph: Graph, in_place: bool = True, carry: bool = True):
        self.graph, self.program, self.lowered = graph, graph.program, graph.lowered
        self.constants = global_env(self.program, graph.params).parent  # what block bodies see
        # the layers that may overwrite an input (compiler/inplace.py)
        self.in_place = in_place_layers(graph) if in_place else {}
        self.instances: dict[str, list[Instance]] = {}
        for inst in graph.instances.values():
            self.instances.setdefault(inst.block, []).append(inst)
        taken = set(DEFINED) | {python_name(n) for n in graph.program.blocks}
        self.classes: dict[str, str] = {}
        for template in self.instances:
            self.classes[template] = class_name(_class_base(template), taken | set(self.classes.values()))
        self.values = Values(graph, self.classes)
        self.classes_code: dict[str, ClassCode] = {}
        # the parameters the file takes (compiler/emit_carried.py), the constants computed from them, and
        # those of them that the network's code reads
        self.carried = carried_params(graph) if carry else {}
        self.lets = top_lets(self.program)
        self.derived = derived_lets(self.lets, self.carried) if self.carried else set()
        if self.carried:
            check_carried(graph, self.carried, self.derived, self.lets)
        self.reads: set[str] = set()
        self.chan: list = []  # the expressions (of carried parameters) of the last element's output channels
        self.calls = _section_calls(self.lowered)

    def context(self, loop: list[dict] | None = None) -> Context:
        """The network class's context, where the carried parameters hold their values: one instance, or
        a row's repeats in a comprehension (`loop`: each one's `i`)."""
        if loop is None:
            return Context([{"#": 0, **self.carried}], self.values, set(self.carried), reads=self.reads)
        return LoopContext([{**self.carried, **env} for env in loop], self.values, set(self.carried), reads=self.reads)

    def carries(self, expr) -> bool:
        """Whether a Python expression reads a carried parameter."""
        return expr is not None and bool(names_in(expr) & set(self.carried))

    def reads_carried(self, node) -> bool:
        """Whether a .arch expression reads a carried parameter, or a constant computed from one."""
        return bool(set(names_read(node)) & (set(self.carried) | self.derived))

    # ------------------------------------------------------------ classes
    def order(self) -> tuple[list[str], set[str]]:
        """Templates with callees first, and those that call themselves (directly or not)."""
        deps: dict[str, set[str]] = {t: set() for t in self.instances}
        for inst in self.graph.instances.values():
            if inst.owner:
                deps[self.graph.instances[inst.owner].block].add(inst.block)
        done, order, recursive, stack = set(), [], set(), []

        def visit(t: str) -> None:
            if t in stack:
                recursive.update(stack[stack.index(t):])
                return
            if t in done:
                return
            stack.append(t)
            for d in sorted(deps[t]):
                visit(d)
            stack.pop()
            done.add(t)
            order.append(t)

        for t in self.instances:
            visit(t)
        return order, recursive

    def write_classes(self) -> None:
        order, recursive = self.order()
        for name in order:
            template = self.lowered.blocks[name]
            writer = ClassWriter(self, template, self.instances[name], self.classes[name], name in recursive)
            if name in recursive:  # its own calls need its signature before its body is written
                self.classes_code[name] = ClassCode(self.classes[name], "", writer.parameters(), [], [],
                                                    {i.path: n for n, i in enumerate(self.instances[name])})
            self.classes_code[name] = writer.write()

    def block_ctor(self, ctx: Context, instances: list[Instance], exprs: dict, in_c, where) -> Call:
        """`Bneck(16, 3, 72, 24, nl=relu, s=2)`: a block class's constructor for these instances."""
        code = self.classes_code[instances[0].block]
        signature, args, kwargs = code.signature, [in_c], []
        for name, var in signature.required:
            args.append(ctx.choose([i.values[name] for i in instances], [exprs.get(name)], var, where))
        for name, var, default in signature.optional:
            values = [i.values[name] for i in instances]
            if not self.carries(exprs.get(name)) and (not any(name in i.given for i in instances) or _defaults_to(self, default, values)):
                continue  # the class's default gives it (a computed default is None, which no value here is)
            kwargs.append((var, ctx.choose(values, [exprs.get(name)], var, where)))
        for name in signature.hoisted:
            values = [code.hoisted[name].get(code.index[i.path]) for i in instances]
            kwargs.append((name, ctx.choose(values, [], name, where)))
        return Call(code.name, tuple(args), tuple(kwargs))

    # ------------------------------------------------------------ network
    def element_ctor(self, elements, ctx: Context, loop: bool = False) -> Call:
        """An element's constructor (a row's repeats' in a comprehension, `loop`). Its cells' expressions
        are candidates in a comprehension, where they may read `i`; elsewhere those that read a carried
        parameter are (a literal reads best otherwise), and so are the channels the element before it
        made where they are such an expression (`self.chan`)."""
        elements = elements if isinstance(elements, list) else [elements]
        nodes = [self.graph.nodes.get(e.path) or self.graph.instances[e.path] for e in elements]
        scope = _SectionScope(self, elements[0])
        sources = self.sources(elements[0], nodes[0])
        exprs = {name: to_python(node, scope) for name, node in sources.items()}
        if any(exprs[k] is None and self.reads_carried(node) for k, node in sources.items()):
            raise Uncarried
        if not loop:
            exprs = {k: e for k, e in exprs.items() if self.carries(e)}
        first = nodes[0]
        in_c = ctx.choose([n.in_shapes[0][0] if isinstance(n, Layer) else n.in_shape[0] for n in nodes],
                          self.chan, "c")
        if isinstance(first, Layer):
            ctor = op_ctor(ctx, nodes, exprs, in_c, self)
            after = _after_op(first, ctor, self.chan, exprs, self)
        elif first.block in self.lowered.blocks and self.lowered.blocks[first.block].implicit:
            ctor, after = Call(self.classes_code[first.block].name, (in_c,)), []
        else:
            ctor = self.block_ctor(ctx, nodes, exprs, in_c, (first.call_file, first.span))
            after = list(ctor.args[1:]) + [v for _k, v in ctor.kwargs] + self.chan
        if not loop:
            self.chan = [c for c in after if not isinstance(c, Branched) and self.carries(c)]
        return ctor

    def sources(self, element: Element, node) -> dict:
        """The expression each parameter of an element was set from: its table cells (compiler/tables.py),
        or the arguments of the call statement or aux head that made it."""
        if element.cells:
            return element.cells
        call_ = self.calls.get(node.key) if not node.owner and node.key else self.calls.get(element.section)
        if call_ is None or node.via is None:
            return {}
        names = list(OPS[node.via.name].fields) if node.via.kind == "op" else \
            [p.name for p in self.lowered.blocks[node.via.name].params]
        return bound_exprs(call_, names, len(node.via.args) + len(call_.args), self.lets)

    def row_comment(self, element: Element) -> str:
        node = self.graph.nodes.get(element.path) or self.graph.instances[element.path]
        file = element.row_file if element.row is not None else node.call_file if isinstance(node, Instance) \
            else node.file
        span = element.row or node.span
        text = split_lines(self.program.sources.get(file, ""))
        return row_text(text[span.line - 1]) if 0 < span.line <= len(text) else ""

    def members(self) -> tuple[list[dict], list[dict], list[str]]:
        """The network's top-level modules in registration order, its aux heads' inputs, and its forward."""
        graph = self.graph
        groups: dict[str, list[Element]] = {}  # a section is registered where it begins, an aux head where it is
        for element in graph.elements:
            groups.setdefault(element.section, []).append(element)
        aux = {python_name(a) for a in graph.aux}
        members = []
        for name, elements in groups.items():
            if name in aux:  # it branches off the network: the channels before it are not its input
                chan, self.chan = self.chan, []
                members.append({"single": True, "name": name, "ctor": str(self.element_ctor(elements[0],
                                self.context())), "comment": self.row_comment(elements[0])})
                self.chan = chan
                continue
            lines = [{"ctor": c, "comment": k} for c, k in section_lines(self, elements)]
            members.append({"single": False, "name": name, "lines": lines, "elements": elements})
        heads, lines = self.forward(members)
        return members, heads, lines

    def forward(self, members: list[dict]) -> tuple[list[str], list[str]]:
        """The network's forward: its sections' slices in the order the IR runs them, an aux head's input
        kept where it branches off and the head run where its statement stands (so dropout draws its
        numbers in the IR's order). Returns the aux heads' variables and the lines."""
        graph = self.graph
        position = {}  # element path -> (section, its position there)
        for m in members:
            for p, element in enumerate(m.get("elements", [])):
                position[element.path] = (m["name"], p)
        last = {}  # (section, position) -> the name of that element's output
        for name in graph.order:
            found = position.get(name) or next((position[p] for p in _prefixes(name) if p in position), None)
            if found is not None:
                last[found] = name
        taps = {}  # (section, position) or "input" -> the variable holding the tensor there
        for head in graph.aux:
            py = python_name(head)
            first = next(graph.layer(n) for n in graph.order if n == py or n.startswith(py + "."))
            source = first.inputs[0]
            where = "input" if source == "input" else next((k for k, v in last.items() if v == source), None)
            if where is None:
                raise EmitError(f"the aux head '{comment(head)}' reads from inside a block, which cannot be emitted "
                                "yet", first.file, first.span)
            taps.setdefault(where, f"{py}_in")
        lines = [f"{taps['input']} = x"] if "input" in taps else []
        sizes = {m["name"]: len(m["elements"]) for m in members if not m["single"]}
        heads, run = [], None  # run: the slice of a section not yet written, [section, start, stop]

        def flush():
            if run is not None:
                section, a, b = run
                part = "" if (a, b) == (0, sizes[section]) else f"[{a}]" if b == a + 1 else \
                    f"[{a}:]" if b == sizes[section] else f"[{a}:{b}]"
                lines.append(f"x = self.{section}{part}(x)")

        for element in graph.elements:
            if element.path not in position:  # an aux head: run where its statement stands, in training only
                flush()
                run = None
                py = element.section
                first = next(graph.layer(n) for n in graph.order if n == py or n.startswith(py + "."))
                source = first.inputs[0]
                where = "input" if source == "input" else next(k for k, v in last.items() if v == source)
                if not (len(lines) >= 2 and lines[-2] == "if self.training:" and lines[-1].startswith("    ")):
                    lines.append("if self.training:")  # else the head above's: one block for both
                lines.append(f"    {py} = self.{py}({taps[where]})")
                heads.append(py)
                continue
            section, p = position[element.path]
            if run is not None and (run[0] != section or run[2] != p):
                flush()
                run = None
            run = [section, p, p + 1] if run is None else [section, run[1], p + 1]
            if (section, p) in taps:
                flush()
                run = None
                lines.append(f"{taps[(section, p)]} = x")
        flush()
        return heads, lines

    # ------------------------------------------------------------- file
    def factories(self) -> list[dict]:
        out = []
        for name, (op_name, rank) in sorted(self.values.factories.items()):
            op = OPS[op_name]
            fields = op.Attrs.model_fields
            params, args, kwargs = ["c"], [Name("c")] if op.channels else [], []
            for attr, info in fields.items():
                params.append(attr if info.is_required() else f"{attr}={Lit(info.default)}")
            for arg in op.args:
                expr = Name(arg.attr) if arg.attr else Name(arg.helper) if arg.helper else \
                    Lit(arg.derive(op.Attrs.model_construct()))
                if arg.helper:
                    self.values.helpers.add(arg.helper.split("(")[0])
                if arg.positional:
                    args.append(expr)
                else:
                    kwargs.append((arg.keyword, expr))
            if op.in_place:
                params.append("inplace=False")
                kwargs.append(("inplace", Name("inplace")))
            out.append({"signature": f"{name}({', '.join(params)})",
                        "body": str(Call(op.module_for(rank), tuple(args), tuple(kwargs)))})
        return out

    def render(self) -> str:
        graph, program = self.graph, self.program
        network = program.network
        self.write_classes()
        members, aux_heads, forward = self.members()
        factories = self.factories()
        classes = [{"name": c.name, "doc": docstring(c.doc), "signature": c.signature_text(), "init": c.init,
                    "forward": c.forward} for c in (self.classes_code[t] for t in self.order()[0])]
        net_class = class_name(network.name, {c["name"] for c in classes} | set(self.values.factories))
        carried = [(n, v) for n, v in self.carried.items() if n in self.reads]  # those its code reads
        fields = dict(file=comment(Path(program.file).name), network=comment(network.name), net_class=net_class,
                      params=[comment(f"{k} = {_shown(v)}") for k, v in graph.params.items()],
                      input=" × ".join(str(d) for d in graph.input_shape), factories=factories, classes=classes,
                      members=members, aux_heads=aux_heads, forward=forward,
                      arguments=", ".join(f"{n}: int = {Lit(v)}" for n, v in carried),
                      passed=", ".join(f"{n}={n}" for n, _v in carried))
        # What the file needs (imports, helper functions, op classes) is what its code calls: render it
        # once without them, read its code (comments and docstrings carry user text: left out), then for real.
        bare = TEMPLATES.get_template("network.py.j2").render(
            **fields, uses_math=False, uses_partial=False, uses_torch=False, helpers=[], defined=[])
        code = "\n".join(line.split("#", 1)[0] for line in bare.splitlines() if '"""' not in line)
        needed = [h for h in sorted(HELPERS) if re.search(rf"\b{h}\(", code)]
        defined = [DEFINED[m] for m in sorted(DEFINED) if re.search(rf"\b{m}\(", code)]  # an op's own class
        code += "\n".join([HELPERS[h] for h in needed] + defined)  # they may need an import too
        return TEMPLATES.get_template("network.py.j2").render(
            **fields, uses_math="math." in code, uses_partial=bool(re.search(r"\bpartial\(", code)),
            uses_torch="torch." in code, helpers=[HELPERS[h] for h in needed], defined=defined)


class _SectionScope:
    """Names in a section's table cells, for a row's repeats: `index` is the comprehension's `i`."""

    def __init__(self, emission: Emission, element: Element):
        self.emission, self.element = emission, element

    def name(self, ident: str):
        if ident == "index":
            return Name("i")
        if ident == "count":
            return Lit(self.element.count)
        if ident in self.emission.carried:
            return Name(ident)
        if ident in self.emission.derived:  # a constant computed from one: its expression
            expr = to_python(self.emission.lets[ident], self)
            if expr is None:
                raise Uncarried
            return expr
        params = self.emission.graph.params
        value = params[ident] if ident in params else None
        if value is None:
            try:
                value = self.emission.constants.lookup(ident, None)
            except Exception:  # noqa: BLE001 - a section `let`: not in the file
                return None
        try:
            return self.emission.values.value(value)
        except EmitError:
            return None

    def field(self, obj: str, attr: str):
        return None


def _section_calls(lowered) -> dict:
    """The call of each call statement in a section, by its key (an int), and of each aux head, by its name."""
    calls: dict = {}
    for section in lowered.sections:
        for stmt in walk(section.body):
            if isinstance(stmt, TCall):
                calls[stmt.key] = stmt.call
            elif isinstance(stmt, TAux):
                calls[python_name(stmt.aux.name)] = stmt.aux.call
    return calls


def _defaults_to(emission: Emission, default, values: list) -> bool:
    """Whether a literal default (or a factory's name) is every one of `values`."""
    from .pyexpr import holds

    return holds(default, [emission.values.env({})] * len(values), values)


def _class_base(template: str) -> str:
    """A section's residual `features:3` is written as the class `Features3`."""
    return template.replace(":", "_")


def _prefixes(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(len(parts) - 1, 0, -1)]


def _shown(value) -> str:
    """A parameter's value for the file's header, as the .arch file would write it."""
    if isinstance(value, Ref):
        if not value.args and not value.kwargs:
            return value.name
        inner = [_shown(a) for a in value.args] + [f"{k} = {_shown(v)}" for k, v in value.kwargs]
        return f"{value.name}({', '.join(inner)})"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    return Lit(value).source() if isinstance(value, (int, float, tuple)) else repr(value)


__all__ = ["HELPERS", "TEMPLATES", "EmitError", "Emission", "comment", "docstring", "emit", "NO_DEFAULT"]
