"""Human output of `archc check`: diagnostics, then each table row with the
layers under it, then totals and memory (rich tables)."""

from __future__ import annotations

import sys

from .compiler.check import Report

MAX_DETAILED = 600  # layers; above it, table rows are shown without the layers under them


def _shape(shape: list[int]) -> str:
    return "×".join(str(d) for d in shape)


def print_report(report: Report, file=None) -> None:
    from rich.console import Console
    from rich.table import Table

    out = Console(file=file or sys.stdout, highlight=False, width=140)
    err = Console(file=file or sys.stderr, highlight=False, soft_wrap=True)
    for diagnostic in report.diagnostics:
        err.print(diagnostic.render(report.sources.get(diagnostic.file)), markup=False)
    errors = sum(d.severity == "error" for d in report.diagnostics)
    if report.network is None and not errors:
        return
    if errors:
        err.print(f"{errors} error{'s' if errors != 1 else ''}; nothing to report until "
                  f"{'it is' if errors == 1 else 'they are'} fixed", markup=False, highlight=False)
        return
    title = f"{report.network}" + (f" ({report.variant})" if report.variant else "")
    table = Table(title=f"{title}: input {_shape(report.input)} (C×H×W), batch {report.batch}", title_justify="left")
    table.add_column("line", justify="right")
    table.add_column("layer")
    table.add_column("op")
    table.add_column("output (C×H×W)")
    table.add_column("params", justify="right")
    table.add_column(f"MACs per sample ({report.convention})", justify="right")
    current_row = None
    detailed = len(report.layers) <= MAX_DETAILED  # rich takes seconds over thousands of rows
    for layer in report.layers:
        if layer.row_line is not None and (layer.row_line, layer.row_file) != current_row:
            current_row = (layer.row_line, layer.row_file)
            row_layers = [l for l in report.layers if (l.row_line, l.row_file) == current_row]
            source = report.sources.get(layer.row_file, "").splitlines()
            text = " ".join(source[layer.row_line - 1].split()) if 0 < layer.row_line <= len(source) else ""
            table.add_row(str(layer.row_line), text, "", _shape(row_layers[-1].output_shape),
                          f"{sum(l.params for l in row_layers):,}", f"{sum(l.macs for l in row_layers):,}",
                          style="bold")
        if not detailed and layer.row_line is not None:
            continue
        indent = "  " if layer.row_line is not None else ""
        table.add_row("" if layer.row_line is not None else str(layer.line), indent + layer.name,
                      layer.op + (" (aux)" if layer.aux else ""), _shape(layer.output_shape),
                      f"{layer.params:,}" if layer.params else "", f"{layer.macs:,}" if layer.macs else "")
    out.print(table)
    if not detailed:
        out.print(f"({len(report.layers):,} layers: each table row is shown as one line; --json lists every layer)",
                  markup=False)
    m = report.memory
    lines = [
        f"output shape:               {_shape(report.output_shape)}",
        f"params:                     {report.params:,} (trainable {report.trainable_params:,}; "
        f"buffers {report.buffers:,})",
        f"{f'mult-adds (batch {report.batch}):':<28}{report.macs:,} ({report.macs / 1e9:.2f} G, {report.convention})",
        f"input size (MB):            {m.input_mb:.2f}",
        f"forward/backward pass (MB): {m.forward_backward_mb:.2f}",
        f"params size (MB):           {m.params_mb:.2f}",
        f"estimated total (MB):       {m.total_mb:.2f}",
    ]
    if report.max_batch is not None:
        lines.append(f"largest batch in {report.memory_budget_bytes / 2**30:.2f} GiB: {report.max_batch:,}")
    out.print("\n".join(lines), markup=False)
