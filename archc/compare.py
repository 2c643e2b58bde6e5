"""`archc compare`: seed 000's closing table — a row per network with its
params, mult-adds and memory at a batch, and the largest batch that fits.

    >>> rows = compare([f"{zoo_path('nin.arch')}"], batch=32)
    >>> rows[0]["params"], rows[0]["network"]
    (1992166, 'nin')
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .api import zoo_path  # noqa: F401 - used by the example above
from .compiler.check import Report, UsageError, check
from .compiler.program import load
from .dsl.diagnostics import ArchError


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
        "memory": report.memory.model_dump(), "max_batch": report.max_batch,
    }


def print_table(rows: list[dict], budget: str | None) -> None:
    from rich.console import Console
    from rich.table import Table

    batch = rows[0]["batch"] if rows else 1
    convention = rows[0]["convention"] if rows else "torchinfo"
    table = Table(title=f"batch {batch}" + (f", memory budget {budget}" if budget else ""), title_justify="left")
    for heading in ("network", "input", "params", f"mult-adds (G, {convention})", "input (MB)", "fwd/bwd (MB)", "params (MB)",
                    "total (MB)") + (("largest batch",) if budget else ()):
        table.add_column(heading, justify="left" if heading in ("network", "input") else "right")
    for row in rows:
        if not row["ok"]:
            table.add_row(row["spec"], "", "errors: run archc check", *[""] * (5 + bool(budget)))
            continue
        m = row["memory"]
        cells = [row["spec"], "×".join(map(str, row["input"])), f"{row['params']:,}", f"{row['macs'] / 1e9:.2f}",
                 f"{m['input_mb']:.2f}", f"{m['forward_backward_mb']:.2f}", f"{m['params_mb']:.2f}",
                 f"{m['total_mb']:.2f}"]
        table.add_row(*cells, *([f"{row['max_batch']:,}"] if budget else []))
    Console(highlight=False, width=160).print(table)
