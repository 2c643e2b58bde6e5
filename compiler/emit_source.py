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

The blocks' statements are translated in compiler/emit_blocks.py; this module
collects what they need and writes the network class and the file. Each op
writes its own constructor (`Op.source` in compiler/ops/); shapes the
source cannot express in a block's terms (the size of a map before `flatten`)
are taken from the graph when every use of the block agrees, else emission
stops with an E500 diagnostic. Every name that reaches the file is checked to
be a plain identifier; user text only ever lands in `#` comments, one line each.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import jinja2

from ..dsl import ast
from ..dsl.diagnostics import ArchError
from .emit_blocks import (
    BodyWriter,
    EmitError,
    Scope,
    camel,
    comment,
    docstring,
    identifier,
    refers,
    uses_hw,
)
from .evaluate import Ref, _round, make_divisible
from .graph import Graph, Layer
from .inplace import in_place_layers
from .naming import body_names, python_name
from .ops import OPS
from .ops.conv import conv_padding

TEMPLATES = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
                               autoescape=False, keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True,
                               undefined=jinja2.StrictUndefined)

# Functions of the compiler copied into the generated file, so that it computes what archc computes.
HELPERS = {"make_divisible": inspect.getsource(make_divisible),
           "round_half_up": inspect.getsource(_round).replace("def _round(", "def round_half_up("),
           "conv_padding": inspect.getsource(conv_padding)}


class Emitter:
    """What one emission collects: the classes written, the helpers and op factories they use."""

    def __init__(self, graph: Graph):
        from .elaborate import global_env

        self.graph, self.program = graph, graph.program
        self.network_env = global_env(self.program, graph.params)
        self.helpers: set[str] = set()  # prelude pieces the file needs (HELPERS, "math", "StochasticDepth")
        self.factories: set[str] = set()  # ops passed as values: `def relu(c): ...`
        self.in_place = in_place_layers(graph)  # layers that may overwrite an input (compiler/inplace.py)
        self.classes: dict[str, str] = {}  # block -> class name
        self.rendered: dict[str, dict] = {}  # block -> template data, callees first
        self.names_cache: dict[int, dict] = {}
        self.busy: set[str] = set()  # blocks being translated (a block that calls itself is not expanded)
        # What each call statement made in the graph, by (file, span): its input shape and the layer or instance.
        self.made: dict[tuple, list] = {}
        for layer in graph.layers():
            self.made.setdefault((layer.file, _key(layer.span)), []).append((layer.in_shapes[0], layer))
        for inst in graph.instances.values():
            self.made.setdefault((inst.call_file, _key(inst.span)), []).append((inst.in_shape, inst))

    def uses(self, file: str, span: ast.Span) -> list:
        return self.made.get((file, _key(span)), [])

    def in_place_everywhere(self, file: str, span: ast.Span, op: str | None = None) -> bool:
        """Whether every layer this statement made (its `op` layers only, if given), in every use of its
        block, may overwrite its first input: an activation's input, a residual add's body output."""
        made = [thing for _shape, thing in self.uses(file, span) if op is None or getattr(thing, "op", None) == op]
        return bool(made) and all(isinstance(thing, Layer) and self.in_place.get(thing.name) == 0 for thing in made)

    def literal(self, value, file: str = "", span: ast.Span = ast.NO_SPAN) -> str:
        if value is None or isinstance(value, (bool, int, float, str)):
            return repr(value)
        if isinstance(value, tuple):
            return "(" + ", ".join(self.literal(v, file, span) for v in value) + ("," if len(value) == 1 else "") + ")"
        if isinstance(value, Ref) and value.kind == "op" and not value.args and not value.kwargs:
            self.factories.add(value.name)
            return value.name
        raise EmitError(f"a value of this kind ({type(value).__name__}) cannot be passed in the emitted source",
                        file, span, hint="pass ops without arguments, numbers, booleans or sizes")

    def class_for(self, block: str) -> str:
        if block not in self.classes:
            taken = set(self.classes.values()) | {"StochasticDepth"}
            name = camel(identifier(block, "block name"))
            while name in taken:
                name += "_"
            self.classes[block] = name
        return self.classes[block]

    def block_uses_hw(self, block: str) -> bool:
        return uses_hw(self.program.blocks[block][0].body)

    def translate(self, block: str) -> None:
        if block in self.rendered or block in self.busy:
            return
        self.busy.add(block)
        definition, file = self.program.blocks[block]
        scope = Scope(self, block, definition, file)
        names = body_names(definition.body, self.names_cache)
        writer = BodyWriter(self, scope, names)
        signature, defaults = ["in_c"], []
        if self.block_uses_hw(block):
            signature += ["in_h", "in_w"]
        own = {p.name for p in definition.params}
        for param in definition.params:
            py = scope.params[param.name]
            if param.default is None:
                signature.append(py)
            elif refers(param.default, own):  # a default computed from other parameters or the input
                signature.append(f"{py}=None")
                defaults.append(f"if {py} is None:")
                defaults.append(f"    {py} = {scope.expr(param.default)}")
            else:
                signature.append(f"{py}={scope.expr(param.default)}")
        writer.body(definition.body, "self", "x", 0, names)
        self.busy.discard(block)
        doc = f"{block}({', '.join(p.name for p in definition.params)}) from {Path(file).name}, line {definition.span.line}"
        self.rendered[block] = {"name": self.class_for(block), "doc": docstring(doc),
                                "signature": ", ".join(signature), "init": defaults + ["c = in_c"] + writer.init,
                                "forward": writer.fwd}


def _key(span: ast.Span) -> tuple[int, int, int, int]:
    return (span.line, span.col, span.end_line, span.end_col)


def emit(graph: Graph) -> str:
    """The generated module's text; raises ArchError (E500) where the network cannot be written as source."""
    try:
        return _emit(graph)
    except EmitError as error:
        raise ArchError([error.diagnostic]) from None


def _emit(graph: Graph) -> str:
    writer = Emitter(graph)
    program = graph.program
    network = program.network
    net_class = camel(identifier(network.name, "network name", program.file, network.span))
    top = _top_level(writer, graph)
    classes = [writer.rendered[b] for b in writer.rendered]
    if net_class in {c["name"] for c in classes}:
        net_class += "Network"
    factories = []
    for op_name in sorted(writer.factories):
        op = OPS[op_name]
        extra = {"inplace": "inplace"} if op.in_place else {}  # `def relu(c, inplace=False)`
        factories.append({"name": identifier(op_name, "op name"), "in_place": op.in_place,
                          "ctor": op.source({}, "c", 3, writer.helpers, **extra)})
    return TEMPLATES.get_template("network.py.j2").render(
        file=comment(Path(program.file).name), network=comment(network.name), net_class=net_class,
        params=[comment(f"{k} = {v!r}") for k, v in graph.params.items()],
        input=" × ".join(str(d) for d in graph.input_shape),
        uses_math="math" in writer.helpers, uses_depth="StochasticDepth" in writer.helpers,
        uses_torch="StochasticDepth" in writer.helpers or any("torch." in line for c in classes for line in c["forward"]),
        helpers=[HELPERS[h] for h in sorted(writer.helpers & HELPERS.keys())], factories=factories, classes=classes, **top)


def _top_level(writer: Emitter, graph: Graph) -> dict:
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
        line = _element(writer, graph, path)
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


def _element(writer: Emitter, graph: Graph, path: str) -> dict:
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
            elif refers(param.default, {p.name for p in definition.params}) or value != scope.expr(param.default):
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
        extra = {"inplace": "True"} if path in writer.in_place else {}
        ctor = op.source(given, str(layer.in_shapes[0][0]), len(layer.in_shapes[0]), writer.helpers, **extra)
        row, row_file, span, file = layer.row, layer.row_file, layer.span, layer.file
    text = sources.get(row_file if row is not None else file, "").splitlines()
    line = (row or span).line
    source_line = comment(text[line - 1]) if 0 < line <= len(text) else ""
    return {"index": path.split(".")[-1], "ctor": ctor, "comment": source_line}


__all__ = ["HELPERS", "TEMPLATES", "EmitError", "Emitter", "emit"]
