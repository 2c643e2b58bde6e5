"""Human output of `archc check`: diagnostics, then each table row with the
layers under it, then totals, memory and a training step's memory (rich tables);
with `--rf` each row's and layer's receptive field, with `--taps` the feature
taps, with `--convention all` every counting convention side by side."""

from __future__ import annotations

import sys

from .compiler.check import Report

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


def print_report(report: Report, file=None, rf: bool = False, taps: bool = False) -> None:
    from rich.console import Console
    from rich.table import Table

    out = Console(file=file or sys.stdout, highlight=False,
                  width=200 if report.conventions is not None else 160 if rf or taps else 140)
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
    hw = report.input[1:]
    title = f"{report.network}" + (f" ({report.variant})" if report.variant else "")
    table = Table(title=f"{title}: input {_shape(report.input)} (C×H×W), batch {report.batch}", title_justify="left")
    table.add_column("line", justify="right")
    table.add_column("layer")
    table.add_column("op")
    table.add_column("output (C×H×W)")
    table.add_column("params", justify="right")
    table.add_column(f"MACs per sample ({report.convention})", justify="right")
    if rf:
        table.add_column("RF (jump)", justify="right")
    rows = {(r.file, r.line): r for r in report.rows}
    current_row = None
    detailed = len(report.layers) <= MAX_DETAILED  # rich takes seconds over thousands of rows
    for layer in report.layers:
        if layer.row_line is not None and (layer.row_line, layer.row_file) != current_row:
            current_row = (layer.row_line, layer.row_file)
            row = rows[layer.row_file, layer.row_line]
            source = report.sources.get(layer.row_file, "").splitlines()
            text = " ".join(source[layer.row_line - 1].split()) if 0 < layer.row_line <= len(source) else ""
            cells = [str(layer.row_line), text, "", _shape(row.output_shape), f"{row.params:,}", f"{row.macs:,}"]
            table.add_row(*cells, *([_field(row.rf, hw)] if rf else []), style="bold")
        if not detailed and layer.row_line is not None:
            continue
        indent = "  " if layer.row_line is not None else ""
        table.add_row("" if layer.row_line is not None else str(layer.line), indent + layer.name,
                      layer.op + (" (aux)" if layer.aux else ""), _shape(layer.output_shape),
                      f"{layer.params:,}" if layer.params else "", f"{layer.macs:,}" if layer.macs else "",
                      *([_field(layer.rf, hw)] if rf else []))
    out.print(table)
    if not detailed:
        out.print(f"({len(report.layers):,} layers: each table row is shown as one line; --json lists every layer)",
                  markup=False)
    if taps:
        _print_taps(out, report, hw)
    if report.conventions is not None:
        _print_conventions(out, report)
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
    t = report.training
    if t is not None:
        recipe = f"{'bf16 autocast' if t.amp else 'fp32'}, {t.optimizer}" + (
            f" (momentum {t.momentum:g})" if t.optimizer in ("sgd", "rmsprop") else "")
        lines += [
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
    lines += report.explained
    out.print("\n".join(lines), markup=False)


def _print_taps(out, report: Report, hw) -> None:
    from rich.table import Table

    table = Table(title="feature taps (archc.build(..., features=[names]))", title_justify="left")
    for column in ("tap", "layer", "channels", "reduction", "map (H×W)", "RF (jump)"):
        table.add_column(column, justify="right" if column in ("channels", "reduction") else "left")
    for tap in report.taps:
        table.add_row(tap.name + (" (output)" if tap.output else ""), tap.layer, str(tap.channels), str(tap.reduction),
                      _shape(tap.shape[1:]), _field(tap.rf, hw))
    out.print(table)


# What each convention counts, for the table's reader (compiler/conventions.py has the rules)
COUNTS = {
    "torchinfo": "conv and linear weights × positions; batch norm's weight and bias once",
    "thop": "conv and linear without bias; BN 4/elem; avgpool 1/out; adaptive pool",
    "fvcore": "conv and linear without bias; BN 2/elem; adaptive pool 1/in; no activations",
    "ptflops": "conv and linear with bias; BN 2/elem; ReLU, GELU, pools twice; SiLU",
    "calflops": "conv and linear MACs only",
    "calflops-flops": "2 per MAC, conv bias; BN 2/elem; pools; ReLU, SiLU, GELU, LeakyReLU",
}


def _print_conventions(out, report: Report) -> None:
    from rich.table import Table

    c = report.conventions
    names = list(c.totals)
    table = Table(title=f"every counting convention (batch {report.batch}; G = 10⁹)", title_justify="left")
    table.add_column("kind")
    for name in names:
        table.add_column(f"{name} ({c.units[name]})", justify="right")
    for kind in c.kinds:
        table.add_row(kind.kind, *[f"{kind.counts[n] / 1e9:.4f} G" if kind.counts[n] else "–" for n in names])
    table.add_row("total", *[f"{c.totals[n] / 1e9:.4f} G" for n in names], style="bold")
    out.print(table)
    for name in names:
        out.print(f"  {name}: {COUNTS[name]}", markup=False)
    for figure in c.published:
        out.print(f"  published: {figure.value / 1e9:.3f} G — {figure.source}", markup=False)
