"""Does a network built by archc train as fast as the same network written by hand?

A benchmark, not a test: run it by hand on the machine you want figures for.

    python benchmarks/emit_overhead.py                  # CPU, print the table
    python benchmarks/emit_overhead.py --write          # also update benchmarks/RESULTS.md
    python benchmarks/emit_overhead.py --device cuda    # GPU: batch 256, bf16 autocast, channels_last, 224
    python benchmarks/emit_overhead.py --profile        # also profile a few steps of each model

`archc.build` returns a `Network` whose forward walks the checked graph's layers
in a Python loop, keeping each layer's output in a list. The claim measured
here: that costs nothing at run time. Each comparison times training steps
(zero_grad, forward, cross-entropy on random labels, backward, SGD step with
momentum) of the emitted module against the reference under identical
settings: same weights, same batch, same labels, same optimiser.

* mobilenet_v3_small: `archc.build(archc.zoo_path("mobilenet_v3_small.arch"))`
  against `torchvision.models.mobilenet_v3_small()`.
* resnet18: `archc.build(archc.zoo_path("resnet.arch"), variant="resnet18")`
  against `torchvision.models.resnet18()`, when that file exists (skipped
  otherwise).
* nin: `archc.build(archc.zoo_path("nin.arch"))` against d2l's NiN (seed 002)
  in plain `torch.nn`.
* each again as "(source)": the module of the file `archc.source` generates
  (`archc build -o`), whose forwards are written out like hand-written code.

Before timing, each pair must be the same computation: equal parameter and
buffer counts, and after `archc.port(emitted, reference)` (seeded weights and
batch-norm statistics far from their init) equal eval-mode logits. Otherwise
the script says so loudly, does not time that pair, and exits 1. Both models
then train from those same weights.

The steps run interleaved: after warm-up, each round alternates single steps
of the two models (emitted, reference, emitted, ... ; the order flips each
round), so drift in the machine's load falls on both alike. The report gives
the median step time of each, the ratio reference / emitted (≥ 1.00 means the
emitted module is no slower) and, to show the noise, the ratio of each round's
medians and the interquartile range of the steps. The number of steps per round
is chosen from the warm-up so that the timed part stays within `--seconds`.

CPU mode (the default): batch 8, inputs at 128×128 (the ImageNet models pool
adaptively, so they accept it; NiN too), float32, `torch.set_num_threads(1)`
unless `--threads` says otherwise: on a small machine shared with other work,
intra-op threads wait on each other whenever another process takes a core (on
a 2-core box under load, 2 threads made a mobilenet step ten times slower and
its timings spread over 10×), while one thread gives steady figures.
GPU mode (`--device cuda`): batch 256 at 224×224, bf16 autocast, channels_last,
synchronising around every step; it also reports each model's peak memory.
`--write` keeps the figures of the other mode already in RESULTS.md, so a CPU
run and a GPU run can fill the section in turn.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import math
import os
import platform
import re
import resource
import statistics
import sys
import time
import types
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
import torchvision
from torch import nn

import archc

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the test suite's torch oracles
from common import RESULTS, cpu_name, git_revision, markers, mode_parts, write_section  # noqa: E402 - benchmarks/ is this script's own folder
from oracles import randomise  # noqa: E402

TARGET = 1.00  # reference / emitted
SLOWER = 0.97  # paired median ratio below this (and significantly below 1): measurably slower, worth profiling

BEGIN, END = markers("emit_overhead")


def sub_markers(mode: str) -> tuple[str, str]:
    return markers("emit_overhead", mode)


# --- the networks -----------------------------------------------------------------------


def nin_d2l() -> nn.Module:
    """d2l's NiN (seed 002) in plain torch.nn: the same network as architectures/nin.arch."""
    def block(i, o, k, s, p):
        return nn.Sequential(nn.Conv2d(i, o, k, s, p), nn.ReLU(), nn.Conv2d(o, o, 1), nn.ReLU(),
                             nn.Conv2d(o, o, 1), nn.ReLU())

    return nn.Sequential(block(1, 96, 11, 4, 0), nn.MaxPool2d(3, 2), block(96, 256, 5, 1, 2), nn.MaxPool2d(3, 2),
                         block(256, 384, 3, 1, 1), nn.MaxPool2d(3, 2), nn.Dropout(0.5),
                         block(384, 10, 3, 1, 1), nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten())


@dataclass
class Case:
    key: str
    arch: str  # file in the zoo
    build_kwargs: dict
    reference: Callable[[], nn.Module]
    reference_label: str
    channels: int
    num_classes: int
    source: bool = False  # the module of `archc.source`'s generated file instead of `archc.build`'s


def cases() -> tuple[list[Case], list[str]]:
    """The comparisons to run, and notes on those skipped."""
    found = [Case("mobilenet_v3_small", "mobilenet_v3_small.arch", {},
                  torchvision.models.mobilenet_v3_small, "`torchvision.models.mobilenet_v3_small()`", 3, 1000)]
    skipped = []
    if archc.zoo_path("resnet.arch").exists():
        found.append(Case("resnet18", "resnet.arch", {"variant": "resnet18"},
                          torchvision.models.resnet18, "`torchvision.models.resnet18()`", 3, 1000))
    else:
        skipped.append("resnet18: architectures/resnet.arch does not exist (yet), so it was skipped")
    found.append(Case("nin", "nin.arch", {}, nin_d2l, "d2l's NiN (seed 002) in plain `torch.nn`", 1, 10))
    # The same networks from the generated source (`archc build -o net.py`): hand-written-style forwards.
    found += [replace(c, key=f"{c.key} (source)", source=True) for c in found]
    return found, skipped


def count(tensors) -> int:
    return sum(t.numel() for t in tensors)


@dataclass
class Pair:
    case: Case
    emitted: nn.Module
    reference: nn.Module
    params: tuple[int, int]
    buffers: tuple[int, int]
    max_diff: float = float("nan")
    scale: float = float("nan")
    problem: str = ""  # why the pair is not the same computation; empty when it is


def make_pair(case: Case, size: int) -> Pair:
    """Build both models, check they are the same computation, and give them the same weights."""
    torch.manual_seed(0)
    shape = f"{case.channels}x{size}x{size}"
    if case.source:
        generated = types.ModuleType("generated")
        code = archc.source(archc.zoo_path(case.arch), input=shape, **case.build_kwargs)
        exec(compile(code, "generated.py", "exec"), generated.__dict__)  # noqa: S102 - archc's own output
        emitted = generated.build()
    else:
        emitted = archc.build(archc.zoo_path(case.arch), input=shape, **case.build_kwargs)
    reference = randomise(case.reference())
    pair = Pair(case, emitted, reference,
                (count(emitted.parameters()), count(reference.parameters())),
                (count(emitted.buffers()), count(reference.buffers())))
    if pair.params[0] != pair.params[1]:
        pair.problem = f"parameter counts differ: emitted {pair.params[0]:,}, reference {pair.params[1]:,}"
        return pair
    if pair.buffers[0] != pair.buffers[1]:
        pair.problem = f"buffer counts differ: emitted {pair.buffers[0]:,}, reference {pair.buffers[1]:,}"
        return pair
    try:
        archc.port(emitted, reference)
    except ValueError as e:
        pair.problem = f"archc.port failed: {e}"
        return pair
    x = torch.randn(2, case.channels, size, size, generator=torch.Generator().manual_seed(1))
    emitted.eval(), reference.eval()
    with torch.no_grad():
        expected, actual = reference(x), emitted(x)
    pair.scale = expected.abs().max().item()
    pair.max_diff = (expected - actual).abs().max().item()
    if not pair.max_diff <= 1e-4 * pair.scale:
        pair.problem = (f"eval logits differ after archc.port: max |diff| {pair.max_diff:.3g} "
                        f"(logit scale {pair.scale:.3g})")
    return pair


# --- timing -------------------------------------------------------------------------


@dataclass
class Runner:
    """One model, its optimiser and its timings."""
    label: str
    model: nn.Module
    step: Callable[[], None]
    wall: list[list[float]] = field(default_factory=list)  # per round, seconds per step
    cpu: list[list[float]] = field(default_factory=list)  # per round, process CPU seconds per step
    faults: list[int] = field(default_factory=list)  # minor page faults per timed step
    peak_mib: float = float("nan")  # GPU: peak memory a step adds to what was allocated before it

    @property
    def steps(self) -> list[float]:
        return [t for r in self.wall for t in r]

    @property
    def median(self) -> float:
        return statistics.median(self.steps)

    @property
    def cpu_median(self) -> float:
        return statistics.median(t for r in self.cpu for t in r)

    def quartiles(self) -> tuple[float, float]:
        q = statistics.quantiles(self.steps, n=4) if len(self.steps) > 1 else [self.steps[0]] * 3
        return q[0], q[2]


def make_runner(label: str, model: nn.Module, x: torch.Tensor, y: torch.Tensor, device: str) -> Runner:
    model.train()
    if device == "cuda":
        model.to(device, memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=device == "cuda"):
            loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    return Runner(label, model, step)


def timed(runner: Runner, device: str) -> tuple[float, float, int]:
    """One training step: (wall seconds, process CPU seconds, minor page faults)."""
    if device == "cuda":
        torch.cuda.synchronize()
    f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    c0, t0 = time.process_time(), time.perf_counter()
    runner.step()
    if device == "cuda":
        torch.cuda.synchronize()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return wall, cpu, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0


@dataclass
class Result:
    pair: Pair
    emitted: Runner | None = None
    reference: Runner | None = None
    steps_per_round: int = 0
    warm_step_s: float = float("nan")

    @property
    def ratio(self) -> float:
        return self.reference.median / self.emitted.median

    @property
    def cpu_ratio(self) -> float:
        return self.reference.cpu_median / self.emitted.cpu_median

    @property
    def round_ratios(self) -> list[float]:
        return [statistics.median(r) / statistics.median(e) for e, r in zip(self.emitted.wall, self.reference.wall)]

    def paired(self, what: str = "wall") -> list[float]:
        """reference / emitted for each pair of adjacent steps: slow drift in load cancels out."""
        e, r = getattr(self.emitted, what), getattr(self.reference, what)
        return [b / a for ra, rb in zip(e, r) for a, b in zip(ra, rb)]


def median_ci(xs: list[float], level: float = 0.95) -> tuple[float, float, float]:
    """(median, low, high): a distribution-free confidence interval for the median (order statistics, sign test)."""
    xs = sorted(xs)
    n = len(xs)
    med = statistics.median(xs)
    # the largest k with P(Binomial(n, 1/2) < k) <= (1 - level) / 2; the interval is [x_(k), x_(n-k+1)]
    tail, k, cum = (1 - level) / 2, 0, 0.0
    while k < n and cum + math.comb(n, k) / 2**n <= tail:
        cum += math.comb(n, k) / 2**n
        k += 1
    if k == 0:  # too few pairs for this level: the whole range
        return med, xs[0], xs[-1]
    return med, xs[k - 1], xs[n - k]


def batch(case: Case, args, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The one batch both models train on: seeded random images and labels."""
    g = torch.Generator().manual_seed(2)
    x = torch.randn(args.batch, case.channels, args.size, args.size, generator=g)
    y = torch.randint(0, case.num_classes, (args.batch,), generator=g)
    x, y = x.to(device), y.to(device)
    if device == "cuda":
        x = x.contiguous(memory_format=torch.channels_last)
    return x, y


def time_pair(pair: Pair, args, device: str, seconds: float) -> Result:
    case = pair.case
    x, y = batch(case, args, device)
    emitted = make_runner("emitted", pair.emitted, x, y, device)
    reference = make_runner("reference", pair.reference, x, y, device)
    runners = [emitted, reference]
    result = Result(pair, emitted, reference)

    warm = []
    for i in range(args.warmup):
        for r in runners if i % 2 == 0 else runners[::-1]:
            if device == "cuda" and i == args.warmup - 1:
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
                at_start = torch.cuda.memory_allocated()
            wall, _, _ = timed(r, device)
            if device == "cuda" and i == args.warmup - 1:
                r.peak_mib = (torch.cuda.max_memory_allocated() - at_start) / 2**20
            if i >= args.warmup // 2:
                warm.append(wall)
    result.warm_step_s = statistics.median(warm) if warm else 1.0
    n = args.steps or max(2, min(50, int(seconds / (args.rounds * 2 * result.warm_step_s))))
    result.steps_per_round = n
    print(f"  {case.key}: warm step ~{result.warm_step_s:.3f} s, timing {args.rounds} rounds × {n} steps "
          f"of each model", file=sys.stderr, flush=True)
    for k in range(args.rounds):
        order = runners if k % 2 == 0 else runners[::-1]
        for r in runners:
            r.wall.append([])
            r.cpu.append([])
        for _ in range(n):
            for r in order:
                wall, cpu, faults = timed(r, device)
                r.wall[-1].append(wall)
                r.cpu[-1].append(cpu)
                r.faults.append(faults)
    return result


def profile_pair(pair: Pair, args, device: str, top: int) -> str:
    """torch.profiler over a few steps of each model: where the time goes, by op, side by side."""
    from torch.profiler import ProfilerActivity, profile

    case = pair.case
    x, y = batch(case, args, device)
    out = []
    for label, model in (("emitted", pair.emitted), ("reference", pair.reference)):
        r = make_runner(label, model, x, y, device)
        r.step()
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
        with profile(activities=activities) as prof:
            for _ in range(3):
                r.step()
        sort = "self_device_time_total" if device == "cuda" else "self_cpu_time_total"
        out.append(f"### {case.key}, {label} (3 steps)\n\n```\n"
                   f"{prof.key_averages().table(sort_by=sort, row_limit=top)}\n```")
    return "\n\n".join(out)


# --- the machine --------------------------------------------------------------------


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def machine(device: str) -> dict[str, str]:
    cpu = cpu_name()
    info = {
        "cpu": cpu,
        "cores": str(cores()),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "os": f"{platform.system()} {platform.release()}",
    }
    if device == "cuda":
        info["gpu"] = torch.cuda.get_device_name()
        info["cuda"] = str(torch.version.cuda)
    return info


def source_digest(arch_files: list[str]) -> str:
    """A hash of what the emitted modules are built from: archc's code and grammar, and the .arch files
    measured with those they `use`, as on disk.

    Compared before and after timing; a commit of unchanged files in between, or another network being
    added to the zoo, does not count as a change.
    """
    h = hashlib.sha256()
    files = [f for folder in ("archc", "compiler", "dsl", "grammar", "runtime")
             for f in sorted((ROOT / folder).rglob("*")) if f.is_file() and f.suffix in (".py", ".lark")]
    todo, seen = [archc.zoo_path(a) for a in arch_files], set()
    while todo:
        f = todo.pop()
        if f in seen or not f.is_file():
            continue
        seen.add(f)
        files.append(f)
        todo += [f.parent / u for u in re.findall(r'^\s*use\s+"([^"]+)"', f.read_text(), re.MULTILINE)]
    for f in files:
        h.update(str(f).encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def ms(t: float) -> str:
    return f"{t * 1000:.1f} ms"


# --- RESULTS.md -----------------------------------------------------------------------

GPU_PENDING = ("GPU figures pending: no GPU was lent in the session that wrote this section. "
               "Run `python benchmarks/emit_overhead.py --device cuda --write` on a machine with one "
               "(batch 256, 224×224, bf16 autocast, channels_last); it fills this part and keeps the CPU part.")


def write_results(mode: str, block: str) -> None:
    kept = mode_parts("emit_overhead")
    kept[mode] = block
    if "cuda" not in kept:
        b, e = sub_markers("cuda")
        kept["cuda"] = "\n".join([b, "### GPU", "", f"*{GPU_PENDING}*", e])
    if "cpu" not in kept:
        b, e = sub_markers("cpu")
        pending = "*CPU figures pending: run `python benchmarks/emit_overhead.py --write`.*"
        kept["cpu"] = f"{b}\n### CPU\n\n{pending}\n{e}"
    section = "\n".join([
        BEGIN,
        "## Emitted module vs hand-written torch: training-step time",
        "",
        ("Does `archc.build`'s module (a Python loop over the checked graph's layers) train as fast as "
         "the same network written by hand? Written by `python benchmarks/emit_overhead.py --write` "
         "(CPU) and `--device cuda --write` (GPU); each part comes from one run. Ratio = reference / emitted "
         f"median step time: ≥ {TARGET:.2f} means the emitted module is no slower. Compare ratios, not "
         "seconds."),
        "",
        kept["cpu"],
        "",
        kept["cuda"],
        END,
    ])
    write_section("emit_overhead", section)
    print(f"\nwrote {RESULTS.relative_to(ROOT)}")


# --- main -----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--batch", type=int, help="batch size (default 8 on CPU, 256 on GPU)")
    ap.add_argument("--size", type=int, help="input height and width (default 128 on CPU, 224 on GPU)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch.set_num_threads on CPU (default 1: on a small shared machine, intra-op threads "
                         "wait on each other whenever another process takes a core, and the noise swamps the figures)")
    ap.add_argument("--rounds", type=int, default=6,
                    help="interleaved rounds (default 6; even, so each model goes first equally often)")
    ap.add_argument("--steps", type=int, default=0,
                    help="timed steps per model per round (default: chosen from the warm-up to fit --seconds)")
    ap.add_argument("--warmup", type=int, default=4, help="untimed steps of each model first (default 4)")
    ap.add_argument("--seconds", type=float, default=180.0,
                    help="rough budget for the timed steps of all networks together (default 180)")
    ap.add_argument("--only", nargs="*", help="network keys to run (mobilenet_v3_small, resnet18, nin; "
                                              "'resnet18 (source)' for the generated file's module)")
    ap.add_argument("--profile", action="store_true", help="also profile 3 steps of each model with torch.profiler")
    ap.add_argument("--write", action="store_true",
                    help=f"replace this mode's part of the section in {RESULTS.relative_to(ROOT)}")
    args = ap.parse_args(argv)
    device = args.device
    if device == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda: no GPU is available here (torch.cuda.is_available() is False)")
    args.batch = args.batch or (256 if device == "cuda" else 8)
    args.size = args.size or (224 if device == "cuda" else 128)
    if args.rounds < 1 or args.warmup < 2:
        ap.error("--rounds must be at least 1 and --warmup at least 2")
    if device == "cpu":
        torch.set_num_threads(args.threads)
    if device == "cuda":
        torch.backends.cudnn.benchmark = True

    started = time.perf_counter()
    revision = git_revision()
    load_before = os.getloadavg()[0]
    todo, skipped = cases()
    if args.only:
        todo = [c for c in todo if c.key in args.only]

    digest = source_digest([c.arch for c in todo])

    # --- same computation? ---
    print(f"Building and checking {len(todo)} pairs ...", file=sys.stderr, flush=True)
    pairs = [make_pair(c, args.size) for c in todo]
    problems = [f"{p.case.key}: {p.problem}" for p in pairs if p.problem]

    # --- timing ---
    good = [p for p in pairs if not p.problem]
    print(f"Timing {len(good)} pairs on {device}, batch {args.batch}, {args.size}×{args.size}, "
          f"{args.threads} threads, {args.rounds} interleaved rounds ...", file=sys.stderr, flush=True)
    results = [time_pair(p, args, device, args.seconds / max(1, len(good))) for p in good]
    load_after = os.getloadavg()[0]
    if source_digest([c.arch for c in todo]) != digest:
        revision += f", but archc's source changed during the run (now {git_revision()}): run it again"
        print(f"warning: archc's source changed while timing ({revision})", file=sys.stderr)

    # --- the figures ---
    gpu = device == "cuda"
    lines = [("| network | emitted | reference | reference / emitted | paired steps: median ratio [95% CI] "
              "| per-round ratios (min – max) | target ≥ 1.00 | steps |"),
             "|---|---:|---:|---:|---:|---:|:---:|---:|"]
    verdicts, slower = [], []
    for r in results:
        rr = r.round_ratios
        med, lo, hi = median_ci(r.paired("wall"))
        if r.ratio >= TARGET:
            verdict = "met"
        elif hi >= TARGET:
            verdict = "met within noise"
        elif med >= SLOWER:
            verdict = "NOT met (slightly slower)"
        else:
            verdict = "NOT met: measurably slower"
            slower.append(r.pair.case.key)
        verdicts.append(verdict)
        lines.append(f"| {r.pair.case.key} | {ms(r.emitted.median)} | {ms(r.reference.median)} | **{r.ratio:.3f}** "
                     f"| {med:.3f} [{lo:.3f} – {hi:.3f}] | {min(rr):.3f} – {max(rr):.3f} | {verdict} "
                     f"| {args.rounds} × {r.steps_per_round} |")
    for p in pairs:
        if p.problem:
            lines.append(f"| {p.case.key} | – | – | – | not timed: {p.problem} | | **NOT comparable** | |")
    table = "\n".join(lines)

    if gpu:
        extra = ["| network | a step's peak memory: emitted | reference | reference / emitted |",
                 "|---|---:|---:|---:|"]
        for r in results:
            e, f = r.emitted.peak_mib, r.reference.peak_mib
            extra.append(f"| {r.pair.case.key} | {e:,.0f} MiB | {f:,.0f} MiB | {f / e:.3f} |")
    else:
        extra = [("| network | CPU: emitted | CPU: reference | reference / emitted | paired steps: median ratio "
                  "[95% CI] | page faults per step: emitted | reference |"),
                 "|---|---:|---:|---:|---:|---:|---:|"]
        for r in results:
            med, lo, hi = median_ci(r.paired("cpu"))
            extra.append(f"| {r.pair.case.key} | {ms(r.emitted.cpu_median)} | {ms(r.reference.cpu_median)} "
                         f"| {r.cpu_ratio:.3f} | {med:.3f} [{lo:.3f} – {hi:.3f}] "
                         f"| {statistics.median(r.emitted.faults):,.0f} | {statistics.median(r.reference.faults):,.0f} |")
    extra_table = "\n".join(extra)

    spread = ["| network | model | median | quartiles (25% – 75%) | fastest – slowest step |",
              "|---|---|---:|---:|---:|"]
    for r in results:
        for run in (r.emitted, r.reference):
            lo, hi = run.quartiles()
            spread.append(f"| {r.pair.case.key} | {run.label} | {ms(run.median)} | {ms(lo)} – {ms(hi)} "
                          f"| {ms(min(run.steps))} – {ms(max(run.steps))} |")
    spread_table = "\n".join(spread)

    same = [("| network | reference | parameters (emitted = reference) | buffers "
             "| eval logits after `archc.port`: max abs diff / logit scale |"), "|---|---|---:|---:|---:|"]

    def eq(a: int, b: int) -> str:
        return f"{a:,}" if a == b else f"**{a:,} ≠ {b:,}**"

    for p in pairs:
        diff = f"{p.max_diff:.2g} / {p.scale:.2g}" if p.max_diff == p.max_diff else "–"
        same.append(f"| {p.case.key} | {p.case.reference_label} | {eq(*p.params)} | {eq(*p.buffers)} | {diff} |")
    same_table = "\n".join(same)

    round_lines = "\n".join(f"- {r.pair.case.key}: " + ", ".join(f"{x:.3f}" for x in r.round_ratios)
                            for r in results)
    raw = "\n".join(f"- {r.pair.case.key}, {run.label}, wall ms by round: "
                    + "; ".join(", ".join(f"{t * 1000:.0f}" for t in rnd) for rnd in run.wall)
                    for r in results for run in (r.emitted, r.reference))

    if problems:
        overall = "NOT COMPARABLE: " + "; ".join(problems)
    elif all(v.startswith("met") for v in verdicts):
        worst = min(results, key=lambda r: r.ratio)
        overall = (f"TARGET MET: the emitted modules train as fast as the hand-written ones, within noise "
                   f"(lowest ratio of medians {worst.ratio:.3f}, {worst.pair.case.key}).")
    else:
        missed = [f"{r.pair.case.key} ({r.ratio:.3f}; paired CI up to {median_ci(r.paired())[2]:.3f})"
                  for r, v in zip(results, verdicts) if not v.startswith("met")]
        overall = ("TARGET NOT MET: the emitted module was slower beyond the noise for " + ", ".join(missed)
                   + (f"; measurably (paired median below {SLOWER}) for {', '.join(slower)}: "
                      "profile it (--profile)." if slower else f"; by less than {1 - SLOWER:.0%}."))

    settings = (f"{'GPU' if gpu else 'CPU'}: training steps (zero_grad, forward, cross-entropy on random labels, "
                f"backward, SGD lr 0.01 momentum 0.9), batch {args.batch}, input C×{args.size}×{args.size}, "
                + ("bf16 autocast, channels_last, cudnn.benchmark, synchronised around each step"
                   if gpu else f"float32, torch.set_num_threads({args.threads})")
                + f"; {args.warmup} warm-up steps of each model, then {args.rounds} rounds alternating single "
                  "steps of the two (order flipped each round).")
    body = [
        f"**{overall}**",
        "",
        settings,
        "",
        ("Medians of wall time per step. Paired steps: the ratio for each emitted step and the reference "
         "step next to it, so drift in the machine's load cancels; the interval is a distribution-free 95% "
         "confidence interval for their median (sign test). Target met within noise: that interval reaches 1.00."),
        "",
        table,
        "",
        ("Peak memory: the most a step allocates beyond what was allocated before it (one warm-up step)."
         if gpu else
         "CPU time, the process's user + sys time per step: with one thread it is less disturbed by other "
         "load than wall time. Page faults: minor page faults per step (fresh memory mapped by the allocator)."),
        "",
        extra_table,
        "",
        ("The noise: per-round ratios are the ratio of one round's median step times; the spread of "
         "single steps:"),
        "",
        spread_table,
        "",
        "Each pair is the same computation (checked before timing):",
        "",
        same_table,
    ]
    if skipped:
        body += ["", *[f"- {s}" for s in skipped]]
    if slower:
        body += ["", (f"Measurably slower (paired median below {SLOWER}) for {', '.join(slower)}: "
                      "run `--profile` to see where the time goes.")]

    elapsed = time.perf_counter() - started
    print()
    print(f"emitted vs reference on {device}: {elapsed:.0f} s in all. Load average {load_before:.2f} before, "
          f"{load_after:.2f} after ({cores()} CPUs). archc at commit {revision}.\n")
    print("\n".join(body))
    print("\nPer-round ratios:\n" + round_lines)
    if not gpu and GPU_PENDING in (RESULTS.read_text() if RESULTS.exists() else GPU_PENDING):
        print(f"\nGPU rows pending: {GPU_PENDING}")
    if problems:
        print("\n" + "!" * 72)
        print("The pairs below are NOT the same computation, so they were not timed:")
        for p in problems:
            print(f"  {p}")
        print("!" * 72)

    profiles = ""
    if args.profile:
        profiles = "\n\n".join(profile_pair(p, args, device, 15) for p in good)
        print("\n" + profiles)

    if args.write:
        m = machine(device)
        today = _dt.date.today().isoformat()
        b, e = sub_markers(device)
        where = (f"- GPU: {m['gpu']}, CUDA {m['cuda']}; host {m['cpu']}, {m['cores']} cores" if gpu
                 else f"- Machine: {m['cpu']}, {m['cores']} cores, {m['os']}; load average {load_before:.2f} "
                      f"before the run, {load_after:.2f} after")
        block = "\n".join([
            b,
            f"### {'GPU' if gpu else 'CPU'}",
            "",
            (f"Measured {today} by `python benchmarks/emit_overhead.py{' --device cuda' if gpu else ''} --write` "
             f"in {elapsed:.0f} s; every figure below comes from that one run."),
            "",
            where,
            f"- archc at commit {revision}",
            f"- Python {m['python']}, torch {m['torch']}, torchvision {m['torchvision']}",
            "",
            *body,
            "",
            "<details><summary>Per-round ratios and raw step times</summary>",
            "",
            "Per-round ratios (reference / emitted):",
            "",
            round_lines,
            "",
            raw,
            "",
            "</details>",
            e,
        ])
        write_results(device, block)

    if problems:
        print("\nexit 1: a pair is not the same computation", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
