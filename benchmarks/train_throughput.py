"""How fast does archc train: the emitted networks' step rate against torchvision's, and an
epoch from JPEG files against the step rate on data already in memory (issue 5, item 7).

A benchmark, not a test: run it by hand on the machine you want figures for.

    python benchmarks/train_throughput.py                        # CPU, small: batch 8, 128 px, fp32, eager
    python benchmarks/train_throughput.py --device cuda --write  # GPU: batch 256, 224 px, bf16; updates RESULTS.md

(a) Step rate. A training step is zero_grad, forward under autocast (bf16 on the GPU), cross
entropy on random labels, backward and an SGD step (momentum 0.9; fused on the GPU), on one
fixed batch (channels_last on the GPU), as in the issue's reference figures. For each network
four models train side by side from the same weights: archc's (`archc.build` of the zoo file)
and torchvision's, each eager and under `torch.compile` (on CPU eager only unless --compile:
compiling on a 2-core machine takes minutes). After warm-up (which includes compiling), the
timed part runs in interleaved rounds: each round times a block of steps of every model, in
an order rotated each round, so drift in the machine's load falls on all alike. img/s =
batch × steps / wall time of the block (synchronised at both ends); the report gives the median
over rounds and the spread. Target (issue 5): archc under the trainer's default (compiled on a
GPU, eager on CPU) at least the better of torchvision's eager and compiled rates.

(b) End to end. N JPEGs of 500×375 (PIL, quality 90, smooth random content), in a class-per-
folder tree in a temporary folder, are trained on for whole epochs by one network (default
mobilenet_v3_small, the fastest, so the most demanding on the data path), with the same step
as (a) under the trainer's default, through:
  * the trainer's data paths: its default where the cache fits, the folder decoded once (on a
    GPU with nvjpeg) into a uint8 cache on the device (runtime/cache.py) and batches cropped,
    flipped and normalised there (runtime/batches.py, runtime/augment.py); and its fallback
    where the cache does not fit, PIL in DataLoader workers;
  * the standard recipe: torchvision ImageFolder + RandomResizedCrop + RandomHorizontalFlip
    + ToTensor + Normalize in DataLoader workers (one per core), pinned memory.
img/s of an epoch is images / wall time from its first batch asked for to the last step
synchronised. Preparing (scanning the folder, filling the cache) and the first epoch (which
starts workers) are reported apart from the steady epochs after them. The steady epochs are
compared with the same model's synthetic step rate, measured in the same run. Target: end to
end at least 90% of the step rate.

archc's default. On a GPU `archc train` runs `--compile auto` (runtime/compile_trial.py): it times
eager and compiled steps on its first 32 steps and keeps the faster. So on a GPU, after the warm-up,
the same trial is run on archc's eager and compiled models, and the runner it keeps is the one judged
against torchvision (marked ◀); on CPU, the trainer's default is eager. (b) trains with the runner its
own trial keeps.

Run time: on CPU (eager, the defaults) a few minutes. On the GPU most of the time is torch.compile's:
eight compilations (four networks, archc's and torchvision's) plus one for (b), several minutes on a
16-core host, about 15 minutes in all; with --write the section is rewritten after (b) and after each
network, so a run stopped by a time limit keeps what it measured (and says what is missing). Pipe its
output through `grep --line-buffered`, not plain grep, or a killed run loses it. Where one command
may not run that long (the lent device: 10 minutes a command), split the run and merge the parts;
each row still comes from one run:

    cd benchmarks; B="python train_throughput.py --device cuda"
    $B --only resnet50 --save $OUT/1.json                                  # and (b)
    $B --images 0 --only efficientnet_b0 mobilenet_v3_large --save $OUT/2.json
    $B --images 0 --only mobilenet_v3_small --save $OUT/3.json
    python benchmarks/train_throughput.py --merge 1.json 2.json 3.json --write   # anywhere, later

`--write` replaces this mode's part (cpu or cuda) of the train_throughput section of
benchmarks/RESULTS.md and keeps the other mode's.
"""

from __future__ import annotations

import argparse
import copy
import datetime as _dt
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torchvision
from torch import nn

import archc

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # benchmarks/ is this script's own folder
    RESULTS,
    cpu_name,
    git_revision,
    markers,
    mode_parts,
    write_section,
)

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = markers("train_throughput")
STEP_TARGET = 1.00  # archc (trainer's default) / the better of torchvision eager and compiled
E2E_TARGET = 0.90  # end-to-end epoch img/s / synthetic step img/s

# network: (zoo file, build kwargs, torchvision builder, issue 5's H100 img/s for torchvision eager, compiled)
NETWORKS = {
    "resnet50": ("resnet.arch", {"variant": "resnet50"}, torchvision.models.resnet50, (3995, 5661)),
    "mobilenet_v3_large": ("mobilenet_v3_large.arch", {}, torchvision.models.mobilenet_v3_large, (7680, 8489)),
    "efficientnet_b0": ("efficientnet.arch", {"variant": "b0"}, torchvision.models.efficientnet_b0, (4542, 6198)),
    "mobilenet_v3_small": ("mobilenet_v3_small.arch", {}, torchvision.models.mobilenet_v3_small, (10589, 9022)),
}


# --- (a) step rate ------------------------------------------------------------------------------


@dataclass
class Runner:
    label: str  # "archc eager", "torchvision compiled", ...
    step: Callable[[torch.Tensor, torch.Tensor], None]
    rates: list[float] = field(default_factory=list)  # img/s per round
    warmup_s: float = 0.0  # the warm-up steps, compiling included
    default: bool = False  # what the trainer runs by default (on a GPU: what its compile trial kept)

    @property
    def median(self) -> float:
        return statistics.median(self.rates)


def training_step(model: nn.Module, device: str) -> Callable[[torch.Tensor, torch.Tensor], None]:
    """The step of the issue's reference figures: autocast bf16 on the GPU, SGD momentum 0.9, fused there."""
    cuda = device == "cuda"
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, **({"fused": True} if cuda else {}))

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=cuda):
            loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()

    return step


def prepare(model: nn.Module, device: str) -> nn.Module:
    model.train()
    return model.to(device, memory_format=torch.channels_last) if device == "cuda" else model


def networks_pair(key: str, size: int) -> tuple[nn.Module, nn.Module]:
    """archc's network and torchvision's, with the same weights (archc.port checks every tensor's shape)."""
    arch, kwargs, reference, _ = NETWORKS[key]
    torch.manual_seed(0)
    theirs = reference()
    ours = archc.build(archc.zoo_path(arch), input=f"3x{size}x{size}", **kwargs)
    archc.port(ours, theirs)
    return ours, theirs


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def synthetic_batch(batch: int, size: int, classes: int, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(2)
    x = torch.randn(batch, 3, size, size, generator=g).to(device)
    y = torch.randint(0, classes, (batch,), generator=g).to(device)
    return (x.contiguous(memory_format=torch.channels_last) if device == "cuda" else x), y


def time_block(step, x, y, steps: int, device: str) -> float:
    """img/s of `steps` steps, synchronised at both ends."""
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step(x, y)
    sync(device)
    return x.shape[0] * steps / (time.perf_counter() - start)


def trial_pick(steps: dict[str, Callable], x, y, device: str) -> tuple[str, dict[str, float]]:
    """("eager" or "compiled", the trial's img/s of each): what the trainer's default on a GPU
    (`compile = "auto"`) keeps, by its own trial (runtime/compile_trial.py) run on these steps."""
    from archc.runtime.compile_trial import CompileTrial

    trial = CompileTrial(sync=lambda: sync(device))
    while trial.chosen is None:
        name = trial.next()
        steps[name](x, y)
        trial.done(x.shape[0])
    return trial.chosen, trial.rates()


def warm(runner: Runner, x, y, steps: int, device: str) -> None:
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        runner.step(x, y)
    sync(device)
    runner.warmup_s = time.perf_counter() - start


def step_rates(key: str, args) -> list[Runner]:
    """The four (or two) runners of one network, warmed up, then timed in interleaved rounds."""
    ours, theirs = networks_pair(key, args.size)
    x, y = synthetic_batch(args.batch, args.size, 1000, args.device)
    runners = []
    for label, model in (("archc", ours), ("torchvision", theirs)):
        runners.append(Runner(f"{label} eager", training_step(prepare(model, args.device), args.device)))
        if args.compile:
            compiled = torch.compile(prepare(copy.deepcopy(model), args.device))
            runners.append(Runner(f"{label} compiled", training_step(compiled, args.device)))
    for runner in runners:
        warm(runner, x, y, args.warmup, args.device)
        print(f"  {key}, {runner.label}: warm-up {runner.warmup_s:.1f} s", file=sys.stderr, flush=True)
    by = {r.label: r for r in runners}
    if args.default_auto and "archc compiled" in by:
        pick, rates = trial_pick({"eager": by["archc eager"].step, "compiled": by["archc compiled"].step},
                                 x, y, args.device)
        by[f"archc {pick}"].default = True
        print(f"  {key}: the trainer's compile trial keeps {pick} (eager {rates['eager']:,.0f}, "
              f"compiled {rates['compiled']:,.0f} img/s)", file=sys.stderr, flush=True)
    else:
        by["archc eager"].default = True
    for k in range(args.rounds):
        for runner in runners[k % len(runners):] + runners[:k % len(runners)]:
            runner.rates.append(time_block(runner.step, x, y, args.steps, args.device))
    for runner in runners:
        runner.step = None  # let the models and optimisers go
    return runners


def release() -> None:
    """Free the last network's memory and dynamo's caches: the next compile starts clean (inductor's disk
    cache stays), and Network.forward, one code object for every archc network, never meets dynamo's
    recompile limit."""
    import gc

    torch._dynamo.reset()
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


# --- (b) end to end -----------------------------------------------------------------------------


def write_jpegs(root: Path, n: int, classes: int = 4, size=(500, 375)) -> Path:
    """n JPEGs in root/class_i/: smooth random colour fields with mild noise, about a photo's file size."""
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np
    from PIL import Image

    def one(i: int) -> None:
        rng = np.random.default_rng(i)
        small = Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)).resize(size, Image.BICUBIC)
        pixels = np.asarray(small, dtype=np.int16) + rng.integers(-12, 13, (size[1], size[0], 3))
        folder = root / f"class_{i % classes}"
        Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(folder / f"{i:06d}.jpg", quality=90)

    for c in range(classes):
        (root / f"class_{c}").mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        list(pool.map(one, range(n)))
    return root


def recipe_loader(root: Path, batch: int, size: int, workers: int):
    """The standard PIL recipe the issue measured at about 1,600 img/s on the H100 machine's 16 cores."""
    from torchvision import datasets, transforms

    transform = transforms.Compose([transforms.RandomResizedCrop(size), transforms.RandomHorizontalFlip(),
                                    transforms.ToTensor(),
                                    transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    return torch.utils.data.DataLoader(datasets.ImageFolder(root, transform), batch_size=batch, shuffle=True,
                                       num_workers=workers, pin_memory=torch.cuda.is_available(), drop_last=True,
                                       persistent_workers=workers > 0, prefetch_factor=4 if workers > 0 else None)


def recipe_batches(loader, device: str):
    for x, y in loader:
        x = x.to(device, non_blocking=True)
        yield (x.contiguous(memory_format=torch.channels_last) if device == "cuda" else x), y.to(device)


def trainer_source(root: Path, args, cache: bool):
    """One of the trainer's data paths for the folder: (batch source, training positions, seconds spent
    preparing it, description), or None while the trainer's modules have not landed.

    cache: the folder decoded once into a uint8 tensor on the device (on a GPU with nvjpeg; `archc train`'s
    default where it fits), batches cut and augmented there; else PIL in DataLoader workers (its
    fallback). See runtime/cache.py and runtime/batches.py."""
    try:
        from archc.runtime.batches import LoaderBatches, TensorBatches
        from archc.runtime.cache import cache_pool
        from archc.runtime.data import eval_resize_for, folder_pool, normalization
    except ImportError:
        return None
    size = (args.size, args.size)
    eval_resize, normalize = eval_resize_for(size), normalization(3)
    augmentation = {"min_scale": 0.25, "flip": True, "jitter": 0.0}  # the trainer's defaults for a folder
    device = torch.device(args.device)
    sync(args.device)
    start = time.perf_counter()
    pool = folder_pool(root, 3, check_decode=False)
    if cache:
        pool = cache_pool(pool, eval_resize, device, workers=args.workers)
        source = TensorBatches(pool.images, pool.labels, size, normalize, **augmentation)
        what = (f"uint8 cache on the {'GPU (nvjpeg decoding)' if device.type == 'cuda' else 'CPU'}, "
                f"{len(pool)}×3×{eval_resize}², crops cut there")
        what += " (its default where the cache fits)"
    else:
        source = LoaderBatches(pool.files, pool.labels, 3, size, normalize, eval_resize, workers=args.workers,
                               pin=device.type == "cuda", **augmentation)
        what = f"PIL in {args.workers} DataLoader workers, no cache"
        what += " (its fallback where the cache does not fit)"
    sync(args.device)
    return source, torch.arange(len(pool)), time.perf_counter() - start, what


def trainer_batches(source, positions, batch: int, epoch: int, device: str):
    """One epoch of the source's batches, moved to the device as the trainer moves them."""
    for x, y in source.train_epoch(positions, batch, epoch, 0):
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        yield (x.contiguous(memory_format=torch.channels_last) if device == "cuda" else x), y


def epoch_rate(batches, step, device: str) -> tuple[float, int]:
    """(img/s, images) of one pass over `batches`, each followed by a training step."""
    sync(device)
    start, images = time.perf_counter(), 0
    for x, y in batches:
        step(x, y)
        images += x.shape[0]
    sync(device)
    return images / (time.perf_counter() - start), images


@dataclass
class EndToEnd:
    path: str
    first: float = float("nan")  # img/s of the first epoch
    steady: list[float] = field(default_factory=list)  # img/s of each later epoch
    images: int = 0
    prepare_s: float = 0.0  # before the first epoch: scanning the folder, filling a cache
    note: str = ""


def end_to_end(args) -> tuple[float, list[EndToEnd], float]:
    """(synthetic step img/s, the data paths measured, seconds to write the JPEGs) for args.e2e_network."""
    key, device = args.e2e_network, args.device
    ours, _ = networks_pair(key, args.size)
    model = prepare(ours, device)
    x, y = synthetic_batch(args.batch, args.size, 4, device)
    step = training_step(model, device)
    if args.default_auto:
        steps = {"eager": step, "compiled": training_step(torch.compile(copy.deepcopy(model)), device)}
        pick, _ = trial_pick(steps, x, y, device)
        step = steps[pick]
        print(f"  the trainer's compile trial keeps {pick}", file=sys.stderr, flush=True)
    for _ in range(args.warmup):
        step(x, y)
    results = []
    with tempfile.TemporaryDirectory(prefix="archc-jpegs-") as tmp:
        start = time.perf_counter()
        root = write_jpegs(Path(tmp), args.images)
        write_s = time.perf_counter() - start
        print(f"  wrote {args.images} JPEGs in {write_s:.1f} s", file=sys.stderr, flush=True)

        for cache in (True, False):
            trainer = EndToEnd("archc trainer")
            found = trainer_source(root, args, cache)
            if found is None:
                trainer.note = "pending: the trainer's data path (archc.runtime.batches/cache) has not landed"
            else:
                source, positions, trainer.prepare_s, what = found
                trainer.path += f": {what}"
                for epoch in range(1 + args.epochs):
                    rate, trainer.images = epoch_rate(trainer_batches(source, positions, args.batch, epoch, device),
                                                      step, device)
                    trainer.first = rate if epoch == 0 else trainer.first
                    trainer.steady += [rate] if epoch else []
                del source
            results.append(trainer)

        recipe = EndToEnd(f"standard recipe: ImageFolder + PIL in {args.workers} DataLoader workers")
        loader = recipe_loader(root, args.batch, args.size, args.workers)
        for epoch in range(1 + args.epochs):
            rate, recipe.images = epoch_rate(recipe_batches(loader, device), step, device)
            recipe.first = rate if epoch == 0 else recipe.first
            recipe.steady += [rate] if epoch else []
        results.append(recipe)
        del loader
    synthetic = statistics.median(time_block(step, x, y, args.steps, device) for _ in range(args.rounds))
    return synthetic, results, write_s


# --- report -------------------------------------------------------------------------------------


def fmt_rate(r: float) -> str:
    """img/s: whole numbers from 100 up, three significant digits below (CPU rates are small)."""
    if math.isnan(r):
        return "–"
    return f"{r:,.0f}" if r >= 100 else f"{r:.3g}"


def step_table(results: dict[str, list[Runner]], args) -> tuple[list[str], list[str]]:
    """Markdown lines of the step-rate table, and the networks that miss the target.

    Two ratios: of the medians, and the median over rounds of each round's own ratio (archc's default
    against the better torchvision runner, both timed in that round), which cancels drift in the
    machine's load. Met: both ≥ 1; within noise: one of them ≥ 1, or archc's best round reaches
    torchvision's median; else not met.
    """
    gpu = args.device == "cuda"
    labels = [r.label for r in next(iter(results.values()))]
    head = ("| network | " + " | ".join(labels)
            + " | archc default / better torchvision: medians | per-round ratios: median (min–max) | target ≥ 1.00 |")
    head += " issue's H100 torchvision eager / compiled |" if gpu else ""
    lines = [head, "|---|" + "---:|" * len(labels) + "---:|---:|:---:|" + ("---:|" if gpu else "")]
    missed = []
    for key, runners in results.items():
        default = next(r for r in runners if r.default)
        better = max((r for r in runners if r.label.startswith("torchvision")), key=lambda r: r.median)
        ratio = default.median / better.median
        rounds = [a / b for a, b in zip(default.rates, better.rates)]
        paired = statistics.median(rounds)
        if min(ratio, paired) >= STEP_TARGET:
            verdict = "met"
        elif max(ratio, paired) >= STEP_TARGET or max(default.rates) >= better.median:
            verdict = "within noise"
        else:
            verdict = "NOT met"
            missed.append(key)
        row = f"| {key} | " + " | ".join(
            f"{fmt_rate(r.median)} ({fmt_rate(min(r.rates))}–{fmt_rate(max(r.rates))}){' ◀' if r.default else ''}"
            for r in runners)
        row += f" | **{ratio:.3f}** | {paired:.3f} ({min(rounds):.3f}–{max(rounds):.3f}) | {verdict} |"
        row += " {:,} / {:,} |".format(*NETWORKS[key][3]) if gpu else ""
        lines.append(row)
    return lines, missed


def e2e_table(synthetic: float, results: list[EndToEnd]) -> list[str]:
    lines = [f"Synthetic step rate (same model, same step, a batch already on the device): **{synthetic:,.0f} img/s**.",
             "",
             ("| data path | preparing (s) | first epoch img/s (with preparing) | steady epochs img/s (median) "
             "| steady / step rate | target ≥ 0.90 |"),
             "|---|---:|---:|---:|---:|:---:|"]
    for r in results:
        if r.note:
            lines.append(f"| {r.path} | – | – | – | – | {r.note} |")
            continue
        steady = statistics.median(r.steady) if r.steady else float("nan")
        with_preparing = r.images / (r.prepare_s + r.images / r.first)
        ratio = steady / synthetic
        lines.append(f"| {r.path} | {r.prepare_s:.1f} | {fmt_rate(r.first)} ({fmt_rate(with_preparing)}) "
                     f"| {fmt_rate(steady)} | **{ratio:.2f}** | {'met' if ratio >= E2E_TARGET else 'NOT met'} |")
    return lines


def write_results(mode: str, block: str) -> None:
    """Replace this mode's part of the section, keep the other's."""
    parts = mode_parts("train_throughput")
    b, e = markers("train_throughput", mode)
    parts[mode] = f"{b}\n{block}\n{e}"
    for other, title in (("cpu", "CPU"), ("cuda", "GPU")):
        b, e = markers("train_throughput", other)
        parts.setdefault(other, f"{b}\n### {title}\n\n*Pending: run "
                                f"`python benchmarks/train_throughput.py{' --device cuda' if other == 'cuda' else ''}"
                                f" --write`.*\n{e}")
    section = "\n".join([BEGIN, "## Training throughput: archc vs torchvision, and JPEG epochs vs the step rate", "",
                         ("Written by `python benchmarks/train_throughput.py [--device cuda] --write`; each part "
                          "comes from one run (see the script's docstring for what is measured)."), "",
                         parts["cpu"], "", parts["cuda"], END])
    write_section("train_throughput", section)
    print(f"wrote {RESULTS.relative_to(ROOT)}", file=sys.stderr)


def save(path: Path, settings: dict, meta: dict, results: dict[str, list[Runner]], e2e: list[str]) -> None:
    import json

    runners = {key: [{"label": r.label, "rates": r.rates, "warmup_s": r.warmup_s, "default": r.default}
                     for r in found] for key, found in results.items()}
    path.write_text(json.dumps({"settings": settings, "meta": meta, "results": runners, "e2e": e2e}, indent=1))


def merge_saved(paths: list[str], write: bool) -> int:
    """One section from several runs' --save files: the networks of all, (b) from the one that has it."""
    import json

    saved = [json.loads(Path(p).read_text()) for p in paths]
    settings = saved[0]["settings"]
    for path, one in zip(paths, saved):
        if one["settings"] != settings:
            sys.exit(f"{path}: measured with other settings than {paths[0]} "
                     f"({one['settings']} vs {settings}): not merged")
    keys = [key for one in saved for key in one["results"]]
    if len(keys) != len(set(keys)) or sum(bool(one["e2e"]) for one in saved) > 1:
        sys.exit(f"a network or (b) was measured by more than one of {', '.join(paths)}: merge one of each")
    results = {key: [Runner(r["label"], None, r["rates"], r["warmup_s"], r["default"]) for r in runners]
               for one in saved for key, runners in one["results"].items()}
    results = {key: results[key] for key in NETWORKS if key in results}
    e2e = next((one["e2e"] for one in saved if one["e2e"]), [])
    metas = [one["meta"] for one in saved]
    meta = {**metas[-1], "runs": len(saved), "seconds": sum(m["seconds"] for m in metas),
            "commands": [command for m in metas for command in m["commands"]],
            "date": " and ".join(sorted({m["date"] for m in metas}))}
    for field_ in ("machine", "revision", "python", "torch", "torchvision"):
        if len({m[field_] for m in metas}) > 1:
            sys.exit(f"the runs differ in {field_}: {sorted({m[field_] for m in metas})}: not merged")
    text = "\n".join(section(settings, meta, results, e2e))
    if write:
        write_results(settings["device"], text)
    print(text)
    return 0


def machine_line(device: str) -> str:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    host = f"{cpu_name()}, {cores} cores, {platform.system()} {platform.release()}"
    if device == "cuda":
        return f"GPU: {torch.cuda.get_device_name()}, CUDA {torch.version.cuda}; host {host}"
    return f"CPU: {host}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--batch", type=int, help="batch size (default 256 on GPU, 8 on CPU)")
    ap.add_argument("--size", type=int, help="input side (default 224 on GPU, 128 on CPU)")
    ap.add_argument("--only", nargs="*", choices=sorted(NETWORKS), help="networks for (a) (default: all four)")
    ap.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                    help="also time torch.compile'd models (default: on for cuda, off for cpu)")
    ap.add_argument("--rounds", type=int,
                    help="interleaved timing rounds (default 6 on GPU, 12 on CPU, where a shared 2-core machine's "
                         "load moves single rounds by ±5%%; a multiple of the model count evens out who goes first)")
    ap.add_argument("--steps", type=int, help="steps per model per round (default 10 on GPU, 4 on CPU)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps per model first (default 3)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads on CPU (default 1: steady figures)")
    ap.add_argument("--images", type=int, help="JPEGs for (b) (default 4000 on GPU, 128 on CPU; 0 skips (b))")
    ap.add_argument("--epochs", type=int, default=3, help="steady epochs after the first, for (b) (default 3)")
    ap.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)),
                    help="DataLoader workers of the standard recipe (default: one per core)")
    ap.add_argument("--default", choices=["auto", "eager"],
                    help="archc's default to judge: `--compile auto`'s trial, or eager (default: as `archc train`: "
                         "auto on cuda, eager on cpu; auto needs --compile there)")
    ap.add_argument("--e2e-network", default="mobilenet_v3_small", choices=sorted(NETWORKS))
    ap.add_argument("--no-steps", action="store_true", help="skip (a)")
    ap.add_argument("--write", action="store_true", help=f"update this mode's part of {RESULTS.name}")
    ap.add_argument("--save", metavar="FILE.json", help="also keep the raw figures in FILE.json, after each part")
    ap.add_argument("--merge", nargs="+", metavar="FILE.json",
                    help="measure nothing: report (and with --write, record) the parts saved by runs with --save")
    args = ap.parse_args(argv)
    if args.merge:
        return merge_saved(args.merge, args.write)
    gpu = args.device == "cuda"
    if gpu and not torch.cuda.is_available():
        ap.error("--device cuda: no GPU here (torch.cuda.is_available() is False)")
    args.batch = args.batch or (256 if gpu else 8)
    args.size = args.size or (224 if gpu else 128)
    args.steps = args.steps or (10 if gpu else 4)
    args.rounds = args.rounds or (6 if gpu else 12)
    args.compile = gpu if args.compile is None else args.compile
    # archc's default as `archc train` runs it: its compile trial on a GPU, eager on CPU
    args.default_auto = args.compile and (args.default == "auto" if args.default else gpu)
    args.images = (4000 if gpu else 128) if args.images is None else args.images
    if gpu:
        torch.backends.cudnn.benchmark = True
    else:
        torch.set_num_threads(args.threads)

    started = time.perf_counter()
    meta = {"date": _dt.date.today().isoformat(), "machine": machine_line(args.device),
            "revision": os.environ.get("ARCHC_REVISION") or git_revision(), "python": platform.python_version(),
            "torch": torch.__version__, "torchvision": torchvision.__version__, "runs": 1,
            "commands": [" ".join(["python benchmarks/train_throughput.py", *(sys.argv[1:] if argv is None
                                                                              else argv)])]}
    settings = {name: getattr(args, name) for name in SETTINGS}
    todo = [] if args.no_steps else list(args.only or NETWORKS)
    e2e: list[str] = []
    results: dict[str, list[Runner]] = {}

    def report(final: bool) -> str:
        """The section so far; rewritten into RESULTS.md (and --save's file) after each part, so a run
        stopped by a time limit keeps what it measured."""
        meta["seconds"] = round(time.perf_counter() - started)
        text = "\n".join(section(settings, meta, results, e2e))
        missing = [key for key in todo if key not in results] + (["(b)"] if args.images and not e2e else [])
        if not final and missing:
            text += f"\n\n*Incomplete: the run stopped before {', '.join(missing)}.*"
        if args.write:
            write_results(args.device, text)
        if args.save:
            save(Path(args.save), settings, meta, results, e2e)
        return text

    if args.images:  # first: it matters most, and a run cut short by a time limit still has it
        print(f"(b) {args.e2e_network}, {args.images} JPEGs ...", file=sys.stderr, flush=True)
        synthetic, paths, write_s = end_to_end(args)
        e2e = [(f"#### (b) Epochs of {args.images:,} JPEGs (500×375) with {args.e2e_network}, "
                f"{args.epochs} steady epochs after the first"), "", *e2e_table(synthetic, paths), "",
               f"Writing the JPEGs took {write_s:.1f} s (not counted)."]
        print("\n".join(e2e), file=sys.stderr, flush=True)
        report(final=False)
        release()
    for key in todo:
        print(f"(a) {key} ...", file=sys.stderr, flush=True)
        results[key] = step_rates(key, args)
        print("\n".join(step_table({key: results[key]}, args)[0]), file=sys.stderr, flush=True)
        report(final=False)
        release()
    print(report(final=True))
    return 0


# the options that shape the figures: runs merged with --merge must agree on them
SETTINGS = ["device", "batch", "size", "rounds", "steps", "warmup", "threads", "compile", "default_auto"]


def section(args: dict, meta: dict, results: dict[str, list[Runner]], e2e: list[str]) -> list[str]:
    """This mode's part of the RESULTS.md section, as markdown lines (args: the SETTINGS)."""
    args = argparse.Namespace(**args)
    gpu = args.device == "cuda"
    if meta["runs"] == 1:
        how = [(f"Measured {meta['date']} by `{meta['commands'][0]}` in {meta['seconds']} s; every figure comes "
               "from that one run.")]
    else:
        how = [(f"Measured {meta['date']} in {meta['runs']} runs ({meta['seconds']} s in all), merged by "
               "`--merge`; each table row, and (b) with its step rate, comes from one run:"), "",
               *(f"- `{command}`" for command in meta["commands"])]
    lines = [f"### {'GPU' if gpu else 'CPU'}", "", *how, "", f"- {meta['machine']}",
             f"- archc at commit {meta['revision']}",
             f"- Python {meta['python']}, torch {meta['torch']}, torchvision {meta['torchvision']}", ""]
    if results:
        table, missed = step_table(results, args)
        lines += [f"#### (a) Training-step img/s, median of {args.rounds} interleaved rounds (min–max)", "",
                  (f"Batch {args.batch}, {args.size}×{args.size}, "
                   + ("bf16 autocast, channels_last, fused SGD, cudnn.benchmark" if gpu
                      else f"float32, torch.set_num_threads({args.threads})")
                   + f"; {args.warmup} warm-up steps, then blocks of {args.steps} steps. ◀ marks archc under "
                   + ("the trainer's default here, `--compile auto`: the runner its trial kept (the trial timed "
                      "on the same batch before the rounds)." if args.default_auto else
                      "the trainer's default here: eager.")), "",
                  *table, "",
                  (f"**Step-rate target {'NOT met for ' + ', '.join(missed) if missed else 'met'}** "
                   "(archc under the trainer's default against the better of torchvision eager and compiled; "
                   "met: both ratios ≥ 1; within noise: one of them ≥ 1, or archc's best round reaches "
                   "torchvision's median)."), ""]
    return lines + e2e


if __name__ == "__main__":
    sys.exit(main())
