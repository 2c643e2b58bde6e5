"""The built-in SVG renderer `archc graph` uses when Graphviz is not installed.

A nested box layout: each block instance (a cluster) is laid out on its own,
innermost first, as rows of its items — its own layers and its child
clusters, each child a box of the size its layout gave — and then stands in
its parent as one item. A row holds the items whose inputs are all in the rows
above (a longest-path layering of the items), side by side in the order the
network declares them (concat branches 0, 1, 2, … from left to right), each
under the mean of its inputs. Frames are the boxes themselves, so sibling
frames never overlap and a frame holds exactly its own layers. A frame's
label is its path after its parent's (`branch_1`, `features.3`); the whole
path is its tooltip.

Edges between the rows of one cluster are straight unless that would cross a
node; then they drop down their source's column and turn to the target in the
last gap (a concat branch), or, where that crosses a node too (a residual
skip, an SE gate), run down a lane at the right of everything they pass,
inside the innermost cluster holding both ends, which widens for it. Text is measured by a fixed per-character width, so labels get
generous boxes, never clipped.
"""

from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr

import networkx

from ..dsl.record import Record
from ..dsl.source import printable
from .emit_graph import Cluster, Picture

FONT, LINE, CHAR = 11, 14, 6.7  # font size, line height, mean character width (px)
PAD_X, PAD_Y, MIN_W, JOIN_D = 10, 6, 90, 22  # inside a node box; a join's diameter
GAP_X, GAP_Y, LANE_GAP = 24, 26, 12  # between items, rows, lanes
C_PAD, C_LABEL, C_FONT = 8, 15, 10  # a cluster's padding, the height and font size of its label


class Box(Record, frozen=False):
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

    def moved(self, dx: float, dy: float) -> Box:
        return Box(self.x + dx, self.y + dy, self.w, self.h)


class Frame(Record, frozen=False):
    path: str
    label: str
    x0: float
    y0: float
    x1: float
    y1: float
    depth: int

    def moved(self, dx: float, dy: float) -> Frame:
        return Frame(self.path, self.label, self.x0 + dx, self.y0 + dy, self.x1 + dx, self.y1 + dy, self.depth)


class Block(Record, frozen=False):
    """A laid-out cluster: its size and, relative to its top left corner, its nodes, the frames inside
    it (its own included) and the routes of the edges that run down its lanes."""

    w: float = 0.0
    h: float = 0.0
    nodes: dict[str, Box] = {}
    frames: list[Frame] = []
    routes: dict[tuple[str, str], list[tuple[float, float]]] = {}

    def add(self, other: Block, dx: float, dy: float) -> None:
        self.nodes.update((n, b.moved(dx, dy)) for n, b in other.nodes.items())
        self.frames += [f.moved(dx, dy) for f in other.frames]
        self.routes.update((e, [(x + dx, y + dy) for x, y in points]) for e, points in other.routes.items())


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
    layout = _Layout(pic)
    top = layout.block(pic.top, None, -1)
    margin, title_h = 16, (LINE * 2 if pic.title else 0)
    width = max(top.w, _text_w(pic.title, 13)) + 2 * margin
    height = top.h + 2 * margin + title_h
    edges = [_edge(top.nodes[s], top.nodes[t], top.routes.get((s, t)), dashed) for s, t, dashed in pic.edges]
    nodes = [_node(pic.nodes[n], top.nodes[n]) for n in pic.nodes]
    frames = [_frame(f) for f in sorted(top.frames, key=lambda f: f.depth)]  # outermost first
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
    return "\n".join([*head, f'<g transform="translate({margin:.1f},{margin + title_h:.1f})">', *body, "</g>",
                      "</svg>"]) + "\n"


class _Layout:
    def __init__(self, pic: Picture):
        self.pic = pic
        self.order = {n: i for i, n in enumerate(pic.nodes)}  # declaration (build) order
        self.preds: dict[str, list[str]] = {n: [] for n in pic.nodes}
        for s, t, _ in pic.edges:
            self.preds[t].append(s)
        clustered = set(pic.cluster_of())
        self.loose = [n for n in pic.nodes if n not in clustered]  # input, outputs: items of the top

    def block(self, cluster: Cluster, parent: str | None, depth: int) -> Block:
        """Lay out `cluster` (children first) as a block whose origin is its frame's top left corner."""
        items: list[tuple[str, Block | None]] = [(n, None) for n in cluster.nodes]
        if parent is None:
            items += [(n, None) for n in self.loose]
        owner: dict[str, int] = {}  # node id -> the index of the item holding it
        for child in cluster.children:
            inner = self.block(child, cluster.path, depth + 1)
            items.append((child.path, inner))
        for i, (key, inner) in enumerate(items):
            for n in (inner.nodes if inner is not None else (key,)):
                owner[n] = i
        first = [min(self.order[n] for n in (inner.nodes if inner else (key,))) for key, inner in items]
        by_order = sorted(range(len(items)), key=first.__getitem__)
        rows = self._rows(by_order, owner)
        out, y = Block(), 0.0
        for row in rows:
            y = self._place_row(row, items, out, y)
        self._route(out, owner, items)
        return self._frame(out, cluster, parent, depth)

    def _rows(self, by_order: list[int], owner: dict[str, int]) -> list[list[int]]:
        """The items in rows: each below every item it takes an input from (longest path)."""
        graph = networkx.DiGraph()
        graph.add_nodes_from(by_order)
        for t, sources in self.preds.items():
            for s in sources:
                if s in owner and t in owner and owner[s] != owner[t]:
                    graph.add_edge(owner[s], owner[t])
        try:
            ordered = list(networkx.lexicographical_topological_sort(graph, key=by_order.index))
        except networkx.NetworkXUnfeasible:  # items that feed each other: one row each, in declaration order
            return [[i] for i in by_order]
        level: dict[int, int] = {}
        for i in ordered:
            level[i] = max((level[p] + 1 for p in graph.predecessors(i)), default=0)
        rows: list[list[int]] = [[] for _ in range(max(level.values(), default=-1) + 1)]
        for i in by_order:
            rows[level[i]].append(i)
        return rows

    def _place_row(self, row: list[int], items, out: Block, y: float) -> float:
        """Put a row's items side by side, each under the mean of its inputs; returns the next row's top."""
        sizes = [(_size(self.pic.nodes[key]) if inner is None else (inner.w, inner.h)) for key, inner in
                 (items[i] for i in row)]
        wants = []  # where each item's centre would put the nodes taking inputs from the rows above under them
        for k, i in enumerate(row):
            key, inner = items[i]
            inside = inner.nodes if inner is not None else {key: Box(sizes[k][0] / 2, 0, 0, 0)}
            offsets = [out.nodes[p].x - (box.x - sizes[k][0] / 2) for n, box in inside.items()
                       for p in self.preds[n] if p in out.nodes]
            wants.append(sum(offsets) / len(offsets) if offsets else None)
        xs: list[float] = []
        for k, (w, _) in enumerate(sizes):
            want = wants[k] if wants[k] is not None else (xs[-1] + (sizes[k - 1][0] + w) / 2 + GAP_X if xs else w / 2)
            xs.append(max(want, xs[-1] + (sizes[k - 1][0] + w) / 2 + GAP_X) if xs else want)
        wanted = [(x, w) for x, w in zip(xs, wants) if w is not None]
        shift = sum(w - x for x, w in wanted) / len(wanted) if wanted else 0.0
        height = max(h for _, h in sizes)
        for k, i in enumerate(row):
            key, inner = items[i]
            w, h = sizes[k]
            x = xs[k] + shift
            if inner is None:
                out.nodes[key] = Box(x, y + h / 2, w, h)
            else:
                out.add(inner, x - w / 2, y)
        return y + height + GAP_Y

    def _route(self, out: Block, owner: dict[str, int], items) -> None:
        """Lanes for the edges between this block's items whose straight line would cross a node."""
        lanes: list[tuple[float, float, float]] = []  # x, top, bottom of each lane taken
        boxes = list(out.nodes.items())
        for s, t, _ in self.pic.edges:
            if s not in owner or t not in owner or owner[s] == owner[t]:
                continue
            a, b = out.nodes[s], out.nodes[t]
            if not _crosses([(a.x, a.bottom), (b.x, b.top)], boxes, (s, t)):
                continue
            drop = [(a.x, a.bottom), (a.x, b.top - GAP_Y / 2), (b.x, b.top)]  # down its own column, then across
            if not _crosses(drop, boxes, (s, t)):
                out.routes[(s, t)] = drop
                continue
            y0, y1 = min(a.y, b.y), max(a.y, b.y)  # upwards only where items feed each other (one row each)
            beside = [a.right, b.right] + [box.right for _, box in boxes if box.bottom >= y0 and box.top <= y1]
            beside += [f.x1 for f in out.frames if f.y1 >= y0 and f.y0 <= y1]
            beside += [x for x, top, bottom in lanes if bottom >= y0 and top <= y1]
            x = max(beside) + LANE_GAP
            lanes.append((x, y0, y1))
            out.routes[(s, t)] = min(_candidates(a, b, x), key=lambda p: _crosses(p, boxes, (s, t)))

    def _frame(self, out: Block, cluster: Cluster, parent: str | None, depth: int) -> Block:
        """Normalise the block to start at (0, 0), with its frame's padding and label when it is a cluster."""
        xs0 = [b.left for b in out.nodes.values()] + [f.x0 for f in out.frames]
        xs1 = [b.right for b in out.nodes.values()] + [f.x1 for f in out.frames]
        xs1 += [max(x for x, _ in points) for points in out.routes.values()]
        ys1 = [b.bottom for b in out.nodes.values()] + [f.y1 for f in out.frames]
        x0, x1, y1 = min(xs0, default=0.0), max(xs1, default=0.0), max(ys1, default=0.0)
        if parent is None:
            moved = Block()
            moved.add(out, -x0, 0)
            moved.w, moved.h = x1 - x0, y1
            return moved
        label = _label(cluster.path, parent)
        width = max(x1 - x0, _text_w(label, C_FONT) + 4) + 2 * C_PAD
        dx = C_PAD + (width - 2 * C_PAD - (x1 - x0)) / 2 - x0
        moved = Block()
        moved.add(out, dx, C_PAD + C_LABEL)
        moved.w, moved.h = width, y1 + 2 * C_PAD + C_LABEL
        moved.frames.append(Frame(cluster.path, label, 0, 0, moved.w, moved.h, depth))
        return moved


def _label(path: str, parent: str) -> str:
    """The path after its parent's; with the parent's last part when it is only a number (`features.3`)."""
    tail = path[len(parent) + 1:] if parent and path.startswith(parent + ".") else path
    if tail[:1].isdigit() and parent:
        tail = parent.rsplit(".", 1)[-1] + "." + tail
    return tail


def _candidates(a: Box, b: Box, x: float) -> list[list[tuple[float, float]]]:
    """Routes from a down a lane at x to b: leaving a's side or its bottom, entering b's side or its top."""
    outs = [[(a.right, a.y)], [(a.x, a.bottom), (a.x, a.bottom + GAP_Y / 3)]]
    ins = [[(b.right, b.y)], [(b.x, b.top - GAP_Y / 3), (b.x, b.top)]]
    return [o + [(x, o[-1][1]), (x, i[0][1])] + i for o in outs for i in ins]


def _crosses(points, boxes, ends) -> int:
    """How many node boxes (other than the edge's ends) the polyline through `points` crosses."""
    hits = 0
    for name, box in boxes:
        if name in ends:
            continue
        x0, y0, x1, y1 = box.left - 3, box.top - 3, box.right + 3, box.bottom + 3
        if any(_segment_hits((p, q), (x0, y0, x1, y1)) for p, q in zip(points, points[1:])):
            hits += 1
    return hits


def _segment_hits(segment, rect) -> bool:
    """Whether the segment meets the rectangle (Liang–Barsky clipping)."""
    (px, py), (qx, qy) = segment
    x0, y0, x1, y1 = rect
    dx, dy, lo, hi = qx - px, qy - py, 0.0, 1.0
    for p, q in ((-dx, px - x0), (dx, x1 - px), (-dy, py - y0), (dy, y1 - py)):
        if p == 0:
            if q < 0:
                return False
        else:
            r = q / p
            if p < 0:
                lo = max(lo, r)
            else:
                hi = min(hi, r)
            if lo > hi:
                return False
    return True


def _esc(text: str) -> str:
    return escape(printable(text))


def _size(node) -> tuple[float, float]:
    if node.kind == "join":
        return JOIN_D, JOIN_D
    return max(MIN_W, max(_text_w(line) for line in node.lines) + 2 * PAD_X), len(node.lines) * LINE + 2 * PAD_Y


def _frame(f: Frame) -> tuple[str, str]:
    """The cluster's rectangle, and its label: drawn over the edges, on a patch of its fill."""
    fill = ("#f5f8fc", "#eef3f9", "#e7eef6")[f.depth % 3]
    frame = (f'<g class="cluster"><title>{_esc(f.path)}</title>'
             f'<rect x="{f.x0:.1f}" y="{f.y0:.1f}" width="{f.x1 - f.x0:.1f}" height="{f.y1 - f.y0:.1f}" rx="6" '
             f'fill="{fill}" stroke="#9aa7b8"/></g>')
    label = (f'<rect x="{f.x0 + 4:.1f}" y="{f.y0 + 2:.1f}" width="{_text_w(f.label, C_FONT) + 4:.1f}" '
             f'height="{C_LABEL - 3}" fill="{fill}"/><text x="{f.x0 + 6:.1f}" y="{f.y0 + C_LABEL - 3:.1f}" '
             f'font-size="{C_FONT}" fill="#4a5a70">{_esc(f.label)}</text>')
    return frame, label


def _edge(a: Box, b: Box, route, dashed: bool) -> str:
    style = ' stroke-dasharray="5,3"' if dashed else ""
    points = route or [(a.x, a.bottom), (b.x, b.top)]
    d = "M" + " L".join(f"{x:.1f},{y:.1f}" for x, y in points)
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
