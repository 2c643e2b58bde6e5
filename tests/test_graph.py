"""archc graph: the checked graph as DOT, and as SVG drawn by Graphviz or by the
built-in layout; every layer and block instance is in the picture, and no name
from a user's file can break the DOT or the SVG."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest
from archc.compiler.check import build_graph
from archc.compiler.emit_dot import to_dot
from archc.compiler.emit_graph import GraphUsageError, check_output, dot_binary, picture, render
from archc.compiler.emit_svg import to_svg
from archc.compiler.graph import Graph
from archc.dsl.record import replace
from conftest import ZOO, run_archc

HAS_DOT = dot_binary() is not None  # Graphviz installed, and not turned off with ARCHC_NO_DOT
needs_dot = pytest.mark.skipif(not HAS_DOT, reason="Graphviz's dot is not installed")
RENDERERS = ["python", pytest.param("dot", marks=needs_dot)]
SVG = "{http://www.w3.org/2000/svg}"

INCEPTION_WITH_AUX = """\
block inception(a, b, c):
    concat:
        branch: conv(a, 1)
        branch:
            conv(b, 1)
            relu()
            conv(b, 3)
        branch:
            maxpool(3, stride = 1, padding = 1)
            conv(c, 1)

block head(n):
    avgpool(5, stride = 3)
    conv(8, 1)
    flatten()
    linear(n)

network g(num_classes = 4)
input 3 x 32 x 32

features:
    conv(16, 3)
    inception(16, 24, 8)
    aux aux1 = head(num_classes)
    residual:
        conv(48, 3)
        relu()
    inception(16, 24, 8)

classifier:
    global_avgpool()
    flatten()
    linear(num_classes)
"""


def expected_clusters(graph: Graph) -> set[str]:
    """Every module path holding two layers or more: a block instance."""
    counts = Counter(".".join(layer.name.split(".")[:i]) for layer in graph.layers()
                     for i in range(1, len(layer.name.split("."))))
    return {path for path, n in counts.items() if n >= 2}


def read_svg(path: Path):
    """(node title -> its texts, the texts of every element) of an SVG from either renderer."""
    root = ET.parse(path).getroot()
    assert root.tag == SVG + "svg"
    nodes = {}
    for g in root.iter(SVG + "g"):
        if g.get("class") == "node":
            nodes[g.find(SVG + "title").text] = [t.text for t in g.iter(SVG + "text")]
    return nodes, [t.text for t in root.iter(SVG + "text")]


def frame_titles(path: Path) -> set[str]:
    root = ET.parse(path).getroot()
    return {g.find(SVG + "title").text for g in root.iter(SVG + "g") if g.get("class") == "cluster"}


def draw(graph, tmp_path, renderer, name="net.svg", title="net"):
    out = tmp_path / name
    assert render(graph, out, title=title, renderer=renderer) == renderer
    return out


@pytest.mark.parametrize("renderer", RENDERERS)
@pytest.mark.parametrize("file", ["mobilenet_v3_small.arch", "nin.arch"])
def test_every_layer_and_block_instance_is_in_the_svg(tmp_path, file, renderer):
    graph = build_graph(ZOO / file)
    nodes, texts = read_svg(draw(graph, tmp_path, renderer))
    for layer in graph.layers():
        assert layer.name in nodes, layer.name
        if layer.op not in ("add", "concat", "multiply"):
            lines = nodes[layer.name]
            assert lines[0] == layer.op and lines[-1] == "×".join(map(str, layer.out_shape)), (layer.name, lines)
    assert nodes["input"] == ["input", "×".join(map(str, graph.input_shape))]
    clusters = expected_clusters(graph)
    assert {"features", "features.0", "classifier"} <= clusters
    # each frame carries its path: Graphviz as its label, the built-in layout as its tooltip (its label
    # is the path after its parent's, `branch_1`)
    assert clusters <= set(texts) | frame_titles(tmp_path / "net.svg")
    assert "net" in texts


def test_labels_show_the_key_attributes_and_the_output_shape():
    nodes = picture(build_graph(ZOO / "mobilenet_v3_small.arch")).nodes
    assert nodes["features.1.conv2d_1.conv"].lines == ["conv", "out=16 k=3×3 s=2 g=16", "16×56×56"]  # Table 2 row 2, depthwise
    assert nodes["features.0.batchnorm"].lines == ["batchnorm", "16×112×112"]
    assert nodes["classifier.1.dropout"].lines == ["dropout", "p=0.2", "1024"]
    assert nodes["features.1.squeeze_excite.multiply~11"].kind == "join" and nodes["features.1.squeeze_excite.multiply~11"].lines == ["×"]
    assert nodes["features.3.add~30"].lines == ["+"]
    assert nodes["@output"].lines == ["output", "1000"]


def test_clusters_nest_by_module_path():
    graph = build_graph(ZOO / "mobilenet_v3_small.arch")
    top = picture(graph).top
    seen = {}

    def walk(cluster, parent):
        for child in cluster.children:
            seen[child.path] = parent
            walk(child, child.path)

    walk(top, "")
    assert set(seen) == expected_clusters(graph)
    assert seen["features.1.squeeze_excite"] == "features.1" and seen["features.1"] == "features" and seen["features"] == ""
    assert "features.1.squeeze_excite.multiply~11" in next(c for c in _all(top) if c.path == "features.1.squeeze_excite").nodes


def _all(cluster):
    yield cluster
    for child in cluster.children:
        yield from _all(child)


# A small DOT reader: enough of the grammar to see that the text has the structure we meant to write.
TOKEN = re.compile(r'\s*(?:(?P<str>"(?:[^"\\]|\\.)*")'  # a quoted string, \" inside
                   r"|(?P<id>[A-Za-z_][A-Za-z_0-9.]*|-?\d+(?:\.\d+)?)"  # a bare word or number
                   r"|(?P<op>->|[{}\[\];=,]))", re.DOTALL)
KEYS = {"rankdir", "fontname", "fontsize", "labelloc", "nodesep", "ranksep", "label", "shape", "style", "margin",
        "arrowsize", "color", "tooltip", "width", "fixedsize", "fillcolor", "penwidth", "labeljust", "fontcolor"}


def tokens(dot: str) -> list[tuple[str, str]]:
    out, at = [], 0
    while at < len(dot.rstrip()):
        match = TOKEN.match(dot, at)
        assert match, f"cannot read the DOT at {dot[at:at + 40]!r}"
        kind = match.lastgroup
        out.append((kind, match.group(kind)))
        at = match.end()
    return out


def unquote(text: str) -> str:
    """A quoted DOT string as Graphviz shows it in a label."""
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), text[1:-1])


def read_dot(dot: str):
    """(node id -> attributes, edges, cluster labels); fails on anything out of place."""
    toks = tokens(dot)
    assert toks[:3] == [("id", "digraph"), ("str", '"archc"'), ("op", "{")] and toks[-1] == ("op", "}")
    depth, nodes, edges, clusters, i = 0, {}, [], [], 0
    while i < len(toks):
        kind, text = toks[i]
        if text == "{":
            depth += 1
        elif text == "}":
            depth -= 1
            assert depth >= 0
        if kind == "str" and i > 1:
            assert toks[i - 1][1] in ("{", "}", ";", "->"), f"a bare string at token {i}: {text}"
            if toks[i + 1][1] == "->":
                assert toks[i + 2][0] == "str" and toks[i + 3][1] in (";", "[")
                edges.append((unquote(text), unquote(toks[i + 2][1])))
                i += 2
            else:
                assert toks[i + 1][1] == "["
                nodes[unquote(text)], i = _attrs(toks, i + 1)
                continue
        if text == "subgraph":
            assert re.fullmatch(r"cluster_\d+", toks[i + 1][1]) and toks[i + 2][1] == "{"
            assert toks[i + 3][1] == "graph"
            attrs, i = _attrs(toks, i + 4)
            clusters.append(attrs["label"])
            depth += 1
            continue
        if text in ("graph", "node", "edge"):
            assert toks[i - 1][1] in ("{", ";")
            _, i = _attrs(toks, i + 1)
            continue
        i += 1
    assert depth == 0
    return nodes, edges, clusters


def _attrs(toks, i):
    assert toks[i][1] == "["
    attrs, i = {}, i + 1
    while toks[i][1] != "]":
        key, eq, value = toks[i:i + 3]
        assert key[1] in KEYS and eq[1] == "=" and value[0] in ("id", "str"), (key, eq, value)
        attrs[key[1]] = unquote(value[1]) if value[0] == "str" else value[1]
        i += 4 if toks[i + 3][1] == "," else 3
    assert toks[i + 1][1] == ";"
    return attrs, i + 2


def test_dot_text_is_what_was_meant(tmp_path):
    graph = build_graph(ZOO / "mobilenet_v3_small.arch")
    assert render(graph, tmp_path / "net.dot", title="t") == "none"
    nodes, edges, clusters = read_dot((tmp_path / "net.dot").read_text())
    assert set(nodes) == {"input", "@output", *graph.order}
    layer_edges = {(s, layer.name) for layer in graph.layers() for s in layer.inputs}
    assert set(edges) == layer_edges | {(graph.result, "@output")}
    assert sorted(clusters) == sorted(expected_clusters(graph))
    assert nodes["features.1.conv2d_1.conv"]["label"] == "conv\nout=16 k=3×3 s=2 g=16\n16×56×56"
    assert nodes["features.3.add~30"]["shape"] == "circle"


def test_dot_reads_with_pydot(tmp_path):
    pytest.importorskip("pydot")
    import networkx

    graph = build_graph(ZOO / "nin.arch")
    render(graph, tmp_path / "net.dot")
    read = networkx.nx_pydot.read_dot(tmp_path / "net.dot")
    assert {n.strip('"') for n in read.nodes} >= set(graph.order)


def test_aux_heads_are_dashed_and_joins_round():
    graph = build_graph(ZOO / "g.arch", text=INCEPTION_WITH_AUX)
    nodes, _, _ = read_dot(to_dot(graph))
    aux = [layer.name for layer in graph.layers() if layer.aux]
    assert aux and all("dashed" in nodes[name]["style"] for name in aux)
    assert "dashed" in nodes["@aux:aux1"]["style"]
    assert all("dashed" not in nodes[layer.name].get("style", "") for layer in graph.layers() if not layer.aux)
    joins = [layer.name for layer in graph.layers() if "~" in layer.name]
    assert len(joins) == 3 and all(nodes[name]["shape"] == "circle" for name in joins)
    svg = ET.fromstring(to_svg(picture(graph)))
    dashed = {g.find(SVG + "title").text for g in svg.iter(SVG + "g")
              if g.get("class") == "node" and "stroke-dasharray" in ET.tostring(g, encoding="unicode")}
    assert dashed == {*aux, "@aux:aux1"}


def _boxes(svg: str):
    """title -> (x0, y0, x1, y1) of the fallback's nodes and cluster frames."""
    root = ET.fromstring(svg)
    nodes, frames = {}, {}
    for g in root.iter(SVG + "g"):
        title = g.find(SVG + "title")
        shape = g.find(SVG + "rect") if g.find(SVG + "rect") is not None else g.find(SVG + "circle")
        if title is None or shape is None:
            continue
        if shape.tag == SVG + "circle":
            x, y, r = (float(shape.get(a)) for a in ("cx", "cy", "r"))
            box = (x - r, y - r, x + r, y + r)
        else:
            x, y, w, h = (float(shape.get(a)) for a in ("x", "y", "width", "height"))
            box = (x, y, x + w, y + h)
        (nodes if g.get("class") == "node" else frames)[title.text] = box
    return nodes, frames


def _overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _inside(a, b) -> bool:
    return b[0] <= a[0] and b[1] <= a[1] and a[2] <= b[2] and a[3] <= b[3]


@pytest.mark.parametrize("source", [*sorted(p.name for p in ZOO.glob("*.arch")), "inception"])
def test_fallback_layout_keeps_boxes_apart_and_frames_around_their_layers(source):
    """GoogLeNet's and Inception's branch frames overlapped, their labels clipped by the next frame."""
    graph = build_graph(ZOO / "g.arch", text=INCEPTION_WITH_AUX) if source == "inception" else build_graph(ZOO / source)
    nodes, frames = _boxes(to_svg(picture(graph, "t")))
    assert set(nodes) == {"input", "@output", *graph.order, *(f"@aux:{a}" for a in graph.aux)}
    assert set(frames) == expected_clusters(graph)
    names = sorted(nodes)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert not _overlap(nodes[a], nodes[b]), (a, b)
        for path, frame in frames.items():
            assert _inside(nodes[a], frame) == a.startswith(path + "."), (a, path)
    paths = sorted(frames)
    for i, a in enumerate(paths):
        for b in paths[i + 1:]:
            nested = b.startswith(a + ".")
            assert _inside(frames[b], frames[a]) if nested else not _overlap(frames[a], frames[b]), (a, b)


HOSTILE = ['x"];evil [label="pwned"]; "y', "a\\", "b\\N\\G\\l", "{c}|<d>", "e\nf", "g -> h", "ü ×", "\x00\x7f"]


def _hostile(graph: Graph) -> tuple[Graph, dict[str, str]]:
    """The graph with each layer's module path prefixed by a hostile section name."""
    rename = {name: f"{HOSTILE[i % len(HOSTILE)]}.{name}" for i, name in enumerate(graph.order)}
    rename["input"] = "input"
    hostile = Graph(graph.input_shape, result=rename[graph.result])
    for layer in graph.layers():
        hostile.add(replace(layer, name=rename[layer.name], inputs=[rename[n] for n in layer.inputs]))
    return hostile, rename


def test_hostile_names_stay_text_in_the_dot():
    graph, _ = _hostile(build_graph(ZOO / "mobilenet_v3_small.arch"))
    title = 'net"]; x [shape=star]; // \\N {<|>}'
    nodes, edges, clusters = read_dot(to_dot(graph, title))
    shown = {re.sub("[\n\x00\x7f]", "\ufffd", name) for name in graph.order}
    assert set(nodes) == {"input", "@output"} | shown
    assert len(edges) == sum(len(layer.inputs) for layer in graph.layers()) + 1
    assert {re.sub("[\n\x00\x7f]", "\ufffd", h) for h in HOSTILE} <= set(clusters)


@pytest.mark.parametrize("renderer", RENDERERS)
def test_hostile_names_and_file_name_stay_text_in_the_svg(tmp_path, renderer):
    graph, _ = _hostile(build_graph(ZOO / "nin.arch"))
    title = 'we"ird];{x}<y>|\\N & é'
    nodes, texts = read_svg(draw(graph, tmp_path, renderer, title=title))
    assert title in texts
    for hostile in HOSTILE[:7]:
        shown = hostile.replace("\n", "\ufffd")
        assert shown in texts  # a cluster label, drawn literally
        assert any(t in (shown, shown.replace("\\", "\\\\")) for t in (t.split(".")[0] for t in nodes))


@pytest.mark.parametrize("renderer", RENDERERS)
def test_a_hostile_file_path_and_aliases(tmp_path, renderer):
    odd = tmp_path / 'we"ird]; {x} <y> | \\N & é.arch'
    odd.write_text(r"""
block twice(n "#out\ ]; {<>} x='", k "k\N|" = 3):
    conv(n, k)
    relu()
    conv(n, k)

network odd(num_classes = 3)
input 3 x 16 x 16

features:
    | #out\ ]; {<>} x=' | operator |
    | 8                  | twice    |
""", encoding="utf-8")
    graph = build_graph(odd)
    out = draw(graph, tmp_path, renderer, title=odd.name)
    nodes, texts = read_svg(out)
    assert odd.name in texts and {"features.0.conv_0", "features.0.conv_1"} <= set(nodes)
    assert read_dot(to_dot(graph, odd.name))[0].keys() >= {"features.0.conv_0"}


def test_outputs_this_machine_cannot_write_are_usage_errors(tmp_path, monkeypatch):
    graph = build_graph(ZOO / "nin.arch")
    with pytest.raises(GraphUsageError, match="must end in .svg, .png or .dot"):
        render(graph, tmp_path / "net.pdf")
    with pytest.raises(GraphUsageError, match="PNG needs Graphviz's dot"):
        render(graph, tmp_path / "net.png", renderer="python")
    monkeypatch.setenv("ARCHC_NO_DOT", "1")
    with pytest.raises(GraphUsageError, match="PNG needs Graphviz's dot"):
        check_output("net.PNG")
    assert render(graph, tmp_path / "net.svg") == "python"  # the fallback, without being asked


@needs_dot
def test_graphviz_writes_png(tmp_path):
    out = draw(build_graph(ZOO / "nin.arch"), tmp_path, "dot", name="net.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_exit_codes(tmp_path):
    import os

    done = run_archc("graph", str(ZOO / "nin.arch"), "-o", str(tmp_path / "net.svg"), "--set", "num_classes=7")
    assert done.returncode == 0, done.stderr
    nodes, texts = read_svg(tmp_path / "net.svg")
    assert nodes["@output"] == ["output", "7"] and "nin.arch --set num_classes=7" in texts
    done = run_archc("graph", str(ZOO / "nin.arch"), "-o", str(tmp_path / "net.pdf"))
    assert done.returncode == 2 and "must end in .svg, .png or .dot" in done.stderr
    assert not (tmp_path / "net.pdf").exists()
    env = {**os.environ, "ARCHC_NO_DOT": "1"}
    done = run_archc("graph", str(ZOO / "nin.arch"), "-o", str(tmp_path / "net.png"), env=env)
    assert done.returncode == 2 and "PNG needs Graphviz's dot; write .svg or .dot" in done.stderr
    done = run_archc("graph", str(ZOO / "nin.arch"), "-o", str(tmp_path / "fallback.svg"), env=env)
    assert done.returncode == 0 and "without Graphviz" in done.stdout
    ET.parse(tmp_path / "fallback.svg")
    done = run_archc("graph", str(ZOO / "nin.arch"), "-o", str(tmp_path / "net.dot"), "--variant", "nope")
    assert done.returncode == 2 and "no variant 'nope'" in done.stderr
    bad = tmp_path / "bad.arch"
    bad.write_text("network x()\ninput 3 x 8 x 8\n\nf:\n    conv(4, 3)\n    bogus()\n")
    done = run_archc("graph", str(bad), "-o", str(tmp_path / "bad.svg"))
    assert done.returncode == 1 and "bad.arch:6:5: error" in done.stderr and "Traceback" not in done.stderr
    assert run_archc("graph", str(ZOO / "nin.arch")).returncode == 2  # -o is required
