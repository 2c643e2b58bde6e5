"""Does `archc check`'s training memory match what a training step really holds?

A benchmark, not a test: run it by hand on the machine you want figures for.

    python benchmarks/train_memory.py                # print the tables
    python benchmarks/train_memory.py --write        # also update benchmarks/RESULTS.md
    python benchmarks/train_memory.py --only resnet50 mobilenet_v3_large

Two comparisons (issue 13):

* Saved for backward, on the CPU: for each zoo network at its default input, batch 2, in float32 and
  under bfloat16 autocast, the static figure (compiler/train_memory.py's `saved_bytes`, what
  `archc check --batch 2` reports) against the bytes of the distinct storages that
  `torch.autograd.graph.saved_tensors_hooks` records in one real training step of the built module
  (runtime/saved_tensors.py, the oracle tests/test_train_memory.py uses). The ratio must be exactly 1.000;
  the script exits 1 where it is not. A network whose static float32 figure is over `--max-gib` is
  left out with a line saying so (the step would hold that much memory on a shared machine).
* The training peak, on a GPU only: for resnet50, mobilenet_v3_large and efficientnet b0 at batch 256 in
  bfloat16 (channels_last, AdamW: `archc train`'s defaults), `step_memory(...).peak` against
  `torch.cuda.max_memory_allocated` over two training steps; the issue's bound is 10%. Without a GPU the
  section says so.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import platform
import sys
import time
from pathlib import Path

import common  # benchmarks/ is this script's own folder
import torch
from archc.compiler.check import build_graph
from archc.compiler.train_memory import Recipe, saved_bytes, step_memory
from archc.runtime.saved_tensors import measured_saved_bytes

import archc

ROOT = Path(__file__).resolve().parents[1]
RESULTS = common.RESULTS

NAME = "train_memory"
ZOO = ROOT / "architectures"
# (label, file, variant): the zoo of issues 1-9, then a network of each newer family
NETWORKS = [
    ("nin", "nin.arch", None), ("nin_v1", "nin_v1.arch", None), ("nin_v2", "nin_v2.arch", None),
    ("mobilenet_v3_small", "mobilenet_v3_small.arch", None), ("mobilenet_v3_large", "mobilenet_v3_large.arch", None),
    *[(f"resnet{d}", "resnet.arch", f"resnet{d}") for d in (18, 34, 50, 101, 152)],
    ("googlenet", "googlenet.arch", None), ("inception_v3", "inception_v3.arch", None),
    *[(f"efficientnet_b{i}", "efficientnet.arch", f"b{i}") for i in range(8)],
    ("alexnet", "alexnet.arch", None), ("vgg11_bn", "vgg.arch", "vgg11_bn"),
    ("squeezenet1_1", "squeezenet.arch", "squeezenet1_1"), ("densenet121", "densenet.arch", "densenet121"),
    ("mobilenet_v2", "mobilenet_v2.arch", None), ("mnasnet1_0", "mnasnet.arch", "mnasnet1_0"),
    ("resnext50_32x4d", "resnext.arch", "resnext50_32x4d"), ("wide_resnet50_2", "wide_resnet.arch", "wide_resnet50_2"),
    ("efficientnet_v2_s", "efficientnet_v2.arch", "s"), ("regnet_y_400mf", "regnet.arch", "regnet_y_400mf"),
]
CUDA_NETWORKS = [("resnet50", "resnet.arch", "resnet50"), ("mobilenet_v3_large", "mobilenet_v3_large.arch", None),
                 ("efficientnet_b0", "efficientnet.arch", "b0")]
RECIPES = {"fp32": Recipe(), "bf16": Recipe(amp=True)}


def mib(n: int) -> str:
    return f"{n / 2**20:,.1f}"


def cpu_rows(networks, batch: int, max_gib: float) -> tuple[list[str], list[str], list[str]]:
    """(table rows, networks left out, mismatches)."""
    rows, skipped, bad = [], [], []
    for label, file, variant in networks:
        graph = build_graph(ZOO / file, variant=variant)
        static = {key: saved_bytes(graph, recipe).total(batch) for key, recipe in RECIPES.items()}
        if static["fp32"] > max_gib * 2**30:
            skipped.append(f"{label} ({'×'.join(map(str, graph.input_shape))}): static float32 figure "
                           f"{mib(static['fp32'])} MiB at batch {batch}, over --max-gib {max_gib:g}")
            continue
        model = archc.build(ZOO / file, variant=variant)
        cells = []
        start = time.perf_counter()
        for key, recipe in RECIPES.items():
            real = measured_saved_bytes(model, graph.input_shape, batch, recipe.amp, recipe.channels_last)
            ratio = static[key] / real
            if static[key] != real:
                bad.append(f"{label} {key}: static {static[key]:,} B, measured {real:,} B")
            cells.append(f"{static[key]:,} | {real:,} | {'**' if static[key] != real else ''}{ratio:.3f}"
                         f"{'**' if static[key] != real else ''}")
        shape = "×".join(map(str, graph.input_shape))
        rows.append(f"| {label} | {shape} | " + " | ".join(cells) + f" | {time.perf_counter() - start:.1f} s |")
        print(rows[-1], file=sys.stderr, flush=True)
        del model
    return rows, skipped, bad


def cuda_rows(batch: int) -> list[str]:
    """The predicted training peak against torch.cuda.max_memory_allocated, two AdamW steps each."""
    from types import SimpleNamespace

    from archc.runtime.trainer import _loss

    recipe = Recipe(amp=True, channels_last=True, optimizer="adamw")
    plan = SimpleNamespace(cfg=SimpleNamespace(label_smoothing=0.0, aux_weight=0.3))
    rows = []
    for label, file, variant in CUDA_NETWORKS:
        graph = build_graph(ZOO / file, variant=variant)
        predicted = step_memory(graph, batch, recipe).peak
        model = archc.build(ZOO / file, variant=variant).cuda().to(memory_format=torch.channels_last).train()
        opt = torch.optim.AdamW(model.parameters())
        x = torch.rand(batch, *graph.input_shape, device="cuda").contiguous(memory_format=torch.channels_last)
        y = torch.randint(0, 1000, (batch,), device="cuda")
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        for _ in range(2):
            with torch.autocast("cuda", dtype=torch.bfloat16):
                loss, _ = _loss(plan, model(x), y)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated()
        ratio = predicted / peak
        rows.append(f"| {label} | {batch} | {mib(predicted)} | {mib(peak)} | {ratio:.3f} "
                    f"| {'within' if abs(ratio - 1) <= 0.10 else '**outside**'} 10% |")
        print(rows[-1], file=sys.stderr, flush=True)
        del model, opt, x, y, loss
        torch.cuda.empty_cache()
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=2, help="the CPU comparison's batch (default 2)")
    ap.add_argument("--cuda-batch", type=int, default=256, help="the GPU comparison's batch (default 256)")
    ap.add_argument("--max-gib", type=float, default=4.0,
                    help="leave out networks whose static float32 saved figure is over this (default 4)")
    ap.add_argument("--only", nargs="+", metavar="NET", help="only these networks (labels as in the table)")
    ap.add_argument("--write", action="store_true", help=f"update {RESULTS.relative_to(ROOT)}")
    args = ap.parse_args(argv)
    networks = [n for n in NETWORKS if not args.only or n[0] in args.only]
    if args.only and len(networks) != len(args.only):
        known = ", ".join(n[0] for n in NETWORKS)
        ap.error(f"unknown network in --only; known: {known}")

    torch.set_num_threads(len(os.sched_getaffinity(0)))
    load_before = os.getloadavg()[0]
    revision = common.git_revision()
    start = time.perf_counter()
    rows, skipped, bad = cpu_rows(networks, args.batch, args.max_gib)
    seconds = time.perf_counter() - start
    equal = len(rows) * len(RECIPES) - len(bad)
    verdict = (f"**All {equal} figures equal: ratio 1.000 on every network measured.**" if not bad else
               f"**MISMATCH on {len(bad)} of {len(rows) * len(RECIPES)} figures:** " + "; ".join(bad))
    today = _dt.date.today().isoformat()
    cpu_block = "\n".join([
        "### Saved for backward, CPU",
        "",
        (f"Measured {today} by `python benchmarks/train_memory.py{' --only ' + ' '.join(args.only) if args.only else ''} "
         f"--write` ({seconds:.0f} s): "
         f"{common.cpu_name()}, {len(os.sched_getaffinity(0))} cores, {platform.system()} {platform.release()}, "
         f"load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after; torch {torch.__version__}, "
         f"Python {platform.python_version()}; archc at commit {revision}."),
        "",
        (f"Batch {args.batch}, each network at its default input, one training step (train mode, the trainer's "
         "loss, backward). *Static*: `saved_bytes(graph, recipe).total(batch)` (compiler/train_memory.py; "
         "`archc check --batch 2` reports it as \"saved for backward\"). *Measured*: the distinct storages "
         "`torch.autograd.graph.saved_tensors_hooks` records, less the parameters and buffers "
         "(runtime/saved_tensors.py). bf16: `torch.autocast(\"cpu\", dtype=torch.bfloat16)`. Bytes; ratio = "
         "static / measured."),
        "",
        verdict,
        "",
        "| network | input | fp32 static | fp32 measured | ratio | bf16 static | bf16 measured | ratio | time |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
        *rows,
        *(["", "Left out (too large to train on this shared machine):", "",
           *[f"- {s}" for s in skipped]] if skipped else []),
        *(["", (f"Not measured in this run (`--only`, to keep it to minutes on this shared CPU): "
                f"{', '.join(n[0] for n in NETWORKS if n not in networks)}. "
                "tests/test_train_memory.py's slow tests compare the old zoo at batches 2 and 3.")]
           if len(networks) < len(NETWORKS) else []),
    ])

    if torch.cuda.is_available():
        gpu = torch.cuda.get_device_name()
        cuda = "\n".join([
            "### Training peak, GPU", "",
            (f"Measured {today} on {gpu}, torch {torch.__version__}, archc at commit {revision}: batch "
             f"{args.cuda_batch}, bfloat16 autocast, channels_last, AdamW, two steps; predicted = "
             "`step_memory(graph, batch, recipe).peak`, measured = `torch.cuda.max_memory_allocated()`."), "",
            "| network | batch | predicted MiB | measured MiB | ratio | issue 13's bound |",
            "|---|---:|---:|---:|---:|---|",
            *cuda_rows(args.cuda_batch),
        ])
    else:
        cuda = ("### Training peak, GPU\n\n*Not measured: no GPU on the machine of the last run "
                f"({common.cpu_name()}, {today}). Run `python benchmarks/train_memory.py --write` where one is.*")
    print(cpu_block + "\n\n" + cuda)

    if args.write:
        parts = common.mode_parts(NAME)
        for mode, block in (("cpu", cpu_block), ("cuda", cuda)):
            if mode == "cuda" and not torch.cuda.is_available() and "cuda" in parts:
                continue  # keep a GPU run's figures when this machine has none
            b, e = common.markers(NAME, mode)
            parts[mode] = f"{b}\n{block}\n{e}"
        begin, end = common.markers(NAME)
        common.write_section(NAME, "\n".join([begin, "## Training memory: static figure vs a real training step", "",
                                       parts["cpu"], "", parts["cuda"], end]))
        print(f"wrote {RESULTS.relative_to(ROOT)}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
