r"""Graphviz DOT for `archc graph`: a picture (compiler/emit_graph.py) as nested clusters.

    >>> from archc.compiler.check import build_graph
    >>> from archc.compiler.program import library_dir
    >>> dot = to_dot(build_graph(library_dir() / "nin.arch"), title="nin")
    >>> print(next(line for line in dot.splitlines() if line.strip().startswith('"features.0.conv_0"')).strip())
    "features.0.conv_0" [label="conv\nout=96 k=11×11 s=4 pad=0\n96×54×54", tooltip="features.0.conv_0", fillcolor="#dbe8f6"];

Every name and label comes from user files, so every string in the DOT is
quoted and escaped by `quote`.
"""

from __future__ import annotations

from ..dsl.source import printable
from .emit_graph import JOINS, Cluster, Node, Picture, picture
from .graph import Graph


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
    branches = _branches(pic)

    def emit(c: Cluster, indent: str) -> None:
        for node_id in c.nodes:
            out.append(indent + _node(pic.nodes[node_id]))
        order = branches.get(c.path, [])
        rest = [child for child in c.children if child.path not in order]
        for child in rest + sorted((k for k in c.children if k.path in order), key=lambda k: -order.index(k.path)):
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
    heads = {child.path: next(n for n in _nodes_in(child)) for child in _all_clusters(pic.top)}
    for order in branches.values():
        for a, b in zip(order, order[1:]):
            out.append(f"  {quote(heads[a])} -> {quote(heads[b])} [style=invis, minlen=0];")
    out.append("}")
    return "\n".join(out) + "\n"


def _branches(pic: Picture) -> dict[str, list[str]]:
    """cluster path -> its child clusters that a concat joins, in branch order.

    Graphviz's crossing minimisation drew GoogLeNet's branches 0, 2, 1, 3. What Graphviz 2.43 keeps is the
    reverse of the order the branch clusters are written in, once invisible edges join the branches'
    first nodes on their rank: to_dot writes them last branch first, with those edges."""
    inside = pic.cluster_of()
    parent_of = {child.path: c.path for c in [pic.top, *_all_clusters(pic.top)] for child in c.children}
    found: dict[str, list[str]] = {}
    for node in pic.nodes.values():
        if node.kind != "join" or node.lines != [JOINS["concat"]]:
            continue
        parent, order = inside.get(node.id, ""), []
        for source, target, _ in pic.edges:
            path = inside.get(source, "")
            while path and parent_of.get(path) != parent:  # up to the join's own cluster's child
                path = parent_of.get(path, "")
            if target == node.id and path and path not in order:
                order.append(path)
        if len(order) > 1:
            found[parent] = order
    nested = {p for p in found for q in found if q != p and q.startswith(p + ".")}
    return {p: order for p, order in found.items() if p not in nested}


def _all_clusters(c: Cluster):
    for child in c.children:
        yield child
        yield from _all_clusters(child)


def _nodes_in(c: Cluster):
    yield from c.nodes
    for child in c.children:
        yield from _nodes_in(child)


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
