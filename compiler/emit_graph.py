r"""`archc graph`: the checked graph as a picture, through DOT.

    >>> from archc.compiler.check import build_graph
    >>> from archc.compiler.program import library_dir
    >>> dot = to_dot(build_graph(library_dir() / "nin.arch"), title="nin")
    >>> print(next(line for line in dot.splitlines() if line.strip().startswith('"features.0.conv_0"')).strip())
    "features.0.conv_0" [label="conv\nout=96 k=11×11 s=4 pad=0\n96×54×54", tooltip="features.0.conv_0", fillcolor="#dbe8f6"];

The graph is first reduced to a `Picture` (nodes with their label lines,
edges, the tree of block clusters); `to_dot` writes it for Graphviz and
`emit_svg.to_svg` lays it out itself when Graphviz's `dot` is not installed.
Every name and label comes from user files, so every string in the DOT is
quoted and escaped by `quote` and every string in the SVG by the XML escapes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from ..dsl.source import printable
from .graph import Graph
from .ops import OPS

JOINS = {"add": "+", "multiply": "×", "concat": "cat"}  # drawn as small circles
SHORT = {"stride": "s", "groups": "g", "dilation": "d", "padding": "pad", "negative_slope": "slope"}
HIDDEN = {"bias", "eps", "momentum"}  # always there, rarely what a reader looks for
ALWAYS = {"p"}  # shown even at its default: a dropout's rate is the point of it
FILL = {"conv": "#dbe8f6", "norm": "#ececec", "activation": "#fbf1cc", "pool": "#d9efd9", "linear": "#e6dcf2"}
FORMATS = (".svg", ".png", ".dot")


class GraphUsageError(ValueError):
    """An output the command line cannot write (exit status 2)."""


@dataclass
class Node:
    id: str  # the layer name, "input", or "@output" / "@aux:NAME" for the network's results
    lines: list[str]  # the label, one entry per line
    kind: str = "box"  # "box", "join" or "io"
    fill: str = "#ffffff"
    dashed: bool = False  # on an auxiliary head
    tooltip: str = ""


@dataclass
class Cluster:
    path: str  # the block instance's module path, e.g. "features.1"
    nodes: list[str] = field(default_factory=list)  # node ids directly inside it
    children: list[Cluster] = field(default_factory=list)


@dataclass
class Picture:
    title: str
    nodes: dict[str, Node]
    edges: list[tuple[str, str, bool]]  # source, target, dashed
    top: Cluster  # the root: its path is "" and it is not drawn

    def cluster_of(self) -> dict[str, str]:
        """node id -> the path of the innermost cluster holding it ("" for none)."""
        found: dict[str, str] = {}

        def walk(c: Cluster):
            found.update((n, c.path) for n in c.nodes)
            for child in c.children:
                walk(child)

        walk(self.top)
        return found


def shape_text(shape) -> str:
    return "×".join(str(d) for d in shape)  # C×H×W, as `--input` takes it


def _value(v) -> str:
    if isinstance(v, (tuple, list)):
        return "×".join(str(x) for x in v)
    return str(v).lower() if isinstance(v, bool) else str(v)


def attrs_text(op: str, attrs) -> str:
    """The op's key attributes: required ones, and the others where not at their default."""
    parts = []
    for name, spec in type(attrs).model_fields.items():
        value = getattr(attrs, name)
        if name in HIDDEN or (not spec.is_required() and value == spec.default and name not in ALWAYS):
            continue
        if name == "k" and op == "conv" and not isinstance(value, (tuple, list)):
            value = (value, value)  # the paper's 3×3
        parts.append(f"{SHORT.get(name, name)}={_value(value)}")
    return " ".join(parts)


def _prefixes(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def picture(graph: Graph, title: str = "") -> Picture:
    """The drawing's content, independent of how it is rendered."""
    nodes = {"input": Node("input", ["input", shape_text(graph.input_shape)], kind="io", tooltip="input")}
    edges: list[tuple[str, str, bool]] = []
    for name, shape in graph.placeholders.items():
        nodes[name] = Node(name, [name, shape_text(shape)], kind="io", dashed=True, tooltip=name)
    for layer in graph.layers():
        shape = shape_text(layer.out_shape)
        if layer.op in JOINS:  # statements make them: `features.3.add~30`
            node = Node(layer.name, [JOINS[layer.op]], kind="join", tooltip=f"{layer.name}: {layer.op} → {shape}")
        else:
            group = type(OPS[layer.op]).__module__.rsplit(".", 1)[-1]
            lines = [layer.op, attrs_text(layer.op, layer.attrs), shape]
            node = Node(layer.name, [s for s in lines if s], fill=FILL.get(group, "#ffffff"), tooltip=layer.name)
        node.dashed = layer.aux
        nodes[layer.name] = node
        edges += [(source, layer.name, layer.aux) for source in layer.inputs]
    if graph.result in nodes:
        out = graph.layer(graph.result).out_shape if graph.result in graph else graph.input_shape
        nodes["@output"] = Node("@output", ["output", shape_text(out)], kind="io", tooltip="output")
        edges.append((graph.result, "@output", False))
    for head, last in graph.aux.items():
        if last in graph:
            nodes[f"@aux:{head}"] = Node(f"@aux:{head}", [head, shape_text(graph.layer(last).out_shape)], kind="io",
                                         dashed=True, tooltip=f"auxiliary output {head}")
            edges.append((last, f"@aux:{head}", True))
    return Picture(title, nodes, edges, _cluster_tree([layer.name for layer in graph.layers()]))


def _cluster_tree(names: list[str]) -> Cluster:
    """A cluster for every module path that holds two layers or more, nested."""
    counts: dict[str, int] = {}
    for name in names:
        for prefix in _prefixes(name):
            counts[prefix] = counts.get(prefix, 0) + 1
    top = Cluster("")
    made = {"": top}

    def cluster(path: str) -> Cluster:
        if path not in made:
            parent = next((p for p in reversed(_prefixes(path)) if counts.get(p, 0) >= 2), "")
            made[path] = Cluster(path)
            cluster(parent).children.append(made[path])
        return made[path]

    for name in names:
        inner = next((p for p in reversed(_prefixes(name)) if counts[p] >= 2), "")
        cluster(inner).nodes.append(name)
    return top


def quote(text: str) -> str:
    """A DOT double-quoted string that shows `text` literally.

    Quoted strings end only at an unescaped `"`; doubling every backslash
    also disarms Graphviz's label escapes (`\\N`, `\\G`, `\\l`), and `{}|<>`
    mean nothing in the quoted label of a non-record node.
    """
    return '"' + printable(text).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _label(lines: list[str]) -> str:
    return "\\n".join(quote(line)[1:-1] for line in lines).join('""')


def _attrs(**attrs: str) -> str:
    return ", ".join(f"{key}={value}" for key, value in attrs.items())


def to_dot(graph: Graph | Picture, title: str = "") -> str:
    """The network as Graphviz DOT: nested clusters for block instances, a node per layer."""
    pic = graph if isinstance(graph, Picture) else picture(graph, title)
    graph_attrs = _attrs(rankdir="TB", fontname="Helvetica", fontsize="12", labelloc="t", nodesep="0.25",
                         ranksep="0.3", label=quote(pic.title))
    node_attrs = _attrs(shape="box", style=quote("rounded,filled"), fontname="Helvetica", fontsize="10",
                        margin=quote("0.12,0.04"))
    out = ['digraph "archc" {', f"  graph [{graph_attrs}];", f"  node [{node_attrs}];",
           f'  edge [{_attrs(arrowsize="0.6", color=quote("#555555"))}];']
    counter = [0]

    def emit(c: Cluster, indent: str) -> None:
        for node_id in c.nodes:
            out.append(indent + _node(pic.nodes[node_id]))
        for child in c.children:
            counter[0] += 1
            out.append(f"{indent}subgraph cluster_{counter[0]} {{")
            frame = _attrs(label=quote(child.path), labeljust="l", style="rounded", color=quote("#9aa7b8"),
                           fontsize="10", fontcolor=quote("#4a5a70"))
            out.append(f"{indent}  graph [{frame}];")
            emit(child, indent + "  ")
            out.append(indent + "}")

    clustered = set(pic.cluster_of())
    for node in pic.nodes.values():
        if node.id not in clustered:
            out.append("  " + _node(node))
    emit(pic.top, "  ")
    for source, target, dashed in pic.edges:
        out.append(f"  {quote(source)} -> {quote(target)}" + (" [style=dashed];" if dashed else ";"))
    out.append("}")
    return "\n".join(out) + "\n"


def _node(node: Node) -> str:
    attrs = {"label": _label(node.lines), "tooltip": quote(node.tooltip or node.id)}
    if node.kind == "join":
        attrs.update(shape="circle", width="0.3", fixedsize="true", fontsize="9", style="filled", fillcolor="white")
    elif node.kind == "io":
        attrs.update(shape="box", style="rounded", penwidth="1.4")
    else:
        attrs.update(fillcolor=quote(node.fill))
    if node.dashed:
        style = ["rounded"] * (node.kind != "join") + ["dashed"] + ["filled"] * (node.kind != "io")
        attrs["style"] = quote(",".join(style))
    return f"{quote(node.id)} [{_attrs(**attrs)}];"


def dot_binary() -> str | None:
    """Graphviz's `dot`, unless ARCHC_NO_DOT is set (to draw with the built-in renderer)."""
    if os.environ.get("ARCHC_NO_DOT", "") not in ("", "0"):
        return None
    return shutil.which("dot")


def check_output(out: str | Path, renderer: str = "auto") -> str:
    """The output's suffix, if this machine can write it; else GraphUsageError."""
    suffix = Path(out).suffix.lower()
    if suffix not in FORMATS:
        raise GraphUsageError(f"cannot write {Path(out).name!r}: the output must end in .svg, .png or .dot")
    if renderer not in ("auto", "dot", "python"):
        raise GraphUsageError(f"unknown renderer {renderer!r}: auto, dot or python")
    if renderer == "dot" and dot_binary() is None:
        raise GraphUsageError("Graphviz's dot is not on PATH: install graphviz, or write .svg without it")
    if suffix == ".png" and (renderer == "python" or dot_binary() is None):
        raise GraphUsageError("PNG needs Graphviz's dot; write .svg or .dot")
    return suffix


def render(graph: Graph, out: str | Path, *, title: str = "", renderer: str = "auto") -> str:
    """Write the picture to `out` (.svg, .png or .dot); returns the renderer used:
    "dot" (Graphviz), "python" (the built-in SVG layout) or "none" (DOT text).

    `renderer` is "auto" (Graphviz when installed), "dot" or "python".
    Raises GraphUsageError for an output this machine cannot write, and
    RuntimeError if Graphviz fails.
    """
    suffix, path, pic = check_output(out, renderer), Path(out), picture(graph, title)
    if suffix == ".dot":
        path.write_text(to_dot(pic), encoding="utf-8")
        return "none"
    dot = dot_binary() if renderer != "python" else None
    if dot is None:
        from .emit_svg import to_svg

        path.write_text(to_svg(pic), encoding="utf-8")
        return "python"
    try:
        done = subprocess.run([dot, f"-T{suffix[1:]}"], input=to_dot(pic).encode("utf-8"), capture_output=True,
                              timeout=300, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise RuntimeError(f"Graphviz's dot did not finish: {error}") from None
    if done.returncode != 0:
        raise RuntimeError(f"Graphviz's dot failed: {done.stderr.decode('utf-8', 'replace').strip()}")
    path.write_bytes(done.stdout)
    return "dot"
