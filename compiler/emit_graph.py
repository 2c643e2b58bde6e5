r"""`archc graph`: the checked graph as a picture.

    >>> from archc.compiler.check import build_graph
    >>> from archc.compiler.program import library_dir
    >>> pic = picture(build_graph(library_dir() / "nin.arch"), title="nin")
    >>> pic.nodes["features.0.conv_0"].lines
    ['conv', 'out=96 k=11×11 s=4 pad=0', '96×54×54']

The graph is first reduced to a `Picture` (nodes with their label lines,
edges, the tree of block clusters), collapsed to a depth where asked or where
it is too large; emit_dot.to_dot writes it for Graphviz and emit_svg.to_svg
lays it out itself when Graphviz's `dot` is not installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from ..dsl.record import Record
from ..dsl.source import printable, source_line
from .graph import Graph
from .ops import OPS

JOINS = {"add": "+", "multiply": "×", "concat": "cat"}  # drawn as small circles
SHORT = {"stride": "s", "groups": "g", "dilation": "d", "padding": "pad", "negative_slope": "slope"}
HIDDEN = {"bias", "eps", "momentum"}  # always there, rarely what a reader looks for
ALWAYS = {"p"}  # shown even at its default: a dropout's rate is the point of it
FILL = {"conv": "#dbe8f6", "norm": "#ececec", "activation": "#fbf1cc", "pool": "#d9efd9", "linear": "#e6dcf2",
        "block": "#f3e3d3"}
MAX_RANKS = 300  # rows of one picture: about 23,000 px in a Graphviz PNG at 96 dpi
FORMATS = (".svg", ".png", ".dot")


class GraphUsageError(ValueError):
    """An output the command line cannot write (exit status 2)."""


class Node(Record, frozen=False):
    id: str  # the layer name, "input", or "@output" / "@aux:NAME" for the network's results
    lines: list[str]  # the label, one entry per line
    kind: str = "box"  # "box", "join" or "io"
    fill: str = "#ffffff"
    dashed: bool = False  # on an auxiliary head
    tooltip: str = ""


class Cluster(Record, frozen=False):
    path: str  # the block instance's module path, e.g. "features.1"
    nodes: list[str] = []  # node ids directly inside it
    children: list[Cluster] = []


class Picture(Record, frozen=False):
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
        return "×".join(_value(x) for x in v)
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        return f"{v:.4g}"  # a dropout rate of 0.2 * 2 / 110 reads p=0.003636, not 0.0036363636363636364
    return str(v)


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


def picture(graph: Graph, title: str = "", depth: int | None = None) -> Picture:
    """The drawing's content, independent of how it is rendered. With `depth`, block instances nested
    deeper than `depth` frames are drawn as one node each (`depth=1`: a frame per section, a node per
    block instance in it: per table row, or per repeat of a row)."""
    nodes = {"input": Node("input", ["input", shape_text(graph.input_shape)], kind="io", tooltip="input")}
    edges: list[tuple[str, str, bool]] = []
    for name, shape in graph.placeholders.items():
        nodes[name] = Node(name, [name, shape_text(shape)], kind="io", dashed=True, tooltip=name)
    shown = _shown_as(graph, depth)
    groups: dict[str, list] = {}
    for layer in graph.layers():
        groups.setdefault(shown[layer.name], []).append(layer)
    for name, layers in groups.items():
        nodes[name] = _layer_node(layers[0]) if len(layers) == 1 and name == layers[0].name else _block_node(name, layers, graph)
        for layer in layers:
            edges += [(shown.get(source, source), name, layer.aux) for source in layer.inputs
                      if shown.get(source, source) != name]
    edges = list(dict.fromkeys(edges))  # a collapsed block's inputs once each
    if graph.result in nodes or graph.result in shown:
        out = graph.layer(graph.result).out_shape if graph.result in graph else graph.input_shape
        nodes["@output"] = Node("@output", ["output", shape_text(out)], kind="io", tooltip="output")
        edges.append((shown.get(graph.result, graph.result), "@output", False))
    for head, last in graph.aux.items():
        if last in graph:
            nodes[f"@aux:{head}"] = Node(f"@aux:{head}", [head, shape_text(graph.layer(last).out_shape)], kind="io",
                                         dashed=True, tooltip=f"auxiliary output {head}")
            edges.append((shown[last], f"@aux:{head}", True))
    return Picture(title, nodes, edges, _cluster_tree(list(groups)))


def _layer_node(layer) -> Node:
    shape = shape_text(layer.out_shape)
    if layer.op in JOINS:  # statements make them: `features.3.add~30`
        node = Node(layer.name, [JOINS[layer.op]], kind="join", tooltip=f"{layer.name}: {layer.op} → {shape}")
    else:
        lines = [layer.op, attrs_text(layer.op, layer.attrs), shape]
        node = Node(layer.name, [s for s in lines if s], fill=FILL.get(OPS[layer.op].category, "#ffffff"),
                    tooltip=layer.name)
    node.dashed = layer.aux
    return node


def _block_node(path: str, layers: list, graph: Graph) -> Node:
    """A block instance drawn as one node: its path, its table row's cells, its size, its output."""
    lines = [path]
    rows = {(layer.row_file, layer.row.line) for layer in layers if layer.row is not None}
    program = getattr(graph, "program", None)
    if len(rows) == 1 and program is not None:
        (file, line), = rows
        text = " ".join((source_line(program.sources.get(file), line) or "").split())
        lines.append(text if len(text) <= 48 else text[:47] + "…")
    params = sum(layer.param_count for layer in layers)
    lines.append(f"{len(layers)} layers" + (f", {params:,} params" if params else ""))
    lines.append(shape_text(layers[-1].out_shape))
    return Node(path, lines, fill=FILL["block"], dashed=all(layer.aux for layer in layers),
                tooltip=f"{path}: " + ", ".join(dict.fromkeys(layer.op for layer in layers)))


def _shown_as(graph: Graph, depth: int | None) -> dict[str, str]:
    """layer name -> the node that draws it: itself, or the block instance at `depth` + 1 holding it."""
    names = [layer.name for layer in graph.layers()]
    if depth is None:
        return {name: name for name in names}
    counts: dict[str, int] = {}
    for name in names:
        for prefix in _prefixes(name):
            counts[prefix] = counts.get(prefix, 0) + 1
    shown = {}
    for name in names:
        chain = [p for p in _prefixes(name) if counts[p] >= 2]  # the block instances holding it, outermost first
        shown[name] = chain[depth] if len(chain) > depth else name
    return shown


def nesting(graph: Graph) -> int:
    """How many block instances deep the graph nests: `depth` at which picture() draws every layer."""
    counts: dict[str, int] = {}
    for layer in graph.layers():
        for prefix in _prefixes(layer.name):
            counts[prefix] = counts.get(prefix, 0) + 1
    return max((sum(counts[p] >= 2 for p in _prefixes(layer.name)) for layer in graph.layers()), default=0)


def fitting(graph: Graph, title: str = "", depth: int | None = None) -> tuple[Picture, str | None]:
    """The picture at `depth`, or, without one, at the deepest depth whose longest chain of nodes stays
    within MAX_RANKS (a PNG taller than Graphviz's 32,767 px is scaled down to a strip); and a note
    saying what was collapsed, or None."""
    if depth is not None:
        return picture(graph, title, depth), None
    full = nesting(graph)
    for d in [None, *range(full - 1, -1, -1)]:
        pic = picture(graph, title, d)
        if _ranks(pic) <= MAX_RANKS or d == 0:
            break
    if d is None:
        return pic, None
    return pic, (f"{len(graph.order):,} layers are too many for one readable picture: block instances nested more "
                 f"than {d} deep are drawn as one node each (--depth {d}); --depth {full} draws every layer")


def _ranks(pic: Picture) -> int:
    """The longest path through the picture, in nodes: how many rows a layered drawing needs."""
    longest: dict[str, int] = {}
    preds: dict[str, list[str]] = {}
    for s, t, _ in pic.edges:
        preds.setdefault(t, []).append(s)
    for n in pic.nodes:  # nodes come in build order, a topological order
        longest[n] = 1 + max((longest.get(p, 0) for p in preds.get(n, [])), default=0)
    return max(longest.values(), default=0)


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


def render(graph: Graph, out: str | Path, *, title: str = "", renderer: str = "auto", depth: int | None = None,
           notes: list[str] | None = None) -> str:
    """Write the picture to `out` (.svg, .png or .dot); returns the renderer used:
    "dot" (Graphviz), "python" (the built-in SVG layout) or "none" (DOT text).

    `renderer` is "auto" (Graphviz when installed), "dot" or "python". `depth` draws block instances
    nested deeper as one node each; without it a network too large for one picture is collapsed to a
    depth that fits. What the user should know (that collapse, Graphviz's warnings) is appended to
    `notes`. Raises GraphUsageError for an output this machine cannot write, and RuntimeError if
    Graphviz fails.
    """
    notes = notes if notes is not None else []
    suffix, path = check_output(out, renderer), Path(out)
    pic, note = fitting(graph, title, depth)
    if note:
        notes.append(note)
    from .emit_dot import to_dot

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
    # dot says on stderr what it did not draw as asked (a PNG scaled down to fit its 32,767 px limit)
    notes += [f"Graphviz: {printable(line.strip())}" for line in done.stderr.decode("utf-8", "replace").splitlines()
              if line.strip()]
    path.write_bytes(done.stdout)
    return "dot"
