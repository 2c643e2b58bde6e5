"""archc graph's pictures as a reader sees them (issue 15): concat branches in their order, frame
labels that fit their frames, short numbers, and networks too large for one picture drawn a block
instance per node (--depth), with what Graphviz says passed on. The pictures were also looked at,
rendered to PNG (rsvg-convert): GoogLeNet, Inception v3, ResNet, MobileNetV3, EfficientNet-B7."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest
from archc.compiler.check import build_graph
from archc.compiler.emit_graph import (
    MAX_RANKS,
    _ranks,
    fitting,
    nesting,
    picture,
    render,
)
from archc.compiler.emit_svg import C_FONT, _text_w, to_svg
from conftest import ZOO, run_archc
from test_graph import RENDERERS, SVG, needs_dot


def _first_x(svg_path) -> dict[str, float]:
    """node id -> the x of its first text, in either renderer's SVG."""
    root = ET.parse(svg_path).getroot()
    found = {}
    for g in root.iter(SVG + "g"):
        if g.get("class") == "node":
            text = next(g.iter(SVG + "text"), None)
            if text is not None:
                found[g.find(SVG + "title").text] = float(text.get("x"))
    return found


@pytest.mark.parametrize("renderer", RENDERERS)
@pytest.mark.parametrize("file", ["googlenet.arch", "inception_v3.arch"])
def test_concat_branches_are_drawn_in_their_order(tmp_path, renderer, file):
    """Branches came out 0, 3, 2, 1 (the old layout) and 0, 2, 1, 3 (Graphviz's crossing minimisation)."""
    out = tmp_path / "net.svg"
    render(build_graph(ZOO / file), out, renderer=renderer)
    x = _first_x(out)
    modules = sorted({re.sub(r"\.branch_\d+\..*", "", n) for n in x if re.search(r"\.branch_\d+\.", n)})
    assert len(modules) >= 9
    for module in modules:
        if any(re.search(r"\.branch_\d+\..*\.branch_", n) for n in x if n.startswith(module + ".")):
            continue  # an inner concat's module: its own branches are checked on their own
        firsts = []
        for k in range(8):
            inside = [v for n, v in x.items() if n.startswith(f"{module}.branch_{k}.")]
            if not inside:
                break
            firsts.append(min(inside))
        assert firsts == sorted(firsts) and len(firsts) >= 3, (module, firsts)


@pytest.mark.parametrize("file", ["googlenet.arch", "inception_v3.arch", "mobilenet_v3_small.arch"])
def test_frame_labels_are_short_and_fit_their_frames(file):
    root = ET.fromstring(to_svg(picture(build_graph(ZOO / file))))
    frames = {}
    for g in root.iter(SVG + "g"):
        if g.get("class") == "cluster":
            rect = g.find(SVG + "rect")
            frames[g.find(SVG + "title").text] = float(rect.get("width"))
    labels = [t.text for t in root.iter(SVG + "text") if t.get("fill") == "#4a5a70"]  # the frames' labels
    assert len(labels) == len(frames)
    for path, width in frames.items():
        assert any(path.endswith(label) for label in labels), path
    assert all(not label.startswith("features.4.branch") for label in labels)  # `branch_1` under features.4
    if file == "googlenet.arch":
        assert {"features.4", "branch_0", "branch_3", "basic_conv_1"} <= set(labels)
    for label in labels:
        owner = max((w for p, w in frames.items() if p.endswith(label)), default=0)
        assert _text_w(label, C_FONT) < owner


def test_float_attributes_show_four_significant_digits():
    """EfficientNet-B7's stochastic depth read p=0.0036363636363636364."""
    lines = {line for node in picture(build_graph(ZOO / "efficientnet.arch", variant="b7")).nodes.values()
             for line in node.lines if line.startswith("p=")}
    assert "p=0.003636" in lines and "p=0.2" not in lines
    assert all(len(re.sub(r"^p=0\.0*", "", line)) <= 4 for line in lines), sorted(lines)


def test_depth_draws_a_node_per_block_instance():
    graph = build_graph(ZOO / "resnet.arch")
    pic = picture(graph, depth=1)
    blocks = [n for n in pic.nodes if n.startswith("features.")]
    assert blocks == [f"features.{i}" for i in range(10)]
    layers = [layer for layer in graph.layers() if layer.name.startswith("features.2.")]
    node = pic.nodes["features.2"]
    assert node.lines[0] == "features.2" and node.lines[-1] == "64×56×56"
    assert f"{len(layers)} layers, {sum(l.param_count for l in layers):,} params" in node.lines
    assert node.lines[1].startswith("|")  # its table row
    assert ("features.1", "features.2", False) in pic.edges and ("features.2", "features.2", False) not in pic.edges
    assert [c.path for c in pic.top.children] == ["features", "classifier"]
    assert nesting(graph) == 4 and len(picture(graph, depth=4).nodes) == len(picture(graph).nodes)  # a shortcut's conv_bn


def test_a_network_too_large_for_one_picture_is_drawn_at_a_depth_that_fits():
    """Graphviz drew EfficientNet-B7 as a 140×32767 px strip, its scaling warning swallowed."""
    graph = build_graph(ZOO / "efficientnet.arch", variant="b7")
    assert _ranks(picture(graph)) > MAX_RANKS
    pic, note = fitting(graph)
    assert _ranks(pic) <= MAX_RANKS
    assert note == ("864 layers are too many for one readable picture: block instances nested more than 1 deep are "
                    "drawn as one node each (--depth 1); --depth 3 draws every layer")
    assert fitting(build_graph(ZOO / "googlenet.arch"))[1] is None
    assert fitting(graph, depth=3)[1] is None  # as asked


def test_graph_depth_on_the_command_line(tmp_path):
    done = run_archc("graph", str(ZOO / "efficientnet.arch"), "--variant", "b7", "-o", str(tmp_path / "b7.svg"))
    assert done.returncode == 0 and "archc: note: 864 layers are too many" in done.stderr
    done = run_archc("graph", str(ZOO / "nin.arch"), "--depth", "1", "-o", str(tmp_path / "nin.svg"))
    assert done.returncode == 0 and "note" not in done.stderr
    assert "features.0" in _first_x(tmp_path / "nin.svg")
    assert run_archc("graph", str(ZOO / "nin.arch"), "--depth", "x", "-o", str(tmp_path / "n.svg")).returncode == 2


@needs_dot
def test_graphviz_warnings_are_passed_on(tmp_path):
    done = run_archc("graph", str(ZOO / "efficientnet.arch"), "--variant", "b7", "--depth", "3",
                     "-o", str(tmp_path / "b7.png"), timeout=300)
    assert done.returncode == 0, done.stderr
    assert re.search(r"archc: note: Graphviz: .*too large.*Scaling", done.stderr), done.stderr
