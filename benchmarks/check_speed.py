"""How much faster is `archc check` than asking torchinfo the same question?

A benchmark, not a test: run it by hand on the machine you want figures for.

    python benchmarks/check_speed.py             # print the table
    python benchmarks/check_speed.py --repeat 9  # more runs per command
    python benchmarks/check_speed.py --write     # also update benchmarks/RESULTS.md

Every command runs in a fresh interpreter (`sys.executable`), the way a user
meets it: interpreter start, imports and the work itself all count. The
commands run interleaved (round i runs each command once before round i+1
starts), so drift in the machine's load falls on all of them alike, and the
report gives the median of each. One untimed warm-up round first fills the
bytecode and page caches, and archc's parse cache (dsl/cache.py), as a user's
earlier checks would.

Four comparisons:

* mobilenet_v3_small: `archc check architectures/mobilenet_v3_small.arch --json`
  against `torchinfo.summary(torchvision.models.mobilenet_v3_small(), ...)`.
* mobilenet_v3_small (human form): the same check without `--json`, the table
  a user reads (its stdout a pipe), against the same torchinfo run.
* nin: `archc check architectures/nin.arch --json` against torchinfo on the
  same network written in plain torch.nn (d2l's NiN, seed 002).
* efficientnet_b7: `archc check architectures/efficientnet.arch --variant b7
  --json` (864 layers, 3×600×600) against torchinfo on
  `torchvision.models.efficientnet_b7()`.

And targets of their own: `archc check` of the zoo's largest networks (RegNetY-128GF, ConvNeXt-L,
EfficientNetV2-L, `--json`) under 0.5 s wall in a fresh process (issue 11), and (issue 13): `archc check architectures/efficientnet.arch
--variant b7 --rf --convention all --batch 32 --memory 6GiB --json`, every analysis
at once, under 0.5 s wall in a fresh process (the best of the runs, and the median),
without importing torch (checked on one `-X importtime` run).

Both sides must agree: archc's JSON `params` and `macs` must equal torchinfo's
`total_params` and `total_mult_adds`, or the script says so loudly and exits 1.
The stated targets: archc at least 15x faster than torchinfo on mobilenet_v3_small
and nin (issue 2), 25x on efficientnet_b7 (issue 4), and the human form as fast
as the JSON one, so 15x as well (issue 15).

It also splits archc's own time into interpreter start (`python -c pass`),
importing the checker (`python -c "import archc.compiler.check"`) and the full
check, and lists the heaviest imports from one `python -X importtime` run.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from common import (  # benchmarks/ is this script's own folder
    RESULTS,
    cpu_name,
    git_revision,
    markers,
    write_section,
)

ROOT = Path(__file__).resolve().parent.parent
HUMAN = "mobilenet_v3_small (human form)"
TARGETS = {"mobilenet_v3_small": 15.0, HUMAN: 15.0, "nin": 15.0, "efficientnet_b7": 25.0}
# issue 11: `archc check` of the largest networks of the zoo under 0.5 s in a fresh process
LARGEST = [("regnet", "regnet_y_128gf"), ("convnext", "convnext_large"), ("efficientnet_v2", "l")]
ANALYSES = ("--variant", "b7", "--rf", "--convention", "all", "--batch", "32", "--memory", "6GiB")
ANALYSES_TARGET = 0.5  # seconds, issue 13

BEGIN, END = markers("check_speed")

# --- the torchinfo side: each snippet prints {"params": ..., "macs": ...} ---

TORCHINFO_MOBILENET = """
import json
import torch, torchvision, torchinfo
s = torchinfo.summary(torchvision.models.mobilenet_v3_small(),
                      input_size=(1, 3, 224, 224), verbose=0, mode="eval")
print(json.dumps({"params": s.total_params, "macs": s.total_mult_adds}))
"""

TORCHINFO_B7 = """
import json
import torch, torchvision, torchinfo
s = torchinfo.summary(torchvision.models.efficientnet_b7(),
                      input_size=(1, 3, 600, 600), verbose=0, mode="eval")
print(json.dumps({"params": s.total_params, "macs": s.total_mult_adds}))
"""

# d2l's NiN (seed 002), in plain torch.nn: the same network as architectures/nin.arch.
TORCHINFO_NIN = """
import json
import torch, torchvision, torchinfo
from torch import nn

def nin_block(cin, cout, k, s, p):
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, s, p), nn.ReLU(),
        nn.Conv2d(cout, cout, 1), nn.ReLU(),
        nn.Conv2d(cout, cout, 1), nn.ReLU())

net = nn.Sequential(
    nin_block(1, 96, 11, 4, 0), nn.MaxPool2d(3, 2),
    nin_block(96, 256, 5, 1, 2), nn.MaxPool2d(3, 2),
    nin_block(256, 384, 3, 1, 1), nn.MaxPool2d(3, 2),
    nn.Dropout(0.5),
    nin_block(384, 10, 3, 1, 1),
    nn.AdaptiveAvgPool2d(1), nn.Flatten())
s = torchinfo.summary(net, input_size=(1, 1, 224, 224), verbose=0, mode="eval")
print(json.dumps({"params": s.total_params, "macs": s.total_mult_adds}))
"""


@dataclass
class Command:
    key: str
    label: str
    argv: list[str]
    times: list[float] = field(default_factory=list)  # wall seconds
    cpu: list[float] = field(default_factory=list)  # user + sys seconds of the child
    stdout: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu)


def py(*args: str) -> list[str]:
    return [sys.executable, *args]


def archc_check(arch: str, *options: str, json_form: bool = True) -> list[str]:
    return py("-m", "archc", "check", f"architectures/{arch}.arch", *(["--json"] if json_form else []), *options)


def totals(stdout: str) -> dict[str, int]:
    """params and macs from archc's JSON, or from the totals of its human form (issue 15's row)."""
    if stdout.lstrip().startswith("{"):
        return json.loads(stdout)
    found = {key: re.search(rf"^{label}\s+([\d,]+)", stdout, flags=re.MULTILINE)
             for key, label in (("params", r"params:"), ("macs", r"mult-adds \(batch 1\):"))}
    return {key: int(match.group(1).replace(",", "")) if match else -1 for key, match in found.items()}


def child_env() -> dict[str, str]:
    """The caller's environment, but letting Python write bytecode caches.

    With PYTHONDONTWRITEBYTECODE set (some sandboxes set it), archc's own
    modules, installed editable and never byte-compiled, would be compiled
    from source on every run, while torch's site-packages ship their .pyc
    files: a handicap no ordinary install has. The warm-up round writes the
    caches (into gitignored __pycache__ folders).
    """
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def run_once(cmd: Command) -> tuple[float, float]:
    """Run cmd once in a fresh process: (wall seconds, child CPU seconds)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd.argv, cwd=ROOT, capture_output=True, text=True, env=child_env(), check=False)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"error: {cmd.label!r} exited {proc.returncode}: {' '.join(cmd.argv)}")
    cmd.stdout = proc.stdout
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def run_interleaved(commands: list[Command], repeat: int, warmup: int) -> None:
    total = warmup + repeat
    for i in range(total):
        timed = i >= warmup
        tag = f"round {i - warmup + 1}/{repeat}" if timed else f"warm-up {i + 1}/{warmup}"
        print(f"  {tag} ...", file=sys.stderr, flush=True)
        # Rotate the order each round so no command always runs first or last.
        shift = i % len(commands)
        for cmd in commands[shift:] + commands[:shift]:
            wall, cpu = run_once(cmd)
            if timed:
                cmd.times.append(wall)
                cmd.cpu.append(cpu)


@dataclass
class Import:
    name: str
    self_us: int
    cum_us: int
    children: list[Import] = field(default_factory=list)


def import_tree(argv: list[str] | None = None) -> list[Import]:
    """One `-X importtime` run of the mobilenet check (or of `argv`), as a tree (roots in import order)."""
    proc = subprocess.run(
        py("-X", "importtime", *(argv or archc_check("mobilenet_v3_small"))[1:]),
        cwd=ROOT, capture_output=True, text=True, env=child_env(), check=False)
    # importtime prints each module after its children; the indent gives the depth.
    pending: list[tuple[int, Import]] = []
    for line in proc.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+)\s+\|\s+(\d+)\s+\|( *)(\S+)", line)
        if not m:
            continue
        depth = (len(m.group(3)) - 1) // 2
        node = Import(m.group(4), int(m.group(1)), int(m.group(2)))
        while pending and pending[-1][0] > depth:
            node.children.insert(0, pending.pop()[1])
        pending.append((depth, node))
    return [node for _, node in pending]


def walk(nodes: list[Import], depth: int = 0):
    for node in nodes:
        yield depth, node
        yield from walk(node.children, depth + 1)


def import_tables(top: int) -> tuple[str, str, float]:
    """(tree of the `top` heaviest imports by cumulative time, `top` heaviest by self time, total ms)."""
    roots = import_tree()
    everything = list(walk(roots))
    total_ms = sum(n.cum_us for n in roots) / 1000
    keep = {id(n) for _, n in sorted(everything, key=lambda dn: dn[1].cum_us, reverse=True)[:top]}
    tree = ["| module (indent = imported by the row above) | self | cumulative |", "|---|---:|---:|"]
    for depth, node in everything:
        if id(node) in keep:
            pad = "&nbsp;&nbsp;" * depth
            tree.append(f"| {pad}`{node.name}` | {node.self_us / 1000:.1f} ms "
                        f"| {node.cum_us / 1000:.1f} ms |")
    by_self = sorted(everything, key=lambda dn: dn[1].self_us, reverse=True)[:top]
    selfs = ["| module | self (its own top-level code) |", "|---|---:|"]
    for _, node in by_self:
        selfs.append(f"| `{node.name}` | {node.self_us / 1000:.1f} ms |")
    return "\n".join(tree), "\n".join(selfs), total_ms


def machine() -> dict[str, str]:
    cpu = cpu_name()
    try:
        cores = str(len(os.sched_getaffinity(0)))
    except AttributeError:
        cores = str(os.cpu_count())
    versions = subprocess.run(
        py("-c", "import torch, torchvision, torchinfo; "
                 "print(torch.__version__, torchvision.__version__, torchinfo.__version__)"),
        capture_output=True, text=True, check=False).stdout.split()
    torch_v, tv_v, ti_v = (versions + ["?", "?", "?"])[:3]
    return {
        "cpu": cpu,
        "cores": cores,
        "python": platform.python_version(),
        "torch": torch_v,
        "torchvision": tv_v,
        "torchinfo": ti_v,
        "os": f"{platform.system()} {platform.release()}",
    }


def fmt_s(t: float) -> str:
    return f"{t:.3f} s"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=5, help="timed runs per command (default 5)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed rounds first (default 1)")
    ap.add_argument("--top", type=int, default=15, help="import-time entries to list (default 15)")
    ap.add_argument("--write", action="store_true",
                    help=f"append or replace the section in {RESULTS.relative_to(ROOT)}")
    args = ap.parse_args(argv)
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")

    archc_mb = Command("archc_mb", "archc check mobilenet_v3_small", archc_check("mobilenet_v3_small"))
    ti_mb = Command("ti_mb", "torchinfo mobilenet_v3_small", py("-c", TORCHINFO_MOBILENET))
    archc_human = Command("archc_human", "archc check mobilenet_v3_small (human form, stdout a pipe)",
                          archc_check("mobilenet_v3_small", json_form=False))
    archc_nin = Command("archc_nin", "archc check nin", archc_check("nin"))
    ti_nin = Command("ti_nin", "torchinfo nin", py("-c", TORCHINFO_NIN))
    archc_b7 = Command("archc_b7", "archc check efficientnet_b7", archc_check("efficientnet", "--variant", "b7"))
    ti_b7 = Command("ti_b7", "torchinfo efficientnet_b7", py("-c", TORCHINFO_B7))
    startup = Command("startup", "`python -c pass`", py("-c", "pass"))
    imports = Command("imports", "`python -c \"import archc.compiler.check\"`",
                      py("-c", "import archc.compiler.check"))
    archc_all = Command("archc_all", "archc check efficientnet_b7 --rf --convention all --batch 32 --memory 6GiB",
                        archc_check("efficientnet", *ANALYSES))
    largest = [Command(f"archc_{variant}", f"archc check {file} --variant {variant}", archc_check(file, "--variant", variant))
               for file, variant in LARGEST]
    commands = [archc_mb, archc_human, ti_mb, archc_nin, ti_nin, archc_b7, ti_b7, archc_all, *largest, startup, imports]

    print(f"Timing {len(commands)} commands, {args.repeat} runs each, interleaved "
          f"(+{args.warmup} warm-up round{'s' if args.warmup != 1 else ''}) ...", file=sys.stderr)
    load_before = os.getloadavg()[0]
    revision = git_revision()
    run_interleaved(commands, args.repeat, args.warmup)

    # --- do both sides agree? ---
    mismatches = []
    pairs = [("mobilenet_v3_small", archc_mb, ti_mb), (HUMAN, archc_human, ti_mb), ("nin", archc_nin, ti_nin),
             ("efficientnet_b7", archc_b7, ti_b7)]
    agree_rows = []
    for name, a, t in pairs:
        aj, tj = totals(a.stdout), json.loads(t.stdout.strip().splitlines()[-1])
        for ak, tk in (("params", "total_params"), ("macs", "total_mult_adds")):
            ok = aj[ak] == tj[ak]
            agree_rows.append((name, ak, aj[ak], tk, tj[ak], ok))
            if not ok:
                mismatches.append(f"{name}: archc {ak} = {aj[ak]:,} but torchinfo {tk} = {tj[ak]:,}")

    # --- the figures ---
    ratios = {name: t.median / a.median for name, a, t in pairs}
    cpu_ratios = {name: t.cpu_median / a.cpu_median for name, a, t in pairs}
    missed = [name for name in ratios if ratios[name] < TARGETS[name]]
    lines = [
        ("| network | archc check | torchinfo.summary | torchinfo / archc "
        "| target | CPU: archc | CPU: torchinfo | CPU ratio |"),
        "|---|---:|---:|---:|:---:|---:|---:|---:|",
    ]
    for name, a, t in pairs:
        r, target = ratios[name], TARGETS[name]
        lines.append(f"| {name} | {fmt_s(a.median)} | {fmt_s(t.median)} | **{r:.1f}×** "
                     f"| ≥ {target:.0f}×: {'met' if r >= target else 'NOT met'} "
                     f"| {fmt_s(a.cpu_median)} | {fmt_s(t.cpu_median)} | {cpu_ratios[name]:.1f}× |")
    table = "\n".join(lines)

    startup_s, import_s, full_s = startup.median, imports.median, archc_mb.median
    split = [
        "| archc check mobilenet_v3_small, time split | median wall | share of full check |",
        "|---|---:|---:|",
        f"| interpreter start, `python -c pass` | {fmt_s(startup_s)} | {startup_s / full_s:.0%} |",
        f"| `python -c \"import archc.compiler.check\"` | {fmt_s(import_s)} | {import_s / full_s:.0%} |",
        (f"| &nbsp;&nbsp;of which importing archc's checker (minus start) | {fmt_s(import_s - startup_s)} "
        f"| {(import_s - startup_s) / full_s:.0%} |"),
        f"| full `archc check architectures/mobilenet_v3_small.arch --json` | {fmt_s(full_s)} | 100% |",
        (f"| &nbsp;&nbsp;of which the cli, parsing, checking, JSON (minus the import) "
        f"| {fmt_s(full_s - import_s)} | {(full_s - import_s) / full_s:.0%} |"),
        (f"| full `archc check architectures/mobilenet_v3_small.arch`, the human form (issue 15: as fast as --json) "
         f"| {fmt_s(archc_human.median)} | {archc_human.median / full_s:.0%} |"),
        (f"| full `archc check architectures/efficientnet.arch --variant b7 --json` | {fmt_s(archc_b7.median)} "
        f"| {archc_b7.median / full_s:.0%} |"),
        (f"| &nbsp;&nbsp;of which the cli, parsing, checking, JSON (minus the import) "
        f"| {fmt_s(archc_b7.median - import_s)} | {(archc_b7.median - import_s) / full_s:.0%} |"),
    ]
    best_all = min(archc_all.times)
    torch_modules = sorted({n.name for _, n in walk(import_tree(archc_all.argv))
                            if n.name == "torch" or n.name.startswith("torch.")})
    split += [
        (f"| full `archc check architectures/efficientnet.arch {' '.join(ANALYSES)} --json` (issue 13: under "
         f"{ANALYSES_TARGET} s, no torch): best {fmt_s(best_all)}, "
         f"{'met' if best_all < ANALYSES_TARGET else f'NOT met by {best_all - ANALYSES_TARGET:.3f} s'}; "
         f"torch imported: {'**yes**: ' + ', '.join(torch_modules[:3]) if torch_modules else 'no'} "
         f"| {fmt_s(archc_all.median)} | {archc_all.median / full_s:.0%} |"),
    ]
    for command, (file, variant) in zip(largest, LARGEST):
        best = min(command.times)
        split.append(f"| full `archc check architectures/{file}.arch --variant {variant} --json` (issue 11: the largest "
                     f"under {ANALYSES_TARGET} s): best {fmt_s(best)}, "
                     f"{'met' if best < ANALYSES_TARGET else f'NOT met by {best - ANALYSES_TARGET:.3f} s'} "
                     f"| {fmt_s(command.median)} | {command.median / full_s:.0%} |")
    split_table = "\n".join(split)

    agree = ["| network | quantity | archc | torchinfo | equal |", "|---|---|---:|---:|:---:|"]
    for name, ak, av, tk, tv, ok in agree_rows:
        agree.append(f"| {name} | `{ak}` / `{tk}` | {av:,} | {tv:,} | {'yes' if ok else '**NO**'} |")
    agree_table = "\n".join(agree)

    imp_table, self_table, imports_ms = import_tables(args.top)
    load_after = os.getloadavg()[0]
    if git_revision() != revision:
        revision += f", but the tree changed during the run (now {git_revision()}): run it again"
        print(f"warning: archc's source changed while timing ({revision})", file=sys.stderr)

    raw = "\n".join(f"- {c.label}: wall " + ", ".join(f"{x:.3f}" for x in c.times)
                    + " s; CPU " + ", ".join(f"{x:.3f}" for x in c.cpu) + " s"
                    for c in commands)

    targets = ", ".join(f"{name} {ratios[name]:.1f}× (≥ {TARGETS[name]:.0f}×)" for name in ratios)
    if not missed:
        verdict = f"TARGETS MET: {targets}."
    else:
        verdict = (f"TARGET NOT MET on {', '.join(missed)}: {targets}. Of archc's {full_s:.3f} s on "
                   f"mobilenet_v3_small, {startup_s:.3f} s is interpreter start, {import_s - startup_s:.3f} s "
                   f"importing the checker and {full_s - import_s:.3f} s the rest.")
    body = [
        ("Targets: `archc check` at least 15× faster than `torchinfo.summary` on mobilenet_v3_small and nin "
         "(issue 2), 25× on efficientnet_b7 (issue 4), and the human form (the table a user reads, without "
         "`--json`) as fast as the JSON one, so 15× too (issue 15); wall time, fresh process each."),
        "",
        f"**{verdict}**",
        "",
        "Medians of wall time; CPU is the child's user + sys time, less disturbed by other load.",
        "",
        table,
        "",
        ("torch runs each layer on every core, so while other jobs share the machine torchinfo's wall time, and its "
         "CPU time (its threads spin while they wait for each other), grow far more than archc's single thread does: "
         "ratios measured under load (see the load averages above) are higher than on an idle machine. Compare runs "
         "at a similar load."),
        "",
        "Where archc's time goes:",
        "",
        split_table,
        "",
        "Both sides agree on the totals:",
        "",
        agree_table,
        "",
        (f"Imports of one `python -X importtime -m archc check architectures/mobilenet_v3_small.arch "
        f"--json` run ({imports_ms:.0f} ms in all; importtime itself adds overhead), "
        f"the {args.top} heaviest by cumulative time:"),
        "",
        imp_table,
        "",
        (f"The {args.top} heaviest by self time (the module's own top-level code, "
        "e.g. building pydantic models):"),
        "",
        self_table,
    ]

    print()
    print(f"archc check vs torchinfo: {args.repeat} fresh processes per command, interleaved, "
          f"after {args.warmup} warm-up round(s). Load average {load_before:.2f} before, "
          f"{load_after:.2f} after ({os.cpu_count()} CPUs). archc at commit {revision}.\n")
    print("\n".join(body))
    if mismatches:
        print("\n" + "!" * 72)
        print("MISMATCH between archc check and torchinfo:")
        for m in mismatches:
            print(f"  {m}")
        print("!" * 72)

    if args.write:
        m = machine()
        today = _dt.date.today().isoformat()
        section = "\n".join([
            BEGIN,
            "## `archc check` vs `torchinfo.summary`",
            "",
            (f"Measured {today} by `python benchmarks/check_speed.py --repeat {args.repeat} --write`; "
            "every figure below comes from that one run. Absolute seconds depend on the machine "
            "and its load; compare the ratios."),
            "",
            (f"- Machine: {m['cpu']}, {m['cores']} cores, {m['os']}; "
            f"load average {load_before:.2f} before the run, {load_after:.2f} after"),
            f"- archc at commit {revision}",
            (f"- Python {m['python']}, torch {m['torch']}, torchvision {m['torchvision']}, "
            f"torchinfo {m['torchinfo']}"),
            (f"- Each command ran {args.repeat} times in a fresh interpreter (`sys.executable`), "
            f"interleaved, after {args.warmup} warm-up round(s), with bytecode caching and archc's parse cache "
            "on."),
            ("- archc side: `python -m archc check architectures/<net>.arch --json` (the human form: the same "
            "without `--json`, its stdout a pipe, so the table is not fitted to a terminal). torchinfo side: "
            "a fresh `python -c` that imports torch, torchvision and torchinfo and runs "
            "`torchinfo.summary(..., input_size=(1, C, H, W), verbose=0, mode=\"eval\")` on "
            "`torchvision.models.mobilenet_v3_small()` (224×224), d2l's NiN in plain `torch.nn` (224×224) "
            "or `torchvision.models.efficientnet_b7()` (600×600)."),
            "",
            *body,
            "",
            "<details><summary>Raw timings</summary>",
            "",
            raw,
            "",
            "</details>",
            END,
        ])
        write_section("check_speed", section)
        print(f"\nwrote {RESULTS.relative_to(ROOT)}")

    if mismatches:
        print("\nexit 1: archc and torchinfo disagree", file=sys.stderr)
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
