"""Table rows as the entries of an nn.Sequential: one line per row, and a row that
repeats as its first repeat (which strides) and a comprehension for the rest,
as torchvision's `_make_layer` does, where the rest are one expression of the
table's `index` (`i`). Used for a network's sections and for tables in blocks.
"""

from __future__ import annotations

from collections import ChainMap

from ..dsl.source import split_lines
from .emit_values import Context, EmitError
from .graph import Element, Instance, Layer
from .pyexpr import Cmp, IfElse, Lit, Name, PyExpr, binary, holds, names_in

MIN_LOOP = 2  # repeats after the first that are written as a comprehension rather than line by line


class LoopContext(Context):
    """The repeats of a row as the instances of a comprehension: `i` is the table's index. A value no
    expression of `i` gives cannot become a constructor argument, so the rows are written out instead;
    one the first repeat alone differs in (its input, its stride) is `a if i == first else b`."""

    def choose(self, values, candidates, hint, where=None) -> PyExpr:
        expr = self.try_choose(values, candidates)
        if expr is None:
            expr = self.split(values, candidates)
        if expr is None:
            raise _Unroll
        return expr

    def split(self, values, candidates) -> PyExpr | None:
        firsts = {}  # each instance's first index
        for env in self.envs:
            firsts[env["#"]] = min(firsts.get(env["#"], env["i"]), env["i"])
        first = [env["i"] == firsts[env["#"]] for env in self.envs]
        if all(first) or not any(first):
            return None
        parts = []
        for keep in (True, False):
            sub = Context([e for e, f in zip(self.envs, first) if f == keep], self.emission, self.taken)
            parts.append(sub.try_choose([v for v, f in zip(values, first) if f == keep], candidates))
        if None in parts:
            return None
        starts = set(firsts.values())
        test = Cmp("==", Name("i"), Lit(starts.pop())) if len(starts) == 1 else None
        if test is None:
            return None
        expr = IfElse(test, parts[0], parts[1])
        self.reads |= names_in(expr)
        return expr if holds(expr, self.envs, values) else None


class _Unroll(Exception):
    pass


def section_lines(emission, elements: list[Element]) -> list[tuple[str, str]]:
    """(constructor, comment) per entry of a section, repeats folded into comprehensions."""
    lines, i = [], 0
    while i < len(elements):
        first = elements[i]
        run = [first]
        while i + len(run) < len(elements) and first.source is not None \
                and elements[i + len(run)].source == first.source:
            run.append(elements[i + len(run)])
        lines.append((str(emission.element_ctor(first, emission.context())), emission.row_comment(first)))
        rest = run[1:]
        folded = _fold(emission, rest) if len(rest) >= MIN_LOOP else None
        if folded is not None:
            lines.append((folded, f"{len(rest)} more of the row above"))
            emission.chan = []  # what the last repeat made is no expression the comprehension's rows share
        else:
            lines += [(str(emission.element_ctor(e, emission.context())), emission.row_comment(e)) for e in rest]
        i += len(run)
    return lines


def _fold(emission, rest: list[Element]) -> str | None:
    """`*[Bottleneck(256, 64) for _ in range(2)]`, or with `i`, the repeats' index: None if they differ otherwise."""
    ctx = emission.context(loop=[{"#": 0, "i": e.index} for e in rest])
    try:
        ctor = emission.element_ctor(rest, ctx, loop=True)
    except _Unroll:
        return None
    start, stop = rest[0].index, rest[-1].index + 1
    if "i" in names_in(ctor) and start is not None and [e.index for e in rest] == list(range(start, stop)):
        bounds = f"{start}, {stop}" if start else f"{stop}"
        return f"*[{ctor} for i in range({bounds})]"
    if "i" in names_in(ctor):
        return None
    return f"*[{ctor} for _ in range({len(rest)})]"


def rows_source(writer, ctx: Context, stmt, traces: list, chan: list) -> tuple[list[tuple[str, str]], list]:
    """The entries of a block's table, for every instance at once (compiler/emit_classes.py): each row's
    first repeat, then the others as a comprehension over `i`, the table's index, when there are
    enough of them or their number differs between instances."""
    rows = sorted({row["row"] for trace in traces for row in trace or []})
    items, repeat_exprs, table = [], [], []
    for index in rows:  # each row's repeats, ahead: cells may read their total, `count`
        made = [next((r for r in trace or [] if r["row"] == index), None) for trace in traces]
        if any(m is None or "callee" not in m for m in made):
            raise EmitError("a table row that fails in some use of its block cannot be written as source",
                            *writer.where(stmt.span))
        counts = [len(m["paths"]) for m in made]
        repeat_cell = made[0].get("repeat_cell")
        written = writer.py(repeat_cell, _cell_scope(writer, None)) if repeat_cell is not None else None
        table.append((index, made, counts, ctx.choose(counts, [written], "repeats", writer.where(stmt.span))))
    total = [sum(t[2][n] for t in table) for n in range(len(ctx.envs))]
    count = ctx.choose(total, [_sum([t[3] for t in table])], "count", writer.where(stmt.span))
    for index, made, counts, repeat_expr in table:
        offset = _offset(ctx, [m["index"] for m in made], repeat_exprs)
        repeat_exprs.append(repeat_expr)
        comment = _row_text(writer, stmt, index)
        if min(counts) >= 1:  # the first repeat strides: a line of its own
            item, chan = _row_item(writer, ctx, stmt, made, [0] * len(made), chan, offset, count)
            items.append((str(item), comment))
            comment = ""
        rest = [(i, k) for i, n in enumerate(counts) for k in range(1 if min(counts) >= 1 else 0, n)]
        if not rest:
            continue
        loop_envs = [ChainMap({"i": made[i]["index"] + k}, ctx.envs[i]) for i, k in rest]
        loop = LoopContext(loop_envs, ctx.emission, ctx.taken, ctx.hoisted, ctx.recursive, ctx.reads)
        uniform = len(set(counts)) == 1
        try:
            if uniform and counts[0] - 1 < MIN_LOOP:
                raise _Unroll
            sub = [made[i] for i, _k in rest]
            item, chan = _row_item(writer, loop, stmt, sub, [k for _i, k in rest], chan, None, count)
            start = binary("+", offset, Lit(1 if min(counts) >= 1 else 0))
            stop = binary("+", offset, repeat_expr)
            var = "i" if "i" in names_in(item) else "_"
            bounds = f"{start}, {stop}" if not (isinstance(start, Lit) and start.value == 0) else f"{stop}"
            items.append((f"*[{item} for {var} in range({bounds})]", comment))
        except _Unroll:
            if not uniform:
                raise EmitError("a table row in a block repeats a different number of times in different uses "
                                "of the block, with values no expression of its index gives", *writer.where(stmt.span),
                                hint="give its cells as expressions of the block's parameters and `index`") from None
            for k in range(1, counts[0]):
                item, chan = _row_item(writer, ctx, stmt, made, [k] * len(made), chan, binary("+", offset, Lit(k)),
                                       count)
                items.append((str(item), comment))
                comment = ""
    return items, chan


def _row_item(writer, ctx: Context, stmt, made: list, repeats: list[int], chan: list, index, count):
    """One entry: what the row made at repeat `repeats[n]` in instance n, and the channels after it. `index`
    is the table's index there; None in a comprehension, where it is `i`."""
    graph = writer.graph
    nodes = [graph.nodes.get(m["paths"][k]) or graph.instances[m["paths"][k]] for m, k in zip(made, repeats)]
    cells = made[0].get("cells", {})
    scope = _cell_scope(writer, Name("i") if index is None else index, count)
    first = all(k == 0 for k in repeats)
    exprs = {name: writer.py(node, scope) for name, node in cells.items()
             if first or name not in ("s", "stride")}  # only the first repeat strides
    in_c = writer.channels(ctx, [_in_channels(n) for n in nodes], chan, stmt.span)
    if isinstance(nodes[0], Layer):
        from .emit_classes import _after_op, op_ctor

        ctor = op_ctor(ctx, nodes, exprs, in_c, writer.emission)
        return ctor, _after_op(nodes[0], ctor, chan, exprs, writer)
    ctor = writer.emission.block_ctor(ctx, nodes, exprs, in_c, writer.where(stmt.span))
    return ctor, ([a for a in ctor.args[1:]] + [v for _k, v in ctor.kwargs] + chan)[:8]


def _offset(ctx: Context, indices: list[int], previous: list) -> PyExpr:
    """The table's index at a row's first repeat: the sum of the rows above's repeats."""
    return ctx.choose(indices, [_sum(previous)], "offset")


def _sum(exprs: list) -> PyExpr:
    total: PyExpr = Lit(0)
    for expr in exprs:
        total = binary("+", total, expr)
    return total


def repeat_source(writer, s, ctx: Context, owner: str, var: str, ind: int, chan: list, plain: bool) -> list:
    """`repeat n:` in a block: an nn.Sequential of its iterations, a comprehension over `i` (the body's
    `index`) where they are many or their number differs between instances."""
    graph = writer.graph
    traces = writer.trace(ctx, s.key)
    paths = [t["paths"] if t else [] for t in traces]
    counts = [len(p) for p in paths]
    target = f"{owner}.{s.module}"
    count = ctx.choose(counts, [writer.py(s.count)], "repeats", writer.where(s.span))
    node = lambda path: graph.nodes.get(path) or graph.instances[path]  # noqa: E731
    items = []
    if len(set(counts)) == 1 and counts[0] <= MIN_LOOP:
        for i in range(counts[0]):
            item, chan = _repeat_item(writer, ctx, s, [node(p[i]) for p in paths], chan, Lit(i))
            items.append(str(item))
    elif any(counts):
        pairs = [(n, i) for n, c in enumerate(counts) for i in range(c)]
        loop = LoopContext([ChainMap({"i": i}, ctx.envs[n]) for n, i in pairs], ctx.emission, ctx.taken, ctx.hoisted,
                           ctx.recursive, ctx.reads)
        try:
            item, chan = _repeat_item(writer, loop, s, [node(paths[n][i]) for n, i in pairs], chan, Name("i"))
        except _Unroll:
            raise EmitError("a repeat whose iterations differ in ways no expression of `index` says cannot be "
                            "written as source yet", *writer.where(s.span)) from None
        items.append(f"*[{item} for {'i' if 'i' in names_in(item) else '_'} in range({count})]")
    writer.line(writer.init, ind, f"{target} = nn.Sequential(" + ("" if items else ")"))
    if items:
        for item in items:
            writer.line(writer.init, ind + 1, f"{item},")
        writer.line(writer.init, ind, ")")
    if not plain:
        writer.line(writer.fwd, ind, f"{var} = {target}({var})")
    return chan


def _repeat_item(writer, ctx: Context, s, nodes: list, chan: list, index: PyExpr):
    """One iteration's constructor, for each instance (and iteration, in a comprehension): the channels
    may grow by one of the call's arguments each time (`in_c + i * growth`, DenseNet)."""
    scope = _cell_scope(writer, index)
    call_stmt = s.body[0] if s.template is None else None
    args = [writer.py(a, scope) for a in call_stmt.call.args] + \
        [writer.py(k.value, scope) for k in call_stmt.call.kwargs] if call_stmt is not None else []
    grown = [binary("+", c, binary("*", index, a)) for c in chan[:2] if c is not None and not isinstance(c, tuple)
             for a in args if a is not None] if isinstance(index, Name) else []
    if call_stmt is None:  # the body's own template: its class takes the channels (and what it cannot compute)
        in_c = writer.channels(ctx, [_in_channels(n) for n in nodes], list(chan), s.span)
        ctor = writer.emission.block_ctor(ctx, nodes, {}, in_c, writer.where(s.span))
        return ctor, [v for _k, v in ctor.kwargs] + list(chan)
    return writer.construct(call_stmt, ctx, nodes, writer.trace(ctx, call_stmt.key), grown + list(chan), scope)


def _cell_scope(writer, index, count=None):
    """Names in a block table's cells: `index` is the table's index (`i` in a comprehension), `count` its total."""
    from .emit_classes import Scope

    extra = {"index": index, "count": count}
    return Scope(writer, {k: v for k, v in extra.items() if v is not None})


def _row_text(writer, stmt, index: int) -> str:
    row = stmt.table.rows[index]
    text = split_lines(writer.graph.program.sources.get(writer.template.file, ""))
    from .emit_source import row_text

    return row_text(text[row.span.line - 1]) if 0 < row.span.line <= len(text) else ""


def _in_channels(node) -> int:
    return node.in_shapes[0][0] if isinstance(node, Layer) else node.in_shape[0]


__all__ = ["LoopContext", "rows_source", "section_lines", "Lit", "Name", "Instance"]
