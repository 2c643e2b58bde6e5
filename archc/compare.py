"""`archc compare`: seed 000's closing table — a row per network with its
params, mult-adds and memory at a batch, and the largest batch that fits.

    >>> rows = compare([f"{zoo_path('nin.arch')}"], batch=32)
    >>> rows[0]["params"], rows[0]["network"]
    (1992166, 'nin')
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from .api import zoo_path  # noqa: F401 - used by the example above
from .compiler.check import Report, UsageError, check
from .compiler.program import load
from .dsl.diagnostics import ArchError
from .dsl.record import as_data
from .dsl.source import printable


def split_spec(spec: str) -> tuple[str, str | None]:
    """`resnet.arch:resnet50` -> ("resnet.arch", "resnet50"); a path may not exist yet to say which."""
    path, colon, variant = spec.rpartition(":")
    if colon and path.endswith(".arch") and variant.isidentifier():
        return path, variant
    return spec, None


def compare(specs: list[str], *, batch: int = 1, memory: str | None = None, input: str | None = None,
            params: dict[str, Any] | None = None, convention: str = "torchinfo") -> list[dict]:
    """One row per `FILE` or `FILE:VARIANT`. A `params` entry applies to the networks that have it."""
    rows, params, used = [], params or {}, set()
    for spec in specs:
        path, variant = split_spec(spec)
        if not Path(path).is_file():
            raise UsageError(f"no such file: {path}")
        names = _parameter_names(path)
        given = {k: v for k, v in params.items() if k in names}
        used |= set(given)
        report = check(path, variant=variant, batch=batch, memory=memory, input=input, convention=convention, **given)
        rows.append(_row(spec, report))
    unused = set(params) - used
    if unused:
        raise UsageError(f"no network here has the parameter {', '.join(sorted(unused))}")
    return rows


def _parameter_names(path: str) -> set[str]:
    try:
        network = load(path).network
    except ArchError:
        return set()  # the row will show the file's errors
    return {p.name for p in network.params} if network else set()


def _row(spec: str, report: Report) -> dict:
    errors = [d for d in report.diagnostics if d.severity == "error"]
    return {
        "spec": spec, "network": report.network, "variant": report.variant, "ok": not errors,
        "errors": [f"{d.file}:{d.span.line}:{d.span.col}: {d.message}" for d in errors],
        "input": report.input, "batch": report.batch, "params": report.params, "macs": report.macs,
        "convention": report.convention,
        "memory": as_data(report.memory), "max_batch": report.max_batch,
    }


def print_table(rows: list[dict], budget: str | None, file=None) -> None:
    """The rows as a table fitted to the terminal: every network named in full (its file relative to the
    files' common folder, which the title names), every count exact; columns the width cannot hold are
    left out, the least needed first, and listed under the table."""
    import os

    from .textable import Column, Table, terminal_width, title, wants_bold

    out = file or sys.stdout
    batch = rows[0]["batch"] if rows else 1
    convention = rows[0]["convention"] if rows else "torchinfo"
    specs = [split_spec(row["spec"]) for row in rows]
    folder = os.path.commonpath([os.path.dirname(p) or "." for p, _ in specs]) if specs else ""
    if len({p for p, _ in specs}) == 1 and all(v for _, v in specs):  # variants of one file: b0 … b7
        names, where = [v for _, v in specs], [f"variants of {specs[0][0]}"]
    else:
        names = [os.path.relpath(row["spec"], folder) if folder not in ("", ".") else row["spec"] for row in rows]
        where = [f"files in {folder}{os.sep}"] if folder not in ("", ".") else []
    width = terminal_width(out)
    print(title([f"batch {batch}" + (f", memory budget {budget}" if budget else ""), f"mult-adds counted as {convention}",
                 *where], width), file=out)
    table = Table([Column("network"), Column("input"), Column("params", right=True), Column("mult-adds", right=True),
                   Column("input (MB)", right=True, drop=3), Column("fwd/bwd (MB)", right=True, drop=1),
                   Column("params (MB)", right=True, drop=2), Column("total (MB)", right=True)]
                  + ([Column("largest batch", right=True)] if budget else []))
    for name, row in zip(names, rows):
        if not row["ok"]:
            table.add([printable(name), "errors", *[""] * (6 + bool(budget))])
            continue
        m = row["memory"]
        table.add([printable(name), "×".join(map(str, row["input"])), f"{row['params']:,}", f"{row['macs']:,}",
                   f"{m['input_mb']:.2f}", f"{m['forward_backward_mb']:.2f}", f"{m['params_mb']:.2f}",
                   f"{m['total_mb']:.2f}", *([f"{row['max_batch']:,}"] if budget else [])])
    print("\n".join(table.lines(width, bold=wants_bold(out))), file=out)
    if not all(row["ok"] for row in rows):
        print("(errors: archc check FILE lists them)", file=out)
    if table.dropped:
        print(f"(not shown in {width} columns: {', '.join(table.dropped)}: see --json)",
              file=out)
