"""A seeded mutation fuzz of every zoo file through `check`, `fmt` and `build` (issue 12).

    python benchmarks/fuzz.py --n 2000                    # what the suite runs (tests/test_fuzz.py)
    python benchmarks/fuzz.py --n 100000 --write          # the long run, its figures in RESULTS.md
    python benchmarks/fuzz.py --start 50000 --n 50000 --save b.json   # a part of a long run
    python benchmarks/fuzz.py --merge a.json b.json --write           # the parts as one run
    python benchmarks/fuzz.py --seed 1 --show 1234 > m.arch           # a failing mutant, to reproduce

Mutants (benchmarks/fuzz_mutate.py) go to worker processes (benchmarks/fuzz_worker.py) that run
them in process: parse; check; fmt (idempotent; the same tree; check's result unchanged); the
generated source (it compiles). Every `--binary-every`-th also goes through the `archc` command
(exit 0, 1 or 2, no traceback, JSON that parses); every `--torch-every`-th goes to a worker that
also builds the network with torch, in memory and from the generated file. Each stage of each
input is capped (CPU, address space) and measured (CPU, peak RSS): a failure is a traceback, a
hang (over 5 s of CPU), a peak RSS over 200 MB, an exit status outside 0/1/2, fmt changing the
network or not being idempotent, or generated source that does not compile or build. Each is
attributed to the compiler core (the lead's rewrite: elaboration, evaluation, tables, ops,
emitters) or to the front (grammar, dsl, file reading, the command line).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import selectors
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling modules, also when imported by tests

from common import cpu_name, git_revision, markers, write_section  # noqa: E402
from fuzz_mutate import mutant  # noqa: E402
from fuzz_worker import HANG_CPU, PEAK_MB, frames_of_dump, innermost, owner  # noqa: E402

WORKER = Path(__file__).resolve().parent / "fuzz_worker.py"
SIGXCPU = 24
KEEP = 200  # failures kept in full in a saved run; the rest are counted


class Worker:
    """A fuzz_worker.py process and the job it is running; restarted when it dies."""

    def __init__(self, seed: int, torch: bool, folder: Path):
        self.seed, self.torch, self.dump = seed, torch, folder / f"dump-{id(self)}.txt"
        self.dump.touch()
        self.env = dict(os.environ, ARCHC_CACHE_DIR=str(folder / f"cache-{id(self)}"), PYTHONDONTWRITEBYTECODE="1")
        self.process, self.job, self.started = None, None, 0.0
        self.start()

    def start(self) -> None:
        self.process = subprocess.Popen([sys.executable, str(WORKER), str(self.seed), "torch" if self.torch else "-",
                                         str(self.dump)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True, env=self.env, cwd=WORKER.parent, bufsize=1)
        self.dumped = self.dump.stat().st_size

    def send(self, job: dict) -> None:
        self.job, self.started = job, time.monotonic()
        self.process.stdin.write(json.dumps(job) + "\n")
        self.process.stdin.flush()

    def died(self) -> dict:
        """The result for the job the worker died in: a hang (SIGXCPU, or faulthandler's wall-time exit) or a
        crash, placed where its dump says it was."""
        self.process.wait()
        code = self.process.returncode
        text = self.dump.read_text(errors="replace")[self.dumped:]
        where = innermost(frames_of_dump(text))
        if code == -SIGXCPU:
            kind, error = "hang", f"killed after {HANG_CPU:.0f} s of CPU"
        elif "Timeout (" in text:  # faulthandler's wall-time backstop: a wait that used no CPU
            kind, error = "hang", "no result within 300 s of wall time"
        else:
            kind, error = "crash", f"worker exited {code}"
        name, _ = mutant(self.seed, self.job["index"])
        result = {"index": self.job["index"], "file": name, "syntax": None, "ok": False, "usage": False, "cpu": {},
                  "peak_mb": None, "torch": False,
                  "failures": [{"kind": kind, "stage": "worker", "owner": owner(where), "where": where, "error": error}]}
        self.start()
        return result


def run(n: int, seed: int = 0, start: int = 0, workers: int = 2, binary_every: int = 50, torch_every: int = 0,
        progress: bool = False) -> dict:
    """Fuzz mutants start .. start + n - 1 of `seed`; returns the summary (see summarise)."""
    began, folder = time.monotonic(), Path(tempfile.mkdtemp(prefix="archc-fuzz-run-"))
    pool = [Worker(seed, False, folder) for _ in range(max(1, workers))]
    torch = Worker(seed, True, folder) if torch_every else None
    jobs = [{"index": i, "binary": bool(binary_every) and i % binary_every == binary_every // 2}
            for i in range(start, start + n)]
    todo = [j for j in jobs if not (torch_every and j["index"] % torch_every == 0)]
    todo_torch = [j for j in jobs if torch_every and j["index"] % torch_every == 0]
    results: list[dict] = []
    selector = selectors.DefaultSelector()
    try:
        for w in pool + ([torch] if torch else []):
            queue = todo_torch if w.torch else todo
            if queue:
                w.send(queue.pop(0))
                selector.register(w.process.stdout, selectors.EVENT_READ, w)
        while len(results) < n:
            for key, _ in selector.select():
                w = key.data
                line = w.process.stdout.readline()
                if line:
                    results.append(json.loads(line))
                else:  # the worker died in its job
                    selector.unregister(key.fileobj)
                    results.append(w.died())
                    selector.register(w.process.stdout, selectors.EVENT_READ, w)
                queue = todo_torch if w.torch else todo
                if queue:
                    w.send(queue.pop(0))
                else:
                    w.job = None
                    selector.unregister(w.process.stdout)
                if progress and len(results) % 1000 == 0:
                    print(f"  {len(results):,}/{n:,} mutants, {time.monotonic() - began:.0f} s", file=sys.stderr)
    finally:
        for w in pool + ([torch] if torch else []):
            w.process.stdin.close()
            w.process.kill()
            w.process.wait()
    summary = summarise(results, seed=seed, start=start, binary_every=binary_every, torch_every=torch_every)
    summary["wall_s"] = round(time.monotonic() - began, 1)
    return summary


def summarise(results: list[dict], **run_args) -> dict:
    """Counts, the worst CPU and peak RSS, and the failures, grouped by what failed where."""
    failures = [dict(f, index=r["index"], file=r["file"]) for r in results for f in r["failures"]]
    peaks = sorted(r["peak_mb"] for r in results if r.get("peak_mb") is not None)
    stage_cpu: dict[str, float] = {}
    for r in results:
        for stage, cpu in r["cpu"].items():
            stage_cpu[stage] = max(stage_cpu.get(stage, 0.0), cpu)
    return {
        **run_args, "n": len(results),
        "files": dict(sorted(Counter(r["file"] for r in results).items())),
        "outcomes": {"syntax error": sum(bool(r["syntax"]) for r in results),
                     "checked, with errors": sum(r["syntax"] is False and not r["ok"] and not r["usage"] for r in results),
                     "usage error": sum(bool(r["usage"]) for r in results),
                     "checked clean": sum(r["ok"] for r in results),
                     "source refused (E500)": sum(bool(r.get("e500")) for r in results),
                     "built with torch": sum(bool(r.get("torch")) for r in results),
                     "through the archc command": sum("archc check" in r["cpu"] for r in results)},
        "cpu_s": {"total": round(sum(sum(r["cpu"].values()) for r in results), 1),
                  "worst stage": dict(sorted(stage_cpu.items()))},
        "peak_mb": {"max": peaks[-1] if peaks else None, "p99": peaks[int(0.99 * (len(peaks) - 1))] if peaks else None,
                    "measured": len(peaks)},
        "failure_count": len(failures),
        "failures": failures[:KEEP],
        "classes": _classes(failures),
    }


def _classes(failures: list[dict]) -> list[dict]:
    """One entry per (owner, kind, stage, place): its count and its first mutants."""
    groups: dict[tuple, dict] = {}
    for f in failures:
        place = (f["where"] or "").split(" in ")[0].rsplit(":", 1)[0] if f["where"] else ""
        key = (f["owner"], f["kind"], f["stage"].split(" ")[0], place, f["error"].split(":")[0][:60])
        entry = groups.setdefault(key, {"owner": key[0], "kind": key[1], "stage": key[2], "where": f["where"],
                                        "error": f["error"], "count": 0, "mutants": []})
        entry["count"] += 1
        if len(entry["mutants"]) < 5:
            entry["mutants"].append(f["index"])
    return sorted(groups.values(), key=lambda c: (c["owner"] != "front", -c["count"]))


def merge(parts: list[dict]) -> dict:
    """Runs of consecutive parts of one seed as one summary (counts add, maxima take the largest)."""
    first = parts[0]
    merged = {k: first[k] for k in ("seed", "binary_every", "torch_every")}
    merged.update(start=min(p["start"] for p in parts), n=sum(p["n"] for p in parts),
                  wall_s=round(sum(p["wall_s"] for p in parts), 1))
    merged["files"] = dict(sum((Counter(p["files"]) for p in parts), Counter()))
    merged["outcomes"] = {k: sum(p["outcomes"].get(k, 0) for p in parts) for k in first["outcomes"]}
    stages = {s for p in parts for s in p["cpu_s"]["worst stage"]}
    merged["cpu_s"] = {"total": round(sum(p["cpu_s"]["total"] for p in parts), 1),
                       "worst stage": {s: max(p["cpu_s"]["worst stage"].get(s, 0) for p in parts) for s in sorted(stages)}}
    merged["peak_mb"] = {"max": max(p["peak_mb"]["max"] or 0 for p in parts), "p99": max(p["peak_mb"]["p99"] or 0 for p in parts),
                         "measured": sum(p["peak_mb"]["measured"] for p in parts)}
    merged["failure_count"] = sum(p["failure_count"] for p in parts)
    merged["failures"] = [f for p in parts for f in p["failures"]][:KEEP]
    merged["classes"] = _classes_merged([c for p in parts for c in p["classes"]])
    return merged


def _classes_merged(classes: list[dict]) -> list[dict]:
    out: dict[tuple, dict] = {}
    for c in classes:
        key = (c["owner"], c["kind"], c["stage"], (c["where"] or "").split(":")[0], c["error"].split(":")[0][:60])
        entry = out.setdefault(key, dict(c, count=0, mutants=[]))
        entry["count"] += c["count"]
        entry["mutants"] = (entry["mutants"] + c["mutants"])[:5]
    return sorted(out.values(), key=lambda c: (c["owner"] != "front", -c["count"]))


def report(summary: dict) -> str:
    """The summary as Markdown (the RESULTS.md section's body)."""
    o, peak = summary["outcomes"], summary["peak_mb"]
    by_owner = Counter(c["owner"] for c in summary["classes"] for _ in range(c["count"]))
    lines = [
        f"{summary['n']:,} mutants of seed {summary['seed']} (numbers {summary['start']:,} to "
        f"{summary['start'] + summary['n'] - 1:,}) of the {len(summary['files'])} zoo files, in {summary['wall_s']:,.0f} s "
        f"of wall time ({summary['cpu_s']['total']:,.0f} s of CPU in the stages).",
        "",
        "| outcome | mutants |", "|---|---:|", *(f"| {k} | {v:,} |" for k, v in o.items()),
        "",
        f"**Failures: {summary['failure_count']:,}** — front (grammar, dsl, file reading, command line): "
        f"{by_owner.get('front', 0):,}; compiler core (elaboration, evaluation, tables, ops, emitters): "
        f"{by_owner.get('core', 0):,}; "
        f"unplaced: {by_owner.get('unknown', 0):,}.",
        f"Peak RSS of one input (in process, VmHWM): max {peak['max'] or 0:.0f} MB, 99th percentile "
        f"{peak['p99'] or 0:.0f} MB over {peak['measured']:,} inputs (limit {PEAK_MB} MB). Worst CPU of one stage: "
        + ", ".join(f"{s} {t:.2f} s" for s, t in summary["cpu_s"]["worst stage"].items()) + f" (a hang: over {HANG_CPU:.0f} s).",
        "",
    ]
    if summary["classes"]:
        lines += ["| owner | kind | stage | where (first) | error (first) | count | mutants |",
                  "|---|---|---|---|---|---:|---|"]
        for c in summary["classes"]:
            error = c["error"].replace("|", "\\|").replace("\n", " ")[:120]
            lines.append(f"| {c['owner']} | {c['kind']} | {c['stage']} | `{c['where'] or '-'}` | {error} | "
                         f"{c['count']:,} | {', '.join(map(str, c['mutants']))} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=2000, help="mutants (default 2000)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--start", type=int, default=0, help="the first mutant's number")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--binary-every", type=int, default=50, help="every Nth mutant also through the archc command")
    ap.add_argument("--torch-every", type=int, default=40, help="every Nth mutant also built with torch (0: none)")
    ap.add_argument("--save", metavar="FILE.json", help="write the summary as JSON")
    ap.add_argument("--merge", nargs="+", metavar="FILE.json", help="merge saved parts instead of running")
    ap.add_argument("--write", action="store_true", help="put the figures in benchmarks/RESULTS.md")
    ap.add_argument("--show", type=int, metavar="INDEX", help="print mutant INDEX of --seed and exit")
    args = ap.parse_args(argv)
    if args.show is not None:
        name, text = mutant(args.seed, args.show)
        print(f"# mutant {args.show} of seed {args.seed}, from architectures/{name}", file=sys.stderr)
        sys.stdout.write(text)
        return 0
    if args.merge:
        summary = merge([json.loads(Path(p).read_text()) for p in args.merge])
        command = f"python benchmarks/fuzz.py --merge {' '.join(args.merge)}"
    else:
        summary = run(args.n, args.seed, args.start, args.workers, args.binary_every, args.torch_every, progress=True)
        command = " ".join(["python benchmarks/fuzz.py", *(argv if argv is not None else sys.argv[1:])])
    body = report(summary)
    print(body)
    if args.save:
        Path(args.save).write_text(json.dumps(summary, indent=1))
    if args.write:
        begin, end = markers("fuzz")
        write_section("fuzz", "\n".join([
            begin, "## Fuzz: mutants of the zoo through check, fmt and build", "",
            f"Measured {_dt.date.today().isoformat()} by `{command.replace(' --write', '')}`; archc at commit "
            f"{git_revision()}; {cpu_name()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at the end.",
            "", body, end]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
