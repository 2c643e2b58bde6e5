"""Human output of `archc check`: diagnostics (in reading order), then each table row with the
layers under it, then totals and memory; plain text fitted to the terminal (archc/textable.py).

`compact=True` shows one line per table row and per statement outside a table, as a network of
more than MAX_DETAILED layers is always shown.
"""

from __future__ import annotations

import sys

from .compiler.check import LayerReport, Report
from .dsl.diagnostics import render_all
from .dsl.source import printable, source_line
from .textable import Column, Table, terminal_width, title, wants_bold

MAX_DETAILED = 600  # layers; above it, table rows are shown without the layers under them


def _shape(shape: list[int]) -> str:
    return "×".join(str(d) for d in shape)


def print_report(report: Report, file=None, compact: bool = False) -> None:
    out, err = file or sys.stdout, file or sys.stderr
    if report.diagnostics:
        print(render_all(report.diagnostics, report.sources), file=err)
    errors = sum(d.severity == "error" for d in report.diagnostics)
    if report.network is None and not errors:
        return
    if errors:
        print(f"{errors} error{'s' if errors != 1 else ''}; nothing to report until "
              f"{'it is' if errors == 1 else 'they are'} fixed", file=err)
        return
    detailed = not compact and len(report.layers) <= MAX_DETAILED
    name, width = f"{report.network}" + (f" ({report.variant})" if report.variant else ""), terminal_width(out)
    print(title([f"{name}: input {_shape(report.input)} (C×H×W), batch {report.batch}",
                 f"MACs per sample, counted as {report.convention}"], width), file=out)
    table = layer_table(report, detailed)
    print("\n".join(table.lines(width, bold=wants_bold(out))), file=out)
    if not detailed:
        why = "" if compact else f"{len(report.layers):,} layers: "
        print(f"({why}each table row is shown as one line; --json lists every layer)", file=out)
    elif table.overflows:
        print(f"(wider than {width} columns: --compact shows one line per table row)", file=out)
    print("\n".join(totals(report)), file=out)


def layer_table(report: Report, detailed: bool) -> Table:
    """A bold line per table row (its source line, its cells, its output, its params and MACs summed),
    then, when `detailed`, the row's layers; a line per layer made outside a table."""
    table = Table([Column("line", right=True), Column("layer", cut=True), Column("op"), Column("output"),
                   Column("params", right=True), Column("MACs", right=True)])
    for group in _groups(report.layers):
        first, last = group[0], group[-1]
        params, macs = _count(sum(l.params for l in group)), _count(sum(l.macs for l in group))
        if first.row_line is not None:
            text = source_line(report.sources.get(first.row_file), first.row_line) or ""
            table.add([str(first.row_line), printable(" ".join(text.split())), "", _shape(last.output_shape),
                       params, macs], bold=True)
        if first.row_line is None and not detailed and len(group) > 1:  # a statement that made several layers
            table.add(["", _statement(first.name), f"{len(group)} layers" + (" (aux)" if first.aux else ""),
                       _shape(last.output_shape), params, macs], cut=False)
        elif detailed or first.row_line is None:
            for layer in group:
                in_row = layer.row_line is not None
                table.add(["" if in_row else str(layer.line), ("  " if in_row else "") + layer.name,
                           layer.op + (" (aux)" if layer.aux else ""), _shape(layer.output_shape),
                           _count(layer.params), _count(layer.macs)], cut=False)
    return table


def _groups(layers: list[LayerReport]) -> list[list[LayerReport]]:
    """Consecutive layers of one table row, or of one statement outside a table."""
    groups: list[list[LayerReport]] = []
    for layer in layers:
        if groups and _key(groups[-1][0]) == _key(layer):
            groups[-1].append(layer)
        else:
            groups.append([layer])
    return groups


def _key(layer: LayerReport) -> tuple:
    return (layer.row_file, layer.row_line) if layer.row_line is not None else (None, _statement(layer.name))


def _statement(name: str) -> str:
    """The module path of the statement a layer outside a table came from: `classifier.0`, `aux1`."""
    parts = name.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 and parts[1].isdigit() else parts[0]


def _count(n: int) -> str:
    return f"{n:,}" if n else ""


def totals(report: Report) -> list[str]:
    m = report.memory
    lines = [
        f"output shape:               {_shape(report.output_shape)}",
        f"params:                     {report.params:,} (trainable {report.trainable_params:,}; "
        f"buffers {report.buffers:,})",
        f"{f'mult-adds (batch {report.batch}):':<28}{report.macs:,} ({report.macs / 1e9:.3g} G, {report.convention})",
        f"input size (MB):            {m.input_mb:.2f}",
        f"forward/backward pass (MB): {m.forward_backward_mb:.2f}",
        f"params size (MB):           {m.params_mb:.2f}",
        f"estimated total (MB):       {m.total_mb:.2f}",
    ]
    if report.max_batch is not None:
        lines.append(f"largest batch in {report.memory_budget_bytes / 2**30:.2f} GiB: {report.max_batch:,}")
    return lines
