"""Plain-text tables for `archc check` and `archc compare`, fitted to the terminal.

rich drew these before; its import and layout were a third of a check's time
(0.12 s of 0.39 s for MobileNetV3-Small), for columns that plain padding lines
up as well. A table here never cuts what identifies a row or a figure: when it
is wider than the terminal, it first shortens the columns marked `cut` (text
echoed from the file) with an ellipsis, then leaves out the columns marked
`drop` (the least needed first) and says which. A column with no cell filled
is left out.

    >>> table = Table([Column("net"), Column("params", right=True), Column("note", cut=True)])
    >>> table.add(["nin", "1,992,166", "d2l's NiN, seed 002"])
    >>> print("\\n".join(table.lines(width=30)))
    net     params  note
    ───  ─────────  ──────────────
    nin  1,992,166  d2l's NiN, se…
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass, field

GAP = "  "
MIN_CUT = 12  # a cut column keeps at least this many characters
BOLD, PLAIN = "\x1b[1m", "\x1b[0m"


@dataclass
class Column:
    heading: str
    right: bool = False  # numbers are right-aligned
    cut: bool = False  # may be shortened with "…" to fit the width
    drop: int = 0  # > 0: may be left out to fit, the highest first


@dataclass
class Table:
    columns: list[Column]
    rows: list[tuple[list[str], bool, bool]] = field(default_factory=list)  # cells, bold, may be cut
    dropped: list[str] = field(default_factory=list)  # headings left out by the last lines()
    overflows: bool = False  # the last lines() are wider than asked, cutting and dropping all they can

    def add(self, cells: list[str], bold: bool = False, cut: bool = True) -> None:
        """A row; `cut=False` keeps its cells whole even in `cut` columns (a name, where a row of the
        same column echoes text from the file)."""
        self.rows.append((cells, bold, cut))

    def lines(self, width: int | None = None, bold: bool = False) -> list[str]:
        """The heading, a rule and the rows, within `width` characters where cutting and dropping allow
        (None: no limit). `bold` writes bold rows in ANSI bold."""
        keep = [i for i in range(len(self.columns)) if any(cells[i] for cells, *_ in self.rows)]  # no empty columns
        widths = [max([len(c.heading)] + [len(cells[i]) for cells, *_ in self.rows]) for i, c in enumerate(self.columns)]
        self.dropped = []

        def total() -> int:
            return sum(widths[i] for i in keep) + len(GAP) * (len(keep) - 1)

        if width is not None:
            for i in keep:  # shorten the cuttable columns, each to no less than MIN_CUT and its whole cells
                if total() > width and self.columns[i].cut:
                    least = max([MIN_CUT, len(self.columns[i].heading)] + [len(c[i]) for c, _, cut in self.rows if not cut])
                    widths[i] = max(min(least, widths[i]), widths[i] - (total() - width))
            for i in sorted((i for i in keep if self.columns[i].drop), key=lambda i: -self.columns[i].drop):
                if total() > width:
                    keep.remove(i)
                    self.dropped.append(self.columns[i].heading)
        self.overflows = width is not None and total() > width
        out = [self._line([self.columns[i].heading for i in keep], keep, widths),
               GAP.join("─" * widths[i] for i in keep)]
        for cells, strong, _ in self.rows:
            line = self._line([cells[i] for i in keep], keep, widths)
            out.append(f"{BOLD}{line}{PLAIN}" if bold and strong else line)
        return out

    def _line(self, cells: list[str], keep: list[int], widths: list[int]) -> str:
        parts = []
        for text, i in zip(cells, keep):
            if len(text) > widths[i]:
                text = text[:widths[i] - 1] + "…"
            parts.append(text.rjust(widths[i]) if self.columns[i].right else text.ljust(widths[i]))
        return GAP.join(parts).rstrip()


def title(parts: list[str], width: int | None) -> str:
    """`parts` joined by "; ", starting a new line where the next part would pass `width`."""
    lines = [parts[0]]
    for part in parts[1:]:
        if width is not None and len(lines[-1]) + 2 + len(part) > width:
            lines.append(part)
        else:
            lines[-1] += "; " + part
    return "\n".join(lines)


def terminal_width(stream=None) -> int | None:
    """The width to fit: $COLUMNS if set, else the terminal's; None (no limit) when the output is not a
    terminal (a file or a pipe keeps every character)."""
    stream = stream or sys.stdout
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    try:
        if stream.isatty():
            return shutil.get_terminal_size().columns
    except (AttributeError, ValueError, OSError):
        pass
    return None


def wants_bold(stream=None) -> bool:
    """ANSI bold only on a terminal, and not where NO_COLOR is set or TERM is dumb (no-color.org)."""
    stream = stream or sys.stdout
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):
        tty = False
    return tty and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"
