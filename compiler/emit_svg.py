"""The built-in SVG renderer `archc graph` uses when Graphviz is not installed.

A plain layered layout: one row per topological generation (the input at the
top), each node under the mean of its inputs, rows pushed apart where block
clusters open and close. Edges to the next row are straight; an edge that
would cross a node (a residual skip, an SE gate) runs down a lane to the right
of everything it passes, inside the innermost cluster holding both its ends.
Clusters are the bounding boxes of their contents. Text is measured by a
fixed per-character width, so long labels get generous boxes, never clipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from xml.sax.saxutils import escape, quoteattr

import networkx

from ..dsl.source import printable
from .emit_graph import Cluster, Picture

FONT, LINE, CHAR = 11, 14, 6.7  # font size, line height, mean character width (px)
PAD_X, PAD_Y, MIN_W, JOIN_D = 10, 6, 90, 22  # inside a node box; a join's diameter
GAP_X, GAP_Y, LANE_GAP = 24, 20, 10  # between nodes, rows, lanes
C_PAD, C_LABEL = 8, 15  # a cluster's padding and the height of its label


@dataclass
class Box:
    x: float  # centre
    y: float
    w: float
    h: float

    @property
    def left(self):
        return self.x - self.w / 2

    @property
    def right(self):
        return self.x + self.w / 2

    @property
    def top(self):
        return self.y - self.h / 2

    @property
    def bottom(self):
        return self.y + self.h / 2


def _text_w(text: str, size: float = FONT) -> float:
    return len(text) * CHAR * size / FONT


def to_svg(pic: Picture) -> str:
    """The picture as a standalone SVG document.

    >>> from archc.compiler.check import build_graph
    >>> from archc.compiler.emit_graph import picture
    >>> from archc.compiler.program import library_dir
    >>> svg = to_svg(picture(build_graph(library_dir() / "nin.arch"), title="nin"))
    >>> svg.count('<g class="node">'), svg.count('<g class="cluster">')  # input, 30 layers, output; 6 blocks
    (32, 6)
    """
    graph = networkx.DiGraph()
    graph.add_nodes_from(pic.nodes)
    graph.add_edges_from((s, t) for s, t, _ in pic.edges)
    index = {n: i for i, n in enumerate(pic.nodes)}
    rows = [sorted(gen, key=index.__getitem__) for gen in networkx.topological_generations(graph)]
    row_of = {n: r for r, row in enumerate(rows) for n in row}
    chains = _chains(pic)
    size = {n: _size(node) for n, node in pic.nodes.items()}

    # Rows: top to bottom, with room above for the clusters that open there and below for those that close.
    spans: dict[str, tuple[int, int]] = {}
    for n, chain in chains.items():
        for path in chain:
            lo, hi = spans.get(path, (row_of[n], row_of[n]))
            spans[path] = (min(lo, row_of[n]), max(hi, row_of[n]))
    opens = [sum(1 for lo, _ in spans.values() if lo == r) for r in range(len(rows))]
    closes = [sum(1 for _, hi in spans.values() if hi == r) for r in range(len(rows))]
    heights = [max(size[n][1] for n in row) for row in rows]
    top, centre_y = 0.0, []
    for r in range(len(rows)):
        top += (GAP_Y + closes[r - 1] * C_PAD if r else 0) + opens[r] * (C_PAD + C_LABEL)
        centre_y.append(top + heights[r] / 2)
        top += heights[r]

    # Columns: each node under the mean of its inputs, the row centred on those wishes; then moved
    # clear of the frames of clusters open across this row that do not hold it, and of its neighbours.
    box: dict[str, Box] = {}
    extent: dict[str, tuple[float, float]] = {}  # cluster path -> its frame's sides, from the rows so far
    for r, row in enumerate(rows):
        want = {n: _mean([box[p].x for p in graph.predecessors(n)]) for n in row}
        row.sort(key=lambda n: (want[n], index[n]))
        xs = [want[row[0]]]
        for left, n in pairwise(row):
            xs.append(max(want[n], xs[-1] + _apart(left, n, size, chains)))
        shift = _mean([want[n] - x for n, x in zip(row, xs)])
        frames = sorted((e, p) for p, e in extent.items() if spans[p][1] >= r)
        x = {n: _clear(n, xs[i] + shift, size[n][0], frames, chains, extent) for i, n in enumerate(row)}
        pinned = {n for i, n in enumerate(row) if x[n] < xs[i] + shift}  # moved left of a frame: stays there
        row.sort(key=lambda n: (x[n], index[n]))
        for i in range(1, len(row)):
            left, n = row[i - 1], row[i]
            if n not in pinned:
                x[n] = max(x[n], x[left] + _apart(left, n, size, chains))
            else:  # its left neighbours make room instead
                for j in range(i - 1, -1, -1):
                    x[row[j]] = min(x[row[j]], x[row[j + 1]] - _apart(row[j], row[j + 1], size, chains))
        for n in row:
            box[n] = b = Box(x[n], centre_y[r], *size[n])
            for k, path in enumerate(chains[n]):
                margin = C_PAD * (len(chains[n]) - k)
                x0, x1 = extent.get(path, (b.left - margin, b.right + margin))
                x0 = min(x0, b.left - margin)
                extent[path] = (x0, max(x1, b.right + margin, x0 + _text_w(path, 10) + 2 * C_PAD))

    paths, lanes = _routes(pic, rows, row_of, box, chains)
    clusters: list[tuple[str, float, float, float, float, int]] = []
    _cluster_boxes(pic.top, box, lanes, clusters, 0)

    edges = [_edge(box[s], box[t], paths.get((s, t)), dashed) for s, t, dashed in pic.edges]
    nodes = [_node(pic.nodes[n], box[n]) for n in pic.nodes]
    frames = [_frame(*c) for c in sorted(clusters, key=lambda c: c[5])]  # outermost first
    xs = [b.left for b in box.values()] + [c[1] for c in clusters]
    x_max = max([b.right for b in box.values()] + [c[3] for c in clusters] + [x for x, *_ in lanes.values()])
    y_min = min([b.top for b in box.values()] + [c[2] for c in clusters])
    y_max = max([b.bottom for b in box.values()] + [c[4] for c in clusters])
    x_min, margin = min(xs), 16
    title_h = LINE * 2 if pic.title else 0
    width = max(x_max - x_min, _text_w(pic.title, 13)) + 2 * margin
    height = y_max - y_min + 2 * margin + title_h
    dx, dy = margin - x_min, margin + title_h - y_min
    head = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
         f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" '
         f'font-size="{FONT}">'),
        f"<title>{_esc(pic.title or 'network')}</title>",
        ('<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
         'orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#555555"/></marker></defs>'),
        '<rect width="100%" height="100%" fill="white"/>',
    ]
    if pic.title:
        head.append(f'<text x="{width / 2:.1f}" y="{margin + LINE:.1f}" text-anchor="middle" font-size="13">'
                    f"{_esc(pic.title)}</text>")
    body = [*(f[0] for f in frames), *edges, *(f[1] for f in frames), *nodes]  # labels over edges, nodes on top
    return "\n".join([*head, f'<g transform="translate({dx:.1f},{dy:.1f})">', *body, "</g>", "</svg>"]) + "\n"


def _clear(n: str, x: float, w: float, frames, chains, extent) -> float:
    """x moved out of the frames that do not hold n: towards the side where n's own cluster lies."""
    for (x0, x1), path in frames:
        if path in chains[n]:
            continue
        beside = [c for c in chains[n] if not path.startswith(c + ".")]  # n's clusters that are not path's
        half = w / 2 + C_PAD * len(beside) + GAP_X / 2  # with their frames' padding
        if x + half <= x0 or x - half >= x1:
            continue
        if beside and beside[0] in extent and sum(extent[beside[0]]) < x0 + x1:
            x = x0 - half
        else:
            x = x1 + half
    return x


def _apart(a: str, b: str, size, chains) -> float:
    """The distance between the centres of neighbours a and b: their half widths, a gap, the frames between."""
    borders = len(set(chains[a]) ^ set(chains[b]))
    return (size[a][0] + size[b][0]) / 2 + GAP_X + borders * C_PAD


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _esc(text: str) -> str:
    return escape(printable(text))


def _size(node) -> tuple[float, float]:
    if node.kind == "join":
        return JOIN_D, JOIN_D
    return max(MIN_W, max(_text_w(line) for line in node.lines) + 2 * PAD_X), len(node.lines) * LINE + 2 * PAD_Y


def _chains(pic: Picture) -> dict[str, list[str]]:
    """node id -> the paths of the clusters holding it, outermost first."""
    chains: dict[str, list[str]] = {n: [] for n in pic.nodes}

    def walk(c: Cluster, chain: list[str]):
        for n in c.nodes:
            chains[n] = chain
        for child in c.children:
            walk(child, chain + [child.path])

    walk(pic.top, [])
    return chains


def _blocked(x: float, y0: float, y1: float, rows, span: range, box, slope: float = 0.0) -> bool:
    """Whether the line from (x, y0) down to y1, leaning `slope` px per px, crosses a node of the rows in span."""
    for r in span:
        for n in rows[r]:
            o = box[n]
            at = x + slope * (o.y - y0)
            if y0 < o.y < y1 and o.left - 4 <= at <= o.right + 4:
                return True
    return False


def _routes(pic, rows, row_of, box, chains):
    """The edges that cannot be straight lines: (source, target) -> their SVG path, and
    (source, target) -> (lane x, innermost common cluster) for those routed down a lane.

    An edge that can drop straight down its source's column and turn to its
    target in the last gap does. Otherwise it runs down a lane, innermost lanes
    first: each right of every node, lane and cluster frame beside it, except
    the clusters that hold both its ends (it runs inside those; they widen).
    """
    bottom = [max(box[n].bottom for n in row) for row in rows]
    top = [min(box[n].top for n in row) for row in rows]
    paths: dict[tuple[str, str], str] = {}
    todo = []
    for s, t, _ in pic.edges:
        a, b, lo, hi = box[s], box[t], row_of[s], row_of[t]
        if hi - lo < 2 or not _blocked(a.x, a.bottom, b.top, rows, range(lo + 1, hi), box,
                                       (b.x - a.x) / max(b.top - a.bottom, 1e-9)):
            continue
        if not _blocked(a.x, a.bottom, bottom[hi - 1], rows, range(lo + 1, hi), box):
            paths[(s, t)] = f"M{a.x:.1f},{a.bottom:.1f} V{bottom[hi - 1] + 4:.1f} L{b.x:.1f},{b.top:.1f}"
            continue
        common = _common(chains[s], chains[t])
        todo.append((-len(common), hi - lo, s, t, common))
    lanes: dict[tuple[str, str], tuple[float, str]] = {}
    for *_, s, t, common in sorted(todo, key=lambda e: e[:2]):
        a, b, lo, hi = box[s], box[t], row_of[s], row_of[t]
        beside = [o.right for o in box.values() if o.bottom >= a.y and o.top <= b.y]
        beside += [x for (u, v), (x, _) in lanes.items() if box[u].y <= b.y and box[v].y >= a.y]
        frames: list = []
        _cluster_boxes(pic.top, box, lanes, frames, 0)
        beside += [x1 for path, _, f0, x1, f1, _ in frames if f1 >= a.y and f0 <= b.y and path not in common]
        x = max(beside) + LANE_GAP
        lanes[(s, t)] = (x, common[-1] if common else "")
        # Leave from the source's right side, or from below it when a node stands to its right; enter alike.
        out = f"M{a.right:.1f},{a.y:.1f} H{x:.1f}" if s == rows[lo][-1] else \
            f"M{a.x:.1f},{a.bottom:.1f} V{bottom[lo] + 5:.1f} H{x:.1f}"
        into = f" V{b.y:.1f} H{b.right:.1f}" if t == rows[hi][-1] else f" V{top[hi] - 5:.1f} H{b.x:.1f} V{b.top:.1f}"
        paths[(s, t)] = out + into
    return paths, lanes


def _common(a: list[str], b: list[str]) -> list[str]:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[:n]


def _cluster_boxes(c: Cluster, box, lanes, out: list, depth: int):
    """Bounding boxes (x0, y0, x1, y1) of c's nodes, its lanes and its child clusters; appends each child's frame."""
    xs0, ys0, xs1, ys1 = [], [], [], []
    for n in c.nodes:
        b = box[n]
        xs0.append(b.left), ys0.append(b.top), xs1.append(b.right), ys1.append(b.bottom)
    for x, owner in lanes.values():
        if owner == c.path:
            xs1.append(x)
    for child in c.children:
        x0, y0, x1, y1 = _cluster_boxes(child, box, lanes, out, depth + 1)
        x0, y0, x1, y1 = x0 - C_PAD, y0 - C_PAD - C_LABEL, x1 + C_PAD, y1 + C_PAD
        x1 = max(x1, x0 + _text_w(child.path, 10) + 2 * C_PAD)
        out.append((child.path, x0, y0, x1, y1, depth))
        xs0.append(x0), ys0.append(y0), xs1.append(x1), ys1.append(y1)
    return min(xs0), min(ys0), max(xs1), max(ys1)


def _frame(path: str, x0, y0, x1, y1, depth: int) -> tuple[str, str]:
    """The cluster's rectangle, and its label: drawn over the edges, on a patch of its fill."""
    fill = ("#f5f8fc", "#eef3f9", "#e7eef6")[depth % 3]
    frame = (f'<g class="cluster"><title>{_esc(path)}</title>'
             f'<rect x="{x0:.1f}" y="{y0:.1f}" width="{x1 - x0:.1f}" height="{y1 - y0:.1f}" rx="6" '
             f'fill="{fill}" stroke="#9aa7b8"/></g>')
    label = (f'<rect x="{x0 + 4:.1f}" y="{y0 + 2:.1f}" width="{_text_w(path, 10) + 4:.1f}" height="{C_LABEL - 3}" '
             f'fill="{fill}"/><text x="{x0 + 6:.1f}" y="{y0 + C_LABEL - 3:.1f}" font-size="10" fill="#4a5a70">'
             f'{_esc(path)}</text>')
    return frame, label


def _edge(a: Box, b: Box, path: str | None, dashed: bool) -> str:
    style = ' stroke-dasharray="5,3"' if dashed else ""
    d = path or f"M{a.x:.1f},{a.bottom:.1f} L{b.x:.1f},{b.top:.1f}"
    return f'<path d="{d}" fill="none" stroke="#555555" stroke-width="1.1"{style} marker-end="url(#arrow)"/>'


def _node(node, b: Box) -> str:
    dash = ' stroke-dasharray="5,3"' if node.dashed else ""
    head = f'<g class="node"><title>{_esc(node.id)}</title>'  # as Graphviz: the node's id, here its layer name
    if node.kind == "join":
        return (head + f'<circle cx="{b.x:.1f}" cy="{b.y:.1f}" r="{b.w / 2:.1f}" fill="white" stroke="#333333"{dash}/>'
                f'<text x="{b.x:.1f}" y="{b.y + 4:.1f}" text-anchor="middle" font-size="10">'
                f"{_esc(node.lines[0])}</text></g>")
    stroke = ' stroke-width="1.6"' if node.kind == "io" else ""
    parts = [head + f'<rect x="{b.left:.1f}" y="{b.top:.1f}" width="{b.w:.1f}" height="{b.h:.1f}" rx="5" '
             f'fill={quoteattr(node.fill)} stroke="#333333"{stroke}{dash}/>']
    for i, line in enumerate(node.lines):
        weight = ' font-weight="bold"' if i == 0 else ""
        parts.append(f'<text x="{b.x:.1f}" y="{b.top + PAD_Y + LINE * i + 11:.1f}" text-anchor="middle"{weight}>'
                     f"{_esc(line)}</text>")
    return "".join(parts) + "</g>"
