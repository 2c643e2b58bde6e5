"""How long after a keystroke does an editor see the diagnostics? (`archc lsp`, issue 16)

A benchmark, not a test: run it by hand on the machine you want figures for.

    python benchmarks/lsp_latency.py            # print the tables
    python benchmarks/lsp_latency.py --edits 60 # more edits per network
    python benchmarks/lsp_latency.py --write    # also update benchmarks/RESULTS.md

One warm server (`python -m archc lsp`, started once, as an editor keeps it) has
mobilenet_v3_small.arch and efficientnet.arch open, the latter checked as B7 (the
server's `variant` setting, as `archc check --variant b7`). Each edit changes one
table cell, as a keystroke does (a didChange with the whole text, as the server asks): an
`exp size` cell of MobileNetV3 (the width of an expansion), a `#Channels` cell of
EfficientNet, each time to a number not written there before, so that every text is
new to the server, as typing makes it. The time is from sending didChange to receiving the publishDiagnostics of
that version, on the client's clock; the edits of the two networks alternate.

The comparison: a warm `torchinfo.summary` of torchvision's efficientnet_b7 at
600×600 (the model built and summarised once, then timed), in a process of its own,
in the same run. Targets (issue 16): the B7 median at most 30 ms, and at least 25x
faster than that summary.

Where the time goes: the same edits replayed in this process through the server's
state (archc/lsp/documents.py) with timers around the checker's stages; what the
server adds on top (the protocol, JSON, publishing) is the latency less the check.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as _dt
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from common import RESULTS, cpu_name, git_revision, markers, write_section  # benchmarks/ is this script's own folder

ROOT = Path(__file__).resolve().parent.parent
ZOO = ROOT / "architectures"
TARGET_MS, TARGET_RATIO = 30.0, 25.0
BEGIN, END = markers("lsp_latency")
# built when a request first needs the figures (hover, inlay hints), after the diagnostics went out
REPORT = "the Report (864 layers), on the first hover or inlay hint: after the diagnostics"

# (file, variant, the cells edited: a unique piece of a row holding a 3-digit number, and that number)
NETWORKS = {
    "mobilenet_v3_small": ("mobilenet_v3_small.arch", None, [
        ("| bneck, 5x5  | 120      |", "120"), ("| bneck, 5x5  | 144      |", "144"),
        ("| bneck, 5x5  | 288      |", "288")]),
    "efficientnet_b7": ("efficientnet.arch", "b7", [
        ("| 14 × 14    | 112       |", "112"), ("| 14 × 14    | 192       |", "192"),
        ("| 7 × 7      | 320       |", "320")]),
}
# A one-line file, whose check takes well under a millisecond: its round trip is what the protocol costs.
PROTOCOL = ("protocol (a one-line file)", "let width = 100\n", [("= 100", "100")])

TORCHINFO = """
import json, statistics, sys, time
import torch, torchvision, torchinfo
name, size, repeat = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
model = getattr(torchvision.models, name)()
summary = lambda: torchinfo.summary(model, input_size=(1, 3, size, size), verbose=0, mode="eval")
first = summary()
times = []
for _ in range(repeat):
    start = time.perf_counter()
    summary()
    times.append(time.perf_counter() - start)
print(json.dumps({"median": statistics.median(times), "times": times, "params": first.total_params}))
"""


@dataclass
class Timing:
    name: str
    ms: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.ms)

    def quantile(self, q: float) -> float:
        ordered = sorted(self.ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def edits(count: int, cells: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """`count` single-cell edits, each a text the server has not seen (as typing gives): the cells in turn,
    each set to the next of 104, 112, 120, ... (a width the network takes), written over its last value."""
    current = {piece: piece for piece, _number in cells}
    out = []
    for i in range(count):
        piece, number = cells[i % len(cells)]
        new = piece.replace(number, str(104 + 8 * i))
        out.append((current[piece], new))
        current[piece] = new
    return out


async def serve_edits(count: int, warmup: int) -> dict[str, Timing]:
    from lsprotocol import types
    from pygls.lsp.client import LanguageClient

    client = LanguageClient("lsp-latency", "1")
    arrived: dict[str, tuple[int | None, float]] = {}
    event = asyncio.Event()

    @client.feature(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    def diagnostics(*args):  # (the client, the params): annotations here are strings pygls cannot resolve
        params: types.PublishDiagnosticsParams = args[-1]
        arrived[params.uri] = (params.version, time.perf_counter())
        event.set()

    await client.start_io(sys.executable, "-m", "archc", "lsp")
    await client.initialize_async(types.InitializeParams(capabilities=types.ClientCapabilities(),
                                                         initialization_options={"variant": "b7"}))
    client.initialized(types.InitializedParams())

    async def answered(uri: str, version: int) -> float:
        while arrived.get(uri, (None,))[0] != version:
            event.clear()
            await asyncio.wait_for(event.wait(), 60)
        return arrived[uri][1]

    docs = {}
    opened = [(key, (ZOO / file).as_uri(), (ZOO / file).read_text(encoding="utf-8"), cells)
              for key, (file, _variant, cells) in NETWORKS.items()]
    opened.append((PROTOCOL[0], (ROOT / "benchmarks" / "one_line.arch").as_uri(), PROTOCOL[1], PROTOCOL[2]))
    for key, uri, text, cells in opened:
        client.text_document_did_open(types.DidOpenTextDocumentParams(
            types.TextDocumentItem(uri=uri, language_id="arch", version=1, text=text)))
        await answered(uri, 1)
        docs[key] = {"uri": uri, "text": text, "version": 1, "edits": edits(warmup + count, cells)}
    timings = {key: Timing(key) for key in docs}
    for i in range(warmup + count):
        for key, doc in docs.items():
            old, new = doc["edits"][i]
            doc["version"] += 1
            doc["text"] = doc["text"].replace(old, new, 1)
            # the whole text, as the server asks (archc/lsp/server.py) and an editor then sends
            change = types.TextDocumentContentChangeWholeDocument(text=doc["text"])
            sent = time.perf_counter()
            client.text_document_did_change(types.DidChangeTextDocumentParams(
                types.VersionedTextDocumentIdentifier(uri=doc["uri"], version=doc["version"]), [change]))
            got = await answered(doc["uri"], doc["version"])
            if i >= warmup:
                timings[key].ms.append((got - sent) * 1000)
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()
    return timings


def stage_times(count: int) -> dict[str, list[float]]:
    """The same edits of efficientnet B7 through the server's state in this process, each checker stage timed."""
    sys.path.insert(0, str(ROOT))
    from archc.compiler import check as check_module
    from archc.compiler import elaborate, pipeline
    from archc.dsl import cache, reparse
    from archc.lsp import documents as documents_module
    from archc.lsp.documents import Documents, Settings
    from archc.compiler.reuse import MEMO

    cache.keep_in_memory()
    MEMO.keep_across_checks()
    stages: dict[str, list[float]] = {}
    current: dict[str, float] = {}

    def timed(owner, name: str, label):
        real = getattr(owner, name)

        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return real(*args, **kwargs)
            finally:
                key = label(args) if callable(label) else label
                current[key] = current.get(key, 0.0) + (time.perf_counter() - start) * 1000

        setattr(owner, name, wrapper)

    def elaboration(args):  # the network asked for (B7) is elaborated first, then the printed one for the cells
        return "elaborate at the defaults (the size cells)" if args[0].as_printed else "elaborate at B7"

    timed(reparse, "parse_by_items", "parse (by items)")
    timed(pipeline, "load", "load (with the parse)")
    timed(pipeline, "resolve", "resolve names")
    timed(elaborate.Elaborator, "run", elaboration)
    timed(documents_module, "checking", "archc.compiler.check.checking (the diagnostics), in all")
    file, variant, cells = NETWORKS["efficientnet_b7"]
    path = str(ZOO / file)
    text = Path(path).read_text(encoding="utf-8")
    documents = Documents()
    documents.settings = Settings(variant=variant)
    for i, (old, new) in enumerate(edits(count + 4, cells)):
        text = text.replace(old, new, 1)
        current.clear()
        start = time.perf_counter()
        documents.set(path, text, i + 2)
        current["the server's state (documents.set), in all"] = (time.perf_counter() - start) * 1000
        start = time.perf_counter()
        documents.checked[path].report  # noqa: B018 - built on hover or inlay hints, after the diagnostics
        current[REPORT] = (time.perf_counter() - start) * 1000
        if i >= 4:
            for key, value in current.items():
                stages.setdefault(key, []).append(value)
    return stages


def torchinfo_ms(name: str, size: int, repeat: int) -> dict:
    import json

    proc = subprocess.run([sys.executable, "-c", TORCHINFO, name, str(size), str(repeat)], cwd=ROOT,
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"torchinfo failed:\n{proc.stderr}")
    result = json.loads(proc.stdout)
    return {"median_ms": result["median"] * 1000, "runs": len(result["times"])}


def machine() -> str:
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"{cpu_name()}, {cores} cores, {platform.system()} {platform.release()}; load average {load:.2f}"


def report(timings, stages, b7_torchinfo, count: int, loads: tuple[str, str]) -> str:
    b7 = timings["efficientnet_b7"]
    ratio = b7_torchinfo["median_ms"] / b7.median
    met_ms, met_ratio = b7.median <= TARGET_MS, ratio >= TARGET_RATIO
    verdict = "TARGETS MET" if met_ms and met_ratio else "TARGETS NOT MET"
    from importlib.metadata import version

    lines = [
        BEGIN,
        "## `archc lsp`: didChange to publishDiagnostics",
        "",
        f"Measured {_dt.date.today().isoformat()} by `python benchmarks/lsp_latency.py --edits {count} --write`; every "
        "figure below comes from that one run.",
        "",
        f"- Machine: {loads[0]} before the run, {loads[1].split('load average ')[1]} after",
        f"- archc at commit {git_revision()}; Python {platform.python_version()}, pygls "
        f"{version('pygls')}",
        f"- One warm server (`python -m archc lsp`), both files open; {count} timed single-cell edits of each after "
        "warm-up (three cells of each in turn, each edit a text the server has not seen), the two networks "
        "alternating; time from sending "
        "didChange to receiving that version's publishDiagnostics.",
        f"- torchinfo: `torchinfo.summary(torchvision.models.efficientnet_b7(), input_size=(1, 3, 600, 600), "
        f"mode=\"eval\")`, warm (built and summarised once first), median of {b7_torchinfo['runs']} runs in its own "
        "process.",
        "",
        f"Targets (issue 16): efficientnet B7 median at most {TARGET_MS:.0f} ms, and at least "
        f"{TARGET_RATIO:.0f}× faster than the warm torchinfo summary.",
        "",
        f"**{verdict}: B7 median {b7.median:.1f} ms ({'≤' if met_ms else '>'} {TARGET_MS:.0f} ms: "
        f"{'met' if met_ms else 'not met'}), {ratio:.1f}× torchinfo ({'≥' if met_ratio else '<'} "
        f"{TARGET_RATIO:.0f}×: {'met' if met_ratio else 'not met'}).**",
        "",
        "| network | median | 10th pct | 90th pct | edits | warm torchinfo.summary | torchinfo / archc lsp |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for key, timing in timings.items():  # the networks, then the one-line file
        other = f"{b7_torchinfo['median_ms']:,.0f} ms" if key == "efficientnet_b7" else "-"
        times = f"**{ratio:.1f}×**" if key == "efficientnet_b7" else "-"
        lines.append(f"| {key} | {timing.median:.1f} ms | {timing.quantile(0.1):.1f} ms | "
                     f"{timing.quantile(0.9):.1f} ms | {len(timing.ms)} | {other} | {times} |")
    total = statistics.median(stages["the server's state (documents.set), in all"])
    lines += ["", "Where a B7 re-check's time goes (the same edits replayed in one process through the server's "
              "state, each stage timed; medians, so the parts need not add up exactly):", "",
              "| stage | median | share of the state's time |", "|---|---:|---:|"]
    for key, values in stages.items():
        share = "not in it" if key == REPORT else f"{statistics.median(values) / total:.0%}"
        lines.append(f"| {key} | {statistics.median(values):.1f} ms | {share} |")
    protocol = timings[PROTOCOL[0]].median
    lines.append(f"| the protocol: a didChange read, answered and its publishDiagnostics written and read (the "
                 f"one-line file's round trip, above) | {protocol:.1f} ms | |")
    lines += ["", "The server re-parses only the edited row (or, for another edit, the edited item: "
              "dsl/reparse.py), re-checks only the documents whose inputs changed and none for an edit that "
              "leaves every item as it was (a comment). Elaboration replays what the last check made where nothing "
              "it reads changed (compiler/reuse.py): a table row of a section at its place, a block instance with "
              "the same template, arguments and input, renamed where it stands at another path (the blocks nested "
              "in the next repeat of a row), so a check elaborates the edited row and the first block after it. "
              "B7 is elaborated twice (the size cells are checked at the defaults, then the network is computed "
              "at B7). The Report (hover, inlay hints) is built when a request first needs it, after the "
              "diagnostics were published. A check runs in one thread, so other load on the machine (see the "
              "load averages) lengthens it in proportion; torchinfo's summary is slowed too, which keeps the "
              "ratio.",
              END]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--edits", type=int, default=40, help="timed edits per network (default 40)")
    ap.add_argument("--warmup", type=int, default=6, help="untimed edits first (default 6)")
    ap.add_argument("--torchinfo-runs", type=int, default=5, help="timed torchinfo summaries (default 5)")
    ap.add_argument("--write", action="store_true", help=f"replace the section in {RESULTS.relative_to(ROOT)}")
    args = ap.parse_args(argv)
    before = machine()
    print("lsp: timing edits in one server ...", file=sys.stderr, flush=True)
    timings = asyncio.run(serve_edits(args.edits, args.warmup))
    print("lsp: the checker's stages ...", file=sys.stderr, flush=True)
    stages = stage_times(args.edits)
    print("torchinfo: warm efficientnet_b7 summaries ...", file=sys.stderr, flush=True)
    b7 = torchinfo_ms("efficientnet_b7", 600, args.torchinfo_runs)
    section = report(timings, stages, b7, args.edits, (before, machine()))
    print(section)
    if args.write:
        write_section("lsp_latency", section)
        print(f"wrote {RESULTS.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
