"""The size and figure cells of tables, checked: a pass over what elaboration recorded.

An input, output or resolution cell states a size in the paper's order (H × W × C, any
part may be left out); a params or ops cell the paper's figure to its rounding. Each
is compared with what elaboration found for the network as printed (compiler/graph.py
`CellRecord.checked`); cells of another network (a variant, `--set`, a `where` that
rescales) are counted, for note N001.
"""

from __future__ import annotations

from ..dsl.diagnostics import Diagnostic
from .ops import fmt_shape

HINTS = {"input": "a row above produces a different size than the table states",
         "resolution": "a row above produces a different size than the table states",
         "output": "this row produces a different size than the table states"}


def disagrees(record) -> bool:
    if record.role in ("params", "ops"):
        printed, tolerance = record.expected
        return abs(record.actual - printed) > tolerance
    shape = tuple(record.actual)
    actual = shape if len(shape) == 3 else (shape[0], 1, 1)  # a vector reads as F×1×1
    return any(e is not None and e != a for e, a in zip(record.expected, actual))


def check_cells(graph) -> tuple[list[Diagnostic], int]:
    """(a diagnostic per wrong cell, the number of cells that describe another network)."""
    found, unchecked, above = [], 0, None
    for record in graph.cells:
        if not record.checked:
            unchecked += 1
        elif disagrees(record):
            found.append(_diagnostic(record, above))
        if record.role == "input":
            above = record
    return found, unchecked


def _row_above(record, above) -> str | None:
    """Name the row above a wrong input cell and what it did to the size: where a stride is missing or
    one too many, that row is the one to look at."""
    if above is None or record.role != "input" or above.file != record.file or \
            above.cell.span.line >= record.cell.span.line or len(record.actual) != 3 or len(above.actual) != 3:
        return None
    before, after = tuple(above.actual), tuple(record.actual)
    size = f"{after[1]}×{after[2]}"
    if before[1:] == after[1:] and record.expected[1] is not None and record.expected[1] != after[1]:
        return f"the row at line {above.cell.span.line} keeps {size}: is its stride missing?"
    return f"the row at line {above.cell.span.line} takes {fmt_shape(before)} and gives {fmt_shape(after)}"


def _diagnostic(record, above=None) -> Diagnostic:
    cell = record.cell
    if record.role in ("params", "ops"):
        atoms = [a for part in cell.parts for a in part]
        text = cell.text or "".join(getattr(a, "text", getattr(a, "id", "")) for a in atoms)
        return Diagnostic(code="E305", file=record.file, span=cell.span,
                          message=f"the table says {record.role} {text}, but this row has {record.actual:,}",
                          hint="figures are compared to the paper's rounding")
    e = record.expected
    shown = "×".join("?" if v is None else str(v) for v in (e[1], e[2], e[0]))
    what = "output" if record.role == "output" else "input"
    return Diagnostic(code="E302", file=record.file, span=cell.span, hint=_row_above(record, above) or HINTS[record.role],
                      message=f"the table says the {what} is {shown}, but it is {fmt_shape(tuple(record.actual))}")
