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
from ..dsl.headings import ROLE_WORDS, ROLES, as_written, normalize, role_of, said_role
from ..dsl.record import replace
from .cells import disagrees
from .evaluate import CompileError, Env, Ref, bound_exprs, evaluate, top_lets
from .graph import Tensor
from .ops import MAX_DIM, OPS
from .reuse import MEMO

MAX_REPEAT = 10_000

def heading_roles(table: ast.Table) -> tuple[list[str], list[str]]:
    """Each heading normalised, and its role: its `[ROLE]` where it says one, else the heading's own."""
    headings, roles = [], []
    for heading in table.header:
        said = said_role(heading.text)
        if said is not None and said.lower() not in ROLE_WORDS:
            raise CompileError("E203", f"no column role '{said}'", heading.span,
                               hint="the roles: " + ", ".join(sorted(ROLE_WORDS)))
        headings.append(normalize(heading.text))
        roles.append(role_of(heading.text))
    ops = [h for h, r in zip(table.header, roles) if r == "op"]
    if len(ops) > 1:
        raise CompileError("E203", f"two operator columns: '{ops[0].text}' and '{ops[1].text}'", ops[1].span,
                           hint=f"give the one that is not the operator its role: `{ops[1].text} [label]`")
    return headings, roles


def has_value(cell: ast.Cell) -> bool:
    return cell.state in ("value", "exact")


def _stride_param(names: list[str]) -> str | None:
    return next((n for n in ("s", "stride") if n in names), None)


def _kernel_param(names: list[str]) -> str | None:
    return next((n for n in ("k", "kernel") if n in names), None)


def run_table(el, stmt, x, env: Env, site, where):
    table: ast.Table = stmt.table
    headings, roles = heading_roles(table)
    if "op" not in roles:
        raise CompileError("E203", "this table has no operator column", table.header[0].span,
                           hint="name one column 'operator' (or 'op', 'type', 'block')")
    where_map = {k.name: k for k in where}
    resolutions = _resolutions(table, roles, env)
    repeats, counted = _repeats(el, table, headings, roles, env, where_map)
    # `index` and `count` in cells (EfficientNet's stochastic depth) number the blocks of the rows that repeat
    # (that have a repeat cell), or of every row in a table without a repeat column
    blocks = {"done": 0, "count": sum(n for n, c in zip(repeats, counted) if c)}
    rows: list[dict] = []  # what each row made, for the instance's trace (a table in a block)
    if site.frame is not None:
        site = site.container(stmt.module)  # in a block, the rows are one nn.Sequential
    for index, row in enumerate(table.rows):
        cells = row.cells
        if len(cells) != len(headings):
            el.report(CompileError("E203", f"this row has {len(cells)} cells, the header {len(headings)}", row.span), site.file)
            x = None  # what the row makes is unknown: the next row's input cell is not checked against a guess
            continue
        made = {"row": index, "paths": [], "index": blocks["done"]}
        try:
            if _output_row(el, cells[roles.index("op")], roles, cells, x, site):
                continue
            x = MEMO.row(el, stmt, row, tuple(where), env, site, x, resolutions, blocks,
                         lambda: _run_row(el, stmt, row, index, headings, roles, x, env, site, where_map, resolutions,
                                          blocks, made))
        except CompileError as error:
            el.report(error, site.file)
            x = None
        rows.append(made)
        if counted[index]:
            blocks["done"] += repeats[index]
    site.note(stmt.key, rows)
    return x


def _repeats(el, table, headings, roles, env: Env, where_map) -> tuple[list[int], list[bool]]:
    """Each row's repeat count, ahead of the rows, so that cells can use `count`; and whether the row
    counts among the table's blocks (it has a repeat cell, or the table has no repeat column)."""
    counts, counted = [], []
    for row in table.rows:
        n, has = 1, "repeat" not in roles
        if "repeat" in roles and len(row.cells) == len(roles):
            cell = row.cells[roles.index("repeat")]
            has = has_value(cell)
            try:
                if has:
                    n = _value(cell, env)
                    if cell.state != "exact":
                        n = _transform(el, where_map, [headings[roles.index("repeat")], "repeat"], n, env, cell,
                                       ahead=True)
            except CompileError:
                pass  # reported when the row runs
        counts.append(n if isinstance(n, int) and not isinstance(n, bool) and 0 <= n <= MAX_REPEAT else 1)
        counted.append(has)
    return counts, counted


def _output_row(el, op_cell: ast.Cell, roles, cells, x, site) -> bool:
    """`| output inception4a | ...`: names the tensor at this point of the table (GoogLeNet's Table 1 in one)."""
    atoms = [a for part in op_cell.parts for a in part]
    if not (len(atoms) == 2 and atoms[0].kind == "name" and atoms[0].id == "output" and atoms[1].kind == "name"):
        return False
    for role, cell in zip(roles, cells):
        if role in ("param", "repeat") and has_value(cell):
            raise CompileError("E203", "an output row names a tensor: it takes no parameters", cell.span,
                               hint="leave its other cells empty or `-`")
    if site.frame is not None:
        raise CompileError("E209", "an output names a tensor of the network: it stands in a section's table, "
                           "not in a block's", op_cell.span)
    if x is not None:
        el.name_output(el.graph.outputs, atoms[1].id, x.name, op_cell.span)
    return True


def _run_row(el, stmt, row, index, headings, roles, x, env, site, where_map, resolutions, blocks, made):
    table = stmt.table
    cells = row.cells
    op_cell = cells[roles.index("op")]
    if op_cell.span.line == 0:  # an empty cell has no token to point at: point at the row
        op_cell = replace(op_cell, span=row.span)
    callee, extras = _operator(el, op_cell, env)
    for role, cell in zip(roles, cells):
        if role == "kernel" and has_value(cell):  # GoogLeNet's "patch size/stride": 7×7/2, or just 3
            atoms = [a for part in cell.parts for a in part]
            if len(atoms) == 1 and atoms[0].kind == "num":
                extras["@k"] = (atoms[0], _value(cell, env))
            else:
                extras.update(_operator_extras([([a], "") for a in atoms]))
    fixed = resolve_extras(el, callee, extras)
    names = _param_names(el, callee)
    repeat = 1
    if "repeat" in roles and has_value(cells[roles.index("repeat")]):
        cell = cells[roles.index("repeat")]
        heading = table.header[roles.index("repeat")].text
        try:
            repeat = _value(cell, env)
        except CompileError as error:  # DenseNet's "Layers" is no repeat count: say why this cell is read as one
            error.hint = (f"{error.hint}; " if error.hint else "") + \
                f"the column '{heading}' is the repeat column: head it `{heading} [label]` if it is not"
            raise
        if cell.state != "exact":
            repeat = _transform(el, where_map, [headings[roles.index("repeat")], "repeat"], repeat, env, cell)
    if isinstance(repeat, bool) or not isinstance(repeat, int) or not 0 <= repeat <= MAX_REPEAT:
        raise CompileError("E400" if isinstance(repeat, int) and repeat > MAX_REPEAT else "E209",
                           f"the repeat count must be a whole number from 0 to {MAX_REPEAT:,}, got {repeat!r}",
                           cells[roles.index("repeat")].span)
    # parameter -> the cell expression that set it (the emitter writes index-dependent ones, and num_classes)
    sources: dict = _callee_sources(el, op_cell, callee, names, site)
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
        try:
            x = el.invoke(callee, [], call_kwargs, x, row_site, op_cell.span, None, 0)  # each repeat is the next module
        except CompileError as error:
            if error.code == "E205" and "repeat" in roles and f"'{headings[roles.index('repeat')]}'" in error.message:
                heading = table.header[roles.index("repeat")].text  # a column headed n is the repeat column
                error.hint = f"the column '{heading}' is the repeat column; to bind it to the parameter, head it " \
                             f"`{heading} [param]`"
            raise
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
        value = True if cell.state == "check" else _value(cell, env, label.text)
        written = as_written(label.text)
        target = written if written in names else heading if heading in names else aliases.get(heading)
        if target is None and heading in ("s", "stride"):
            target = _stride_param(names)
        elif target is None and heading in ("k", "kernel", "kernel size"):
            target = _kernel_param(names)
        if target is None:
            described = _described(el, callee)
            # at the heading: a misspelt heading is one mistake, however many rows it heads
            raise CompileError("E203", f"column '{label.text}' binds to no parameter of '{callee.name}'", label.span,
                               hint=did_you_mean(heading, list(names) + list(aliases))
                               or f"its parameters (and column names): {', '.join(described) or 'none'}")
        # `= EXPR` is as written: no `where` rewrites it (MobileNetV2's last conv: max(1, width))
        kwargs[target] = value if cell.state == "exact" else _transform(el, where_map, [target, heading], value, env,
                                                                        cell)
        atoms = [a for part in cell.parts for a in part]
        if has_value(cell) and len(atoms) == 1 and (cell.state == "exact" or not any(k in where_map
                                                                                   for k in (target, heading))):
            sources[target] = atoms[0]
    return kwargs


def _operator(el, cell: ast.Cell, env: Env) -> tuple[Ref, dict]:
    """The row's op or block and what the operator cell adds: a kernel, a stride, flags. The cell may
    spell the block as the paper does (`conv3-64`, `Fused-MBConv1`: a block's spellings)."""
    atoms = [a for part in cell.parts for a in part]
    if cell.state != "value" or not atoms:
        raise CompileError("E201", "the operator cell is empty", cell.span)
    texts = cell.part_texts or [""] * len(cell.parts)
    words = _words(cell.parts[0], texts[0])
    rest = words[1:] + list(zip(cell.parts[1:], texts[1:]))
    # the spelling is the whole first part (spaces ignored: `conv3 - 64`), else its first word
    for spelled, extras in ((_spelled(el, texts[0]), rest[len(words) - 1:]), (_spelled(el, words[0][1]), rest)):
        if spelled is not None:
            callee, fixed = spelled
            return callee, {**fixed, **_operator_extras(extras)}
    head = atoms[0]
    if head.kind not in ("name", "call"):
        raise CompileError("E201", "the operator cell must start with a block or op name", head.span,
                           hint=_spelling_hint(el, texts[0]))
    callee = evaluate(head, env) if head.kind == "call" else _lookup_op(head, env)
    if not isinstance(callee, Ref):
        raise CompileError("E201", f"'{head.id if head.kind == 'name' else head.func}' is not an op or a block", head.span)
    return callee, _operator_extras(rest)


def _words(atoms: list, text: str) -> list[tuple[list, str]]:
    """A part of an operator cell as its space-separated words, each with its atoms and its text as written:
    `mb 3x3 SE0.25` is three words, the last one two atoms (`SE0`, `.25`) written without a space, as the
    comma-separated `mb, 3x3, SE0.25` is three parts."""
    origin, words = atoms[0].span.col, []
    for atom in atoms:
        last = words[-1][-1].span if words else None
        if last is not None and (atom.span.line, atom.span.col) == (last.end_line, last.end_col):
            words[-1].append(atom)
        else:
            words.append([atom])
    return [(w, text[w[0].span.col - origin:w[-1].span.end_col - origin]) for w in words]


def _spellings(el) -> list[tuple[str, re.Pattern, list[str]]]:
    """Every block's operator-cell spellings as (block, pattern, the parameters its numbers bind)."""
    found = getattr(el, "_spellings", None)
    if found is None:
        found = el._spellings = [(name, *_pattern(sp)) for name, t in el.lowered.blocks.items() for sp in t.spellings]
    return found


def _pattern(spelling: str) -> tuple[re.Pattern, list[str]]:
    """`conv{k}-{out}` as a pattern: the text as written (any case), each `{name}` a number."""
    names, parts = [], []
    for piece in re.split(r"(\{\w+\})", spelling):
        if piece.startswith("{") and piece.endswith("}"):
            names.append(piece[1:-1])
            parts.append(r"(\d+(?:\.\d+)?)")
        else:
            parts.append(re.escape(piece.replace(" ", "")))
    return re.compile("".join(parts), re.IGNORECASE), names


def _number_text(text: str):
    return float(text) if "." in text else int(text)


def _spelled(el, text: str):
    for block, pattern, names in _spellings(el):
        match = pattern.fullmatch(text.replace(" ", ""))
        if match:
            return Ref("block", block), {n: _number_text(v) for n, v in zip(names, match.groups())}
    return None


def _spelling_hint(el, text: str) -> str | None:
    spellings = [sp for t in el.lowered.blocks.values() for sp in t.spellings]
    if "-" in text or any(ch.isdigit() for ch in text):
        known = ", ".join(f'"{sp}"' for sp in spellings[:6])
        return (f"'{text}' matches no block's spelling ({known})" if spellings else
                f"to read '{text}' as the paper writes it, give a block that spelling: "
                f'`block NAME(k, out) "conv{{k}}-{{out}}":`')
    return None


def _callee_sources(el, cell: ast.Cell, callee: Ref, names: list[str], site) -> dict:
    """The expressions the operator cell binds the callee's parameters to: `linear(num_classes)`'s, or
    those of the top-level let it names (`Conv1x1`), followed only in a section (in a block, a name is
    the block's own)."""
    if _spelled(el, (cell.part_texts or [""])[0]) is not None:
        return {}
    lets = top_lets(el.program) if site.frame is None else None
    return bound_exprs(cell.parts[0][0], names, len(callee.args), lets)


def _lookup_op(head: ast.Name, env: Env):
    try:
        return env.callable(head.id, head.span)
    except CompileError as error:
        error.code, error.message = "E201", f"unknown operator '{head.id}'"
        raise


def _operator_extras(units) -> dict:
    # Keys are resolved against the callee's parameters by resolve_extras:
    # '@k' a kernel, '@s' a stride, '@WORD' a flag ('@SE0.25': a flag with its number).
    kwargs: dict = {}
    for atoms, text in units:
        if len(atoms) != 1 and text:
            kwargs["@" + text.replace(" ", "")] = (atoms[0], True)
            continue
        atom = atoms[0]
        if atom.kind == "dims":
            sizes = [int(i.value) for i in atom.items]
            if len(sizes) > 2 and not any(atom.squared):
                raise CompileError("E209", f"'{atom.text}' is no kernel: a kernel is one size or two (3x3, 1x7)",
                                   atom.span)
            kwargs["@k"] = (atom, sizes[0] if len(set(sizes)) == 1 else tuple(sizes[:2]))
            if atom.stride is not None:
                kwargs["@s"] = (atom, int(atom.stride.value))
        elif atom.kind == "kernel":
            kwargs["@k"] = (atom, atom.size[0] if len(set(atom.size)) == 1 else tuple(atom.size[:2]))
        elif atom.kind == "name":
            kwargs["@" + atom.id] = (atom, True)
        else:
            raise CompileError("E201", "an operator cell holds a name, a kernel size like 3x3 and flags", atom.span,
                               hint="a flag with a number is a parameter's alias with a place for it: "
                                    'se "SE{}" reads SE0.25')
    return kwargs


def _param_names(el, callee: Ref) -> list[str]:
    if callee.kind == "op":
        return list(OPS[callee.name].fields)
    return [p.name for p in el.program.blocks[callee.name][0].params]


def _aliases(el, callee: Ref) -> dict[str, str]:
    if callee.kind == "op":
        return {}
    return {normalize(a): p.name for p in el.program.blocks[callee.name][0].params for a in p.aliases}


def _numbered_texts(el, callee: Ref) -> list[tuple[str, str]]:
    """The callee's numbered flags as written, `"SE{}"`, with their parameters."""
    if callee.kind == "op":
        return []
    return [(a, p.name) for p in el.program.blocks[callee.name][0].params for a in p.aliases if "{}" in a]


def _numbered_aliases(el, callee: Ref) -> list[tuple[re.Pattern, str]]:
    return [(re.compile(re.escape(a).replace(r"\{\}", r"(\d+(?:\.\d+)?)"), re.IGNORECASE), name)
            for a, name in _numbered_texts(el, callee)]


def _described(el, callee: Ref) -> list[str]:
    """Parameter names with their column names as the block declares them: `out "#out"`."""
    if callee.kind == "op":
        return _param_names(el, callee)
    return [p.name + "".join(f' "{a}"' for a in p.aliases) for p in el.program.blocks[callee.name][0].params]


def _value(cell: ast.Cell, env: Env, column: str = ""):
    atoms = [a for part in cell.parts for a in part]
    if len(cell.parts) != 1 or len(atoms) != 1:
        raise CompileError("E209", "this cell should hold one value", cell.span)
    atom = atoms[0]
    if atom.kind == "dims":
        if atom.stride is not None:  # `3×3/2` bound to a parameter would lose its stride without a word
            raise CompileError("E209", f"'{atom.text}': a stride after '/' is read in the operator cell and in "
                               "kernel columns, not in a parameter's column" + (f" ('{column}')" if column else ""),
                               atom.span, hint="head the column `patch size/stride` (or `kernel [kernel]`), or "
                               "write the stride in a column of its own")
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
        if target is None and word not in ("k", "s"):  # `SE0.25`: an alias with a place for its number, "SE{}"
            for alias, param in _numbered_aliases(el, callee):
                match = alias.fullmatch(word)
                if match:
                    target, value = param, _number_text(match.group(1))
                    break
        if target is None:
            what = {"k": "takes no kernel size", "s": "takes no stride"}.get(word, f"has no parameter for the flag '{word}'")
            numbered = [(a, p) for a, p in _numbered_texts(el, callee) if normalize(a.replace("{}", "")) == normalize(word)]
            hint = (f"'{numbered[0][0]}' is the numbered flag of '{numbered[0][1]}': write its number, as in "
                    f"{numbered[0][0].replace('{}', '0.25')}") if numbered else \
                f"its parameters: {', '.join(names)}" if names else f"{callee.name} takes none"
            raise CompileError("E203", f"'{callee.name}' {what}", atom.span, hint=hint)
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
    if disagrees(record) and cell_key(site.file, cell) not in el.trusted:
        return _resync(el, cells, roles, role if role != "resolution" else "input", site)
    return x


def cell_key(file: str, cell) -> tuple:
    return (file, cell.span.line, cell.span.col)


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
    """`2.7K` -> (2700, 50): the value and half a unit of its last printed digit; `12,432` (a paper's
    thousands separators) -> (12432, 0.5)."""
    grouped = re.fullmatch(r"(\d{1,3}(?:,\d{3})+)(\.\d+)?\s*([KMGB]?)", cell.text or "", re.IGNORECASE)
    if grouped is not None:
        digits, fraction, unit = grouped.group(1).replace(",", ""), grouped.group(2) or "", grouped.group(3)
        scale = _SCALE.get(unit.lower(), 1.0)
        decimals = len(fraction) - 1 if fraction else 0
        return float(digits + fraction) * scale, 0.5 * 10 ** (-decimals) * scale
    atoms = [a for part in cell.parts for a in part]
    if not atoms or atoms[0].kind != "num" or len(atoms) > 2 or (len(atoms) == 2 and atoms[1].kind != "name"):
        if "," in (cell.text or ""):  # `4,48`: a paper's separators group digits in threes
            raise CompileError("E209", f"'{cell.text}' is not a number: thousands separators group the digits in "
                               "threes, as in 12,432 or 1,235,496", cell.span,
                               hint="write the figure as the paper prints it, or without separators")
        raise CompileError("E209", "a params/ops cell reads like 2.7K, 112K or 34M", cell.span)
    scale = _SCALE.get(atoms[1].id.lower(), None) if len(atoms) == 2 else 1.0
    if scale is None:
        raise CompileError("E209", f"unknown unit '{atoms[1].id}'", atoms[1].span, hint="use K, M or G")
    text = atoms[0].text
    decimals = len(text.split(".")[1]) if "." in text else 0
    return atoms[0].value * scale, 0.5 * 10 ** (-decimals) * scale


__all__ = ["run_table", "normalize", "ROLES", "MAX_REPEAT"]
