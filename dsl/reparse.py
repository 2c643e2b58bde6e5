"""Re-parse an edited file item by item, for a server that checks it on every keystroke.

Parsing EfficientNet's file took 27 ms of a 100 ms re-check in `archc lsp`, and a keystroke
changes one top-level item of it. A top-level item starts at column 0 (bodies and tables are
indented, the grammar's `item`s follow each other), so the file is cut before every line that
starts with something other than a space, a tab, `#` or a line break, and each piece is parsed
on its own, placed at its lines by blank lines before it, so that its spans are the file's.
A piece is parsed once per (file, first line, text): an edit re-parses its own item only, and
an edit that adds or removes lines re-parses the items after it once.

The pieces give the module `parse` gives the whole text (tests/test_reparse.py compares them
on every file of the zoo). When a piece does not parse, or the cut could split a construct
(a continuation line at column 0 inside parentheses makes a piece fail), the whole text is
parsed, so a syntax error is the one `archc check` reports.

    >>> module = parse_by_items("let a = 1\\n\\nblock b(out):\\n    conv(out, 3)\\n", "x.arch")
    >>> [(item.kind, item.span.line) for item in module.items]
    [('let', 1), ('block', 3)]
"""

from __future__ import annotations

from collections import OrderedDict

from . import ast
from .diagnostics import ArchError
from .record import fields, replace

MAX_PIECES = 2_048  # (file, line, text) entries kept: a few hundred files' worth of items
_pieces: OrderedDict[tuple[str, int, str], ast.Module] = OrderedDict()


def parse_by_items(text: str, file: str) -> ast.Module:
    """`parse(text, file)`, re-using the items of earlier texts that did not change."""
    from .parse import _check_size, parse

    _check_size(text, file)
    pieces = _cut(text)
    if len(pieces) < 2:
        return parse(text, file)
    items: list = []
    comments: list = []
    try:
        for line, piece in pieces:
            module = _piece(piece, line, file)
            items += module.items
            comments += module.comments
    except ArchError:
        return parse(text, file)  # the whole file's first error, as `archc check` gives it
    lines = text.count("\n") + (0 if text.endswith("\n") else 1)
    span = ast.Span(line=1, col=1, end_line=lines + 1, end_col=1)
    return ast.Module(items=items, comments=comments, span=span)


def parseable(text: str, file: str) -> str:
    """The text with each top-level item that does not parse blanked out (its lines kept, empty): what
    an editor can still read of a half-typed file, its names and their places.

        >>> parseable("let a = 1\\nblock b(:\\n    relu()\\nlet c = 2\\n", "x.arch")
        'let a = 1\\n\\n\\nlet c = 2\\n'
    """
    kept = []
    for line, piece in _cut(text):
        try:
            _piece(piece, line, file)
            kept.append(piece)
        except ArchError:
            kept.append("\n" * piece.count("\n"))
    return "".join(kept)


def _cut(text: str) -> list[tuple[int, str]]:
    """(first line, text) of each top-level piece: a new one at each line starting an item.
    Lines are cut at "\n" only, as the parser counts them."""
    pieces: list[tuple[int, str]] = []
    start_line, start = 1, 0
    position, line = 0, 1
    while position < len(text):
        if position and text[position] not in " \t#\n\r\f":
            pieces.append((start_line, text[start:position]))
            start_line, start = line, position
        end = text.find("\n", position)
        position = len(text) if end < 0 else end + 1
        line += 1
    pieces.append((start_line, text[start:]))
    return pieces


def _piece(piece: str, line: int, file: str) -> ast.Module:
    from .parse import parse

    key = (file, line, piece)
    module = _pieces.get(key)
    before = _latest.get((file, line))
    _latest[(file, line)] = piece
    if module is not None:
        _pieces.move_to_end(key)
        return module
    module = _one_row_changed(before, piece, line, file) if before is not None else None
    if module is None:
        module = parse("\n" * (line - 1) + piece, file)
    _pieces[key] = module
    if len(_pieces) > MAX_PIECES:
        _pieces.popitem(last=False)
    return module


# ------------------------------------------------------------------ one row

_latest: dict[tuple[str, int], str] = {}  # (file, first line) -> the last text of the piece there


def _one_row_changed(before: str, piece: str, line: int, file: str) -> ast.Module | None:
    """When `piece` differs from the piece `before` it (kept in memory) in one table row only (a cell typed
    in, the usual keystroke), the earlier module with that row parsed again: the row alone, under a
    one-column header, at its own line. Its span is the old row's, since the text around it is the same.
    None when that does not apply or the row does not parse (the whole piece is parsed then)."""
    old = _pieces.get((file, line, before))
    old_lines, new_lines = before.split("\n"), piece.split("\n")
    if old is None or len(old_lines) != len(new_lines):
        return None
    changed = [i for i, (a, b) in enumerate(zip(old_lines, new_lines)) if a != b]
    if len(changed) != 1 or changed[0] == 0:
        return None
    k = changed[0]
    row_text, indent = new_lines[k], _indent(new_lines[k])
    if not (_is_row(row_text) and _is_row(old_lines[k]) and _is_row(new_lines[k - 1]) and indent
            and indent == _indent(old_lines[k])):
        return None  # not a data row (the line above is not the header or another row), or it moved
    at = line + k
    old_row = next((n for n in _rows(old.items, at)), None)
    if old_row is None or at < 3:
        return None
    from .parse import parse

    try:
        mini = parse("\n" * (at - 3) + f"s:\n{indent}| h |\n{row_text}\n", file)
    except ArchError:
        return None
    rows = mini.items[0].body[0].rows
    if not rows:  # the line became the Markdown rule under a header
        return None
    row = replace(rows[0], span=old_row.span)
    comments = sorted([c for c in old.comments if c.span.line != at] + list(mini.comments),
                      key=lambda c: (c.span.line, c.span.col))
    return replace(old, items=[_replace(i, old_row, row) for i in old.items], comments=comments)


def _indent(text: str) -> str:
    return text[:len(text) - len(text.lstrip(" \t"))]


def _is_row(text: str) -> bool:
    return text.lstrip(" \t").startswith("|")


def _rows(nodes, line: int):
    """The table rows on `line` among `nodes` and below them, looking only into nodes that span it."""
    for node in nodes:
        if not isinstance(node, ast.Node) or not node.span.line <= line <= node.span.end_line:
            continue
        if isinstance(node, ast.Row):
            if node.span.line == line:
                yield node
            continue
        for name in fields(node):
            value = getattr(node, name)
            yield from _rows(value if isinstance(value, list) else [value], line)


def _replace(node, old, new):
    """`node` with `old` (found by identity) replaced by `new`; the nodes on the way copied, the rest shared."""
    if node is old:
        return new
    if isinstance(node, list):
        items = [_replace(n, old, new) for n in node]
        return items if any(a is not b for a, b in zip(items, node)) else node
    if not isinstance(node, ast.Node) or not node.span.line <= old.span.line <= node.span.end_line:
        return node
    changed = {}
    for name in fields(node):
        value = getattr(node, name)
        replaced = _replace(value, old, new)
        if replaced is not value:
            changed[name] = replaced
    return replace(node, **changed) if changed else node
