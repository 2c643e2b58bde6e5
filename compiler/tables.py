"""Tables: bind each row's cells to a call, the way the paper's columns read.

The header names the columns. Some headings have a role (the operator, the
input/output size assertions, the repeat count, a resolution, the paper's own
params/ops figures, labels); every other column binds by name to a parameter
of the row's block, or to a parameter that lists the heading as an alias
(`out "#out"`). The operator cell names the block and may add a kernel
(`3x3`, `k5x5`, `7×7/2` with its stride) and flags (`NBN`). See docs/language.md.
"""

from __future__ import annotations

import re

from ..dsl import ast
from ..dsl.diagnostics import did_you_mean
from .cells import disagrees
from .evaluate import CompileError, Env, Ref, evaluate
from .graph import Tensor
from .ops import MAX_DIM, OPS

MAX_REPEAT = 10_000

ROLES = {
    "operator": "op", "op": "op", "operator type": "op", "type": "op", "block": "op",
    "input": "input", "input size": "input", "in": "input",
    "output": "output", "output size": "output",
    "resolution": "resolution", "resolution hxw": "resolution", "input resolution": "resolution",
    "n": "repeat", "layers": "repeat", "repeat": "repeat", "repeats": "repeat", "x": "repeat",
    "params": "params", "parameters": "params",
    "ops": "ops", "macs": "ops", "mult-adds": "ops",
    "patch size/stride": "kernel", "patch size / stride": "kernel", "kernel": "kernel", "k/s": "kernel",
    "kernel/stride": "kernel", "patch size": "kernel",
    "stage": "label", "layer name": "label", "name": "label", "layer": "label", "": "label", "depth": "label",
}


def normalize(heading: str) -> str:
    text = heading.strip().lower().replace("×", "x").replace("²", "")
    text = re.sub(r"\s+", " ", text).lstrip("#").strip()
    return text


def _stride_param(names: list[str]) -> str | None:
    return next((n for n in ("s", "stride") if n in names), None)


def _kernel_param(names: list[str]) -> str | None:
    return next((n for n in ("k", "kernel") if n in names), None)


def run_table(el, stmt, x, env: Env, site, where):
    table: ast.Table = stmt.table
    headings = [normalize(h.text) for h in table.header]
    roles = [ROLES.get(h, "param") for h in headings]
    if "op" not in roles:
        raise CompileError("E203", "this table has no operator column", table.header[0].span,
                           hint="name one column 'operator' (or 'op', 'type', 'block')")
    where_map = {k.name: k for k in where}
    resolutions = _resolutions(table, roles, env)
    repeats = _repeats(el, table, headings, roles, env, where_map)
    blocks = {"done": 0, "count": sum(repeats)}  # `index` and `count` in cells (EfficientNet's stochastic depth)
    rows: list[dict] = []  # what each row made, for the instance's trace (a table in a block)
    if site.frame is not None:
        site = site.container(stmt.module)  # in a block, the rows are one nn.Sequential
    for index, row in enumerate(table.rows):
        cells = row.cells
        if len(cells) != len(headings):
            el.report(CompileError("E203", f"this row has {len(cells)} cells, the header {len(headings)}", row.span), site.file)
            continue
        made = {"row": index, "paths": [], "index": blocks["done"]}
        try:
            x = _run_row(el, stmt, row, index, headings, roles, x, env, site, where_map, resolutions, blocks, made)
        except CompileError as error:
            el.report(error, site.file)
            x = None
        rows.append(made)
        blocks["done"] += repeats[index]
    site.note(stmt.key, rows)
    return x


def _repeats(el, table, headings, roles, env: Env, where_map) -> list[int]:
    """Each row's repeat count, ahead of the rows, so that cells can use `count`."""
    counts = []
    for row in table.rows:
        n = 1
        if "repeat" in roles and len(row.cells) == len(roles):
            cell = row.cells[roles.index("repeat")]
            try:
                if cell.state == "value":
                    n = _transform(el, where_map, [headings[roles.index("repeat")], "repeat"], _value(cell, env), env,
                                   cell, ahead=True)
            except CompileError:
                pass  # reported when the row runs
        counts.append(n if isinstance(n, int) and not isinstance(n, bool) and 0 <= n <= MAX_REPEAT else 1)
    return counts


def _run_row(el, stmt, row, index, headings, roles, x, env, site, where_map, resolutions, blocks, made):
    table = stmt.table
    cells = row.cells
    op_cell = cells[roles.index("op")]
    if op_cell.span.line == 0:  # an empty cell has no token to point at: point at the row
        op_cell = op_cell.model_copy(update={"span": row.span})
    callee, extras = _operator(op_cell, env)
    for role, cell in zip(roles, cells):
        if role == "kernel" and cell.state == "value":  # GoogLeNet's "patch size/stride": 7×7/2, or just 3
            atoms = [a for part in cell.parts for a in part]
            if len(atoms) == 1 and atoms[0].kind == "num":
                extras["@k"] = (atoms[0], _value(cell, env))
            else:
                extras.update(_operator_extras(atoms))
    fixed = resolve_extras(el, callee, extras)
    names = _param_names(el, callee)
    repeat = 1
    if "repeat" in roles and cells[roles.index("repeat")].state == "value":
        cell = cells[roles.index("repeat")]
        repeat = _transform(el, where_map, [headings[roles.index("repeat")], "repeat"], _value(cell, env), env, cell)
    if isinstance(repeat, bool) or not isinstance(repeat, int) or not 0 <= repeat <= MAX_REPEAT:
        raise CompileError("E400" if isinstance(repeat, int) and repeat > MAX_REPEAT else "E209",
                           f"the repeat count must be a whole number from 0 to {MAX_REPEAT:,}, got {repeat!r}",
                           cells[roles.index("repeat")].span)
    sources: dict = {}  # parameter -> the cell expression that set it (the emitter writes index-dependent ones)
    kwargs = _row_kwargs(el, table, callee, names, fixed, headings, roles, cells,
                         env.child({"index": blocks["done"], "count": blocks["count"]}), where_map, sources)
    if "out" in names and "out" not in kwargs and "output" in roles and cells[roles.index("output")].state == "value":
        channels = _expected(cells[roles.index("output")], env)[0]  # GoogLeNet prints a conv's depth only there
        if channels is not None:
            kwargs["out"] = channels
    stride = _stride_param(names)
    if resolutions and stride and stride not in kwargs:
        kwargs[stride] = _derived_stride(resolutions, index, cells[roles.index("resolution")])
    repeat_atoms = [a for part in cells[roles.index("repeat")].parts for a in part] if "repeat" in roles else []
    where_repeat = any(k in where_map for k in (headings[roles.index("repeat")], "repeat")) if "repeat" in roles else 0
    made.update(callee=callee, repeat=repeat,
                repeat_cell=repeat_atoms[0] if len(repeat_atoms) == 1 and not where_repeat else None)
    if x is None:
        x = _resync(el, cells, roles, "input", site)
        if x is None:
            return None
    x = _check_size(el, cells, roles, "input", x, site)
    x = _check_size(el, cells, roles, "resolution", x, site)
    if x is None:
        return None
    first_layer = len(el.graph.order)
    for r in range(repeat):
        call_kwargs = dict(kwargs)
        if r > 0:  # cells are read again for each repeat: they may use `index`
            call_kwargs.update(_row_kwargs(el, table, callee, names, fixed, headings, roles, cells,
                                           env.child({"index": blocks["done"] + r, "count": blocks["count"]}),
                                           where_map, {}))
        if r > 0 and stride in call_kwargs:
            call_kwargs[stride] = 1  # only the first repeat strides
        row_site = site.at_row(row.span, site.file, source=(stmt.key, index), repeat=r, index=blocks["done"] + r,
                               count=blocks["count"], cells=sources)
        x = el.invoke(callee, [], call_kwargs, x, row_site, op_cell.span, None, 0)  # each repeat is the next module
        if x is None:
            return None
        made["paths"].append(el.last_made)
    made["cells"] = sources
    if repeat:
        layers = [el.graph.layer(n) for n in el.graph.order[first_layer:]]
        _record_figures(el, cells, roles, layers, site.file)
        x = _check_size(el, cells, roles, "output", x, site)
    return x


def _row_kwargs(el, table, callee, names, fixed, headings, roles, cells, env: Env, where_map, sources: dict) -> dict:
    """The row's parameter cells bound to the callee's parameters, after `where`; `sources` gets
    each bound parameter's cell expression."""
    kwargs = dict(fixed)
    aliases = _aliases(el, callee)
    for heading, role, cell, label in zip(headings, roles, cells, table.header):
        if role != "param" or cell.state in ("absent", "empty"):
            continue
        value = True if cell.state == "check" else _value(cell, env)
        target = heading if heading in names else aliases.get(heading)
        if target is None and heading in ("s", "stride"):
            target = _stride_param(names)
        elif target is None and heading in ("k", "kernel", "kernel size"):
            target = _kernel_param(names)
        if target is None:
            described = _described(el, callee)
            raise CompileError("E203", f"column '{label.text}' binds to no parameter of '{callee.name}'", cell.span,
                               hint=did_you_mean(heading, list(names) + list(aliases))
                               or f"its parameters (and column names): {', '.join(described) or 'none'}")
        kwargs[target] = _transform(el, where_map, [target, heading], value, env, cell)
        atoms = [a for part in cell.parts for a in part]
        if cell.state == "value" and len(atoms) == 1 and not any(k in where_map for k in (target, heading)):
            sources[target] = atoms[0]
    return kwargs


def _operator(cell: ast.Cell, env: Env) -> tuple[Ref, dict]:
    atoms = [a for part in cell.parts for a in part]
    if cell.state != "value" or not atoms:
        raise CompileError("E201", "the operator cell is empty", cell.span)
    head = atoms[0]
    if head.kind not in ("name", "call"):
        raise CompileError("E201", "the operator cell must start with a block or op name", head.span)
    callee = evaluate(head, env) if head.kind == "call" else _lookup_op(head, env)
    if not isinstance(callee, Ref):
        raise CompileError("E201", f"'{head.id if head.kind == 'name' else head.func}' is not an op or a block", head.span)
    return callee, _operator_extras(atoms[1:])


def _lookup_op(head: ast.Name, env: Env):
    try:
        return env.callable(head.id, head.span)
    except CompileError as error:
        error.code, error.message = "E201", f"unknown operator '{head.id}'"
        raise


def _operator_extras(atoms) -> dict:
    # Keys are resolved against the callee's parameters by resolve_extras:
    # '@k' a kernel, '@s' a stride, '@WORD' a flag.
    kwargs: dict = {}
    for atom in atoms:
        if atom.kind == "dims":
            sizes = [int(i.value) for i in atom.items]
            kwargs["@k"] = (atom, sizes[0] if len(set(sizes)) == 1 else tuple(sizes[:2]))
            if atom.stride is not None:
                kwargs["@s"] = (atom, int(atom.stride.value))
        elif atom.kind == "kernel":
            kwargs["@k"] = (atom, atom.size[0] if len(set(atom.size)) == 1 else tuple(atom.size[:2]))
        elif atom.kind == "name":
            kwargs["@" + atom.id] = (atom, True)
        else:
            raise CompileError("E201", "an operator cell holds a name, a kernel size like 3x3 and flags", atom.span)
    return kwargs


def _param_names(el, callee: Ref) -> list[str]:
    if callee.kind == "op":
        return list(OPS[callee.name].fields)
    return [p.name for p in el.program.blocks[callee.name][0].params]


def _aliases(el, callee: Ref) -> dict[str, str]:
    if callee.kind == "op":
        return {}
    return {normalize(a): p.name for p in el.program.blocks[callee.name][0].params for a in p.aliases}


def _described(el, callee: Ref) -> list[str]:
    """Parameter names with their column names as the block declares them: `out "#out"`."""
    if callee.kind == "op":
        return _param_names(el, callee)
    return [p.name + "".join(f' "{a}"' for a in p.aliases) for p in el.program.blocks[callee.name][0].params]


def _value(cell: ast.Cell, env: Env):
    atoms = [a for part in cell.parts for a in part]
    if len(cell.parts) != 1 or len(atoms) != 1:
        raise CompileError("E209", "this cell should hold one value", cell.span)
    atom = atoms[0]
    if atom.kind == "dims":
        sizes = tuple(int(i.value) for i in atom.items)
        return sizes[0] if len(set(sizes)) == 1 else sizes
    return evaluate(atom, env)


def _transform(el, where_map, keys, value, env: Env, cell, ahead: bool = False):
    """A cell's value after the section's `where`; a rewrite that changes it means the size and figure
    cells from here on describe another network than the one printed (not when counting ahead)."""
    for key in keys:
        if key in where_map:
            new = evaluate(where_map[key].value, env.child({key: value}))
            if new != value and not ahead:
                el.rescaled = True
            return new
    return value


def resolve_extras(el, callee: Ref, kwargs: dict) -> dict:
    """Turn the operator cell's `@k`, `@s` and `@FLAG` entries into parameters of the callee."""
    names = _param_names(el, callee)
    aliases = _aliases(el, callee)
    out = {}
    for key, item in kwargs.items():
        if not key.startswith("@"):
            out[key] = item
            continue
        atom, value = item
        word = key[1:]
        target = {"k": _kernel_param(names), "s": _stride_param(names)}.get(word) if word in ("k", "s") else (
            aliases.get(normalize(word)) or (word if word in names else None))
        if target is None:
            what = {"k": "takes no kernel size", "s": "takes no stride"}.get(word, f"has no parameter for the flag '{word}'")
            raise CompileError("E203", f"'{callee.name}' {what}", atom.span,
                               hint=f"its parameters: {', '.join(names)}" if names else f"{callee.name} takes none")
        out[target] = value
    return out


def _resolutions(table: ast.Table, roles: list[str], env: Env) -> list[int] | None:
    if "resolution" not in roles:
        return None
    column = roles.index("resolution")
    values = []
    for row in table.rows:
        cell = row.cells[column] if column < len(row.cells) else None
        value = _value(cell, env) if cell is not None and cell.state == "value" else None
        values.append(value[0] if isinstance(value, tuple) else value)
    return values


def _derived_stride(resolutions, index: int, cell) -> int:
    here = resolutions[index]
    after = next((r for r in resolutions[index + 1:] if r is not None), here)
    if not isinstance(here, int) or not isinstance(after, int) or after <= 0 or here % after:
        shown = lambda r: "an empty cell" if r is None else str(r)  # noqa: E731
        raise CompileError("E209", f"cannot derive a stride from resolution {shown(here)} followed by {shown(after)}",
                           cell.span, hint="each resolution must divide the one before it")
    return here // after


def _expected(cell: ast.Cell, env: Env) -> tuple:
    """A size cell as (C, H, W), None where the cell does not say: 224² × 3, 56×56, 1024."""
    atoms = [a for part in cell.parts for a in part]
    atom = atoms[0] if len(atoms) == 1 else None
    if atom is not None and atom.kind == "dims":
        n = [evaluate(i, env) for i in atom.items]
        sq = atom.squared
        if len(n) == 2 and sq[0]:
            return (n[1], n[0], n[0])
        if len(n) == 1 and sq[0]:
            return (None, n[0], n[0])
        if len(n) == 3:
            return (n[2], n[0], n[1])
        if len(n) == 2:
            return (None, n[0], n[1])
    if atom is not None:
        value = evaluate(atom, env)
        if isinstance(value, int) and not isinstance(value, bool):
            return (value, None, None)
    raise CompileError("E209", "a size cell reads like 224² × 3, 112 × 112 × 64, 56×56 or 1024", cell.span)


def _check_size(el, cells, roles, role: str, x, site):
    """Record a size cell with the shape it describes (compiler/cells.py reports a mismatch). Where it is
    checked and wrong, go on from the size it states, so one mistake is reported once, not at every row."""
    if x is None or role not in roles or cells[roles.index(role)].state != "value":
        return x
    cell = cells[roles.index(role)]
    if not el.checking:
        el.record_cell(role, site.file, cell, None, x.shape)
        return x
    expected = _expected(cell, el.globals)
    if role == "resolution" and expected[1] is None:
        expected = (None, expected[0], expected[0])  # a resolution of 224 means 224×224
    record = el.record_cell(role, site.file, cell, expected, x.shape)
    if disagrees(record):
        return _resync(el, cells, roles, role if role != "resolution" else "input", site)
    return x


def _resync(el, cells, roles, role: str, site):
    """Take the size a row's cell states and go on from there; None when it does not state one whole."""
    if role not in roles or cells[roles.index(role)].state != "value":
        return None
    try:
        c, h, w = _expected(cells[roles.index(role)], el.globals)
    except CompileError:
        return None
    if c is None or h is None or w is None or max(c, h, w) > MAX_DIM:
        return None
    name = ".".join(site.scope) + f".resync~{len(el.graph.order)}"
    shape = (c,) if h == w == 1 else (c, h, w)  # a 1×1 row after a pool is, in practice, a vector
    el.graph.placeholders[name] = shape
    return Tensor(name, shape)


def _record_figures(el, cells, roles, layers, file: str) -> None:
    for role, actual in (("params", sum(l.param_count for l in layers)), ("ops", sum(l.macs for l in layers))):
        if role in roles and cells[roles.index(role)].state == "value":
            cell = cells[roles.index(role)]
            el.record_cell(role, file, cell, _paper_number(cell) if el.checking else None, actual)


_SCALE = {"k": 1e3, "m": 1e6, "g": 1e9, "b": 1e9}


def _paper_number(cell: ast.Cell) -> tuple[float, float]:
    """`2.7K` -> (2700, 50): the value and half a unit of its last printed digit."""
    atoms = [a for part in cell.parts for a in part]
    if not atoms or atoms[0].kind != "num" or len(atoms) > 2 or (len(atoms) == 2 and atoms[1].kind != "name"):
        raise CompileError("E209", "a params/ops cell reads like 2.7K, 112K or 34M", cell.span)
    scale = _SCALE.get(atoms[1].id.lower(), None) if len(atoms) == 2 else 1.0
    if scale is None:
        raise CompileError("E209", f"unknown unit '{atoms[1].id}'", atoms[1].span, hint="use K, M or G")
    text = atoms[0].text
    decimals = len(text.split(".")[1]) if "." in text else 0
    return atoms[0].value * scale, 0.5 * 10 ** (-decimals) * scale


__all__ = ["run_table", "normalize", "ROLES", "MAX_REPEAT"]
