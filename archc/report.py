"""Human output of `archc check`: diagnostics (in reading order), then each table row with the
layers under it, then totals, memory and a training step's memory; with `rf` each row's and
layer's receptive field, with `taps` the feature taps, with `--convention all` every counting
convention side by side. Plain text fitted to the terminal (archc/textable.py).

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


def _field(rf, input_hw) -> str:
    """`11×11 (4)`: size and jump; `all (32)` where every output sees the whole input."""
    if rf is None:
        return "irregular"
    whole = all(s <= 0 and s + r >= n for s, r, n in zip(rf.start, rf.size, input_hw))
    size = "all" if whole else (f"{rf.size[0]}" if rf.size[0] == rf.size[1] else _shape(rf.size))
    size = f"{size}×{size}" if size.isdigit() else size
    jump = str(rf.jump[0]) if rf.jump[0] == rf.jump[1] else _shape(rf.jump)
    return f"{size} ({jump})"


def _mb(n: int) -> str:
    return f"{n / 1e6:,.2f}"


def print_report(report: Report, file=None, compact: bool = False, rf: bool = False, taps: bool = False) -> None:
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
    table = layer_table(report, detailed, rf)
    print("\n".join(table.lines(width, bold=wants_bold(out))), file=out)
    if not detailed:
        why = "" if compact else f"{len(report.layers):,} layers: "
        print(f"({why}each table row is shown as one line; --json lists every layer)", file=out)
    elif table.overflows:
        print(f"(wider than {width} columns: --compact shows one line per table row)", file=out)
    if taps:
        print("\n".join(["feature taps (archc.build(..., features=[names]))", *taps_table(report).lines(width)]),
              file=out)
    if report.conventions is not None:
        print("\n".join(conventions_lines(report, width)), file=out)
    print("\n".join(totals(report)), file=out)


def layer_table(report: Report, detailed: bool, rf: bool = False) -> Table:
    """A bold line per table row (its source line, its cells, its output, its params and MACs summed),
    then, when `detailed`, the row's layers; a line per layer made outside a table. `rf`: a column of
    receptive fields (size and jump)."""
    table = Table([Column("line", right=True), Column("layer", cut=True), Column("op"), Column("output"),
                   Column("params", right=True), Column("MACs", right=True)]
                  + ([Column("RF (jump)", right=True)] if rf else []))
    rows, hw = {(r.file, r.line): r for r in report.rows}, report.input[1:]
    field_of = (lambda x: [_field(x.rf, hw)]) if rf else (lambda x: [])
    for group in _groups(report.layers):
        first, last = group[0], group[-1]
        params, macs = _count(sum(l.params for l in group)), _count(sum(l.macs for l in group))
        if first.row_line is not None:
            text = source_line(report.sources.get(first.row_file), first.row_line) or ""
            table.add([str(first.row_line), printable(" ".join(text.split())), "", _shape(last.output_shape),
                       params, macs, *field_of(rows[first.row_file, first.row_line])], bold=True)
        if first.row_line is None and not detailed and len(group) > 1:  # a statement that made several layers
            table.add(["", _statement(first.name), f"{len(group)} layers" + (" (aux)" if first.aux else ""),
                       _shape(last.output_shape), params, macs, *field_of(last)], cut=False)
        elif detailed or first.row_line is None:
            for layer in group:
                in_row = layer.row_line is not None
                table.add(["" if in_row else str(layer.line), ("  " if in_row else "") + layer.name,
                           layer.op + (" (aux)" if layer.aux else ""), _shape(layer.output_shape),
                           _count(layer.params), _count(layer.macs), *field_of(layer)], cut=False)
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
        lines.append(f"largest batch in {report.memory_budget_bytes / 2**30:.2f} GiB: {report.max_batch:,}"
                     + (f" (a multiple of {report.batch_multiple})" if report.batch_multiple > 1 else ""))
    return lines + training_lines(report) + list(report.explained)


def training_lines(report: Report) -> list[str]:
    t = report.training
    if t is None:
        return []
    recipe = f"{'bf16 autocast' if t.amp else 'fp32'}, {t.optimizer}" + (
        f" (momentum {t.momentum:g})" if t.optimizer in ("sgd", "rmsprop") else "")
    lines = [
        f"training step (batch {t.batch}, {recipe}), MB:",
        f"  saved for backward:       {_mb(t.saved_bytes)} (exact; the loss {_mb(t.loss_saved_bytes)})",
        f"  weights, gradients:       {_mb(t.params_bytes + t.buffers_bytes)}, {_mb(t.gradients_bytes)}",
        f"  optimizer state:          {_mb(t.optimizer_bytes)}",
        f"  backward's working set:   {_mb(t.transient_bytes)}",
        f"  estimated peak:           {_mb(t.peak_bytes)}",
    ]
    if t.max_batch is not None:
        lines.append(f"largest training batch in {report.memory_budget_bytes / 2**30:.2f} GiB: {t.max_batch:,} "
                     f"(assuming {t.cuda_context_bytes / 2**20:.0f} MiB for the CUDA context and the allocator "
                     f"holding {t.allocator_overhead:g}× the batch's tensors)")
    return lines


def taps_table(report: Report) -> Table:
    """The feature taps (archc.build(..., features=[names]))."""
    hw = report.input[1:]
    table = Table([Column("feature tap"), Column("layer", cut=True), Column("channels", right=True),
                   Column("reduction", right=True), Column("map (H×W)"), Column("RF (jump)")])
    for tap in report.taps:
        table.add([tap.name + (" (output)" if tap.output else ""), tap.layer, str(tap.channels), str(tap.reduction),
                   _shape(tap.shape[1:]), _field(tap.rf, hw)], cut=False)
    return table


# What each convention counts, for the table's reader (compiler/conventions.py has the rules)
COUNTS = {
    "torchinfo": "conv and linear weights × positions; batch norm's weight and bias once",
    "thop": "conv and linear without bias; BN 4/elem; avgpool 1/out; adaptive pool",
    "fvcore": "conv and linear without bias; BN 2/elem; adaptive pool 1/in; no activations",
    "ptflops": "conv and linear with bias; BN 2/elem; ReLU, GELU, pools twice; SiLU",
    "calflops": "conv and linear MACs only",
    "calflops-flops": "2 per MAC, conv bias; BN 2/elem; pools; ReLU, SiLU, GELU, LeakyReLU",
}


def conventions_lines(report: Report, width: int | None) -> list[str]:
    """Every counting convention side by side, per kind of layer (G = 10⁹), what each counts, and the
    published figures."""
    c = report.conventions
    names = list(c.totals)
    table = Table([Column("kind")] + [Column(f"{name} ({c.units[name]})", right=True) for name in names])
    for kind in c.kinds:
        table.add([kind.kind, *[f"{kind.counts[n] / 1e9:.4f} G" if kind.counts[n] else "–" for n in names]])
    table.add(["total", *[f"{c.totals[n] / 1e9:.4f} G" for n in names]], bold=True)
    lines = [f"every counting convention (batch {report.batch}; G = 10⁹)", *table.lines(width)]
    lines += [f"  {name}: {COUNTS[name]}" for name in names]
    return lines + [f"  published: {figure.value / 1e9:.3f} G — {figure.source}" for figure in c.published]
