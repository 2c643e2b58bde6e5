"""A worker of benchmarks/fuzz.py: runs mutants through archc's stages in its own process.

It reads jobs (JSON lines: {"index": i, "binary": bool}) on stdin and writes
one JSON line of results per job. Stages, in process: parse; check; fmt
(idempotent, the tree unchanged, check's result unchanged); the generated
source (it compiles); with `--torch`, the network built by torch, in memory
and from the generated file. `binary` jobs also run the `archc` command on the
mutant's files. Each stage is capped: CPU time (a SIGXCPU past HANG_CPU + 1 s
kills the worker, faulthandler dumping where it was; the driver restarts it),
address space (a huge allocation is a MemoryError, not a machine out of
memory), and its peak RSS is measured from VmHWM, reset before each stage.
"""

from __future__ import annotations

import faulthandler
import importlib.util
import json
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

from fuzz_mutate import HOSTS, ROOT, SOURCES, mutant

HANG_CPU = 5.0  # seconds of CPU for one stage of one input: more is a hang
PEAK_MB = 200  # peak resident memory of one input, in MB
FAITHFUL_EVERY = 4  # every 4th formatted mutant is checked again (all have their trees compared)
ADDRESS_SPACE = {False: 4 << 30, True: 10 << 30}  # bytes, without and with torch (its import maps 3.5 GB)
CORE = ("compiler/elaborate.py", "compiler/evaluate.py", "compiler/graph.py", "compiler/tables.py",
        "compiler/check.py", "compiler/emit_torch.py", "compiler/emit_source.py", "compiler/emit_blocks.py",
        "compiler/naming.py", "compiler/resolve.py", "compiler/conventions.py", "compiler/inplace.py",
        "compiler/ops/", "compiler/templates/", "archc/api.py")


def owner(where: str | None) -> str:
    """"core" for a place in the compiler core (the lead's rewrite, issue 10/12), "front" for the rest of
    archc (grammar, dsl, file reading, the command line, pictures), "unknown" without a place."""
    if not where:
        return "unknown"
    return "core" if where.startswith(CORE) else "front"


def innermost(frames) -> str | None:
    """`path:line in function` of the innermost frame in archc's own source, or None; `frames` are
    (path, line, function) triples or a traceback's FrameSummary objects."""
    for frame in reversed(list(frames)):
        path, line, function = frame[:3] if isinstance(frame, tuple) else (frame.filename, frame.lineno, frame.name)
        try:
            relative = Path(path).resolve().relative_to(ROOT).as_posix()
        except ValueError:
            continue
        if not relative.startswith(("benchmarks/", "tests/", ".venv/")):
            return f"{relative}:{line} in {function}"
    return None


def frames_of_dump(text: str) -> list[tuple[str, int, str]]:
    """The frames of a faulthandler dump, outermost first (it lists the innermost first)."""
    found = re.findall(r'File "([^"]+)", line (\d+) in (\S+)', text)
    return [(path, int(line), function) for path, line, function in reversed(found)]


def _peak_mb() -> float:
    with open("/proc/self/status") as f:
        return int(re.search(r"VmHWM:\s*(\d+)", f.read()).group(1)) / 1024


def _reset_peak() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS (Linux 4.0+)
    except OSError:
        pass


class Stages:
    """The stages of one job; each failure is a dict: kind, stage, owner, where, error."""

    def __init__(self, index: int, peak_cap: float | None):
        self.index, self.failures, self.cpu, self.peak, self.peak_cap = index, [], {}, {}, peak_cap

    def run(self, stage: str, fn, expected: tuple = ()):
        """fn() within the caps; (value, None), or (None, the expected exception), or (None, None) after a failure."""
        _reset_peak()
        used = resource.getrusage(resource.RUSAGE_SELF)
        limit = int(used.ru_utime + used.ru_stime + HANG_CPU) + 2
        resource.setrlimit(resource.RLIMIT_CPU, (limit, resource.RLIM_INFINITY))
        start, value, caught = time.process_time(), None, None
        try:
            value = fn()
        except expected as error:
            caught = error
        except MemoryError:
            self.fail("memory", stage, innermost(traceback.extract_tb(sys.exc_info()[2])), "MemoryError")
        except Exception as error:  # noqa: BLE001 - any other exception is what the fuzz is looking for
            where = innermost(traceback.extract_tb(error.__traceback__))
            self.fail("traceback", stage, where, f"{type(error).__name__}: {str(error)[:300]}")
        cpu = time.process_time() - start
        self.cpu[stage] = round(cpu, 4)
        self.peak[stage] = round(_peak_mb(), 1)
        if cpu > HANG_CPU:
            self.fail("hang", stage, None, f"{cpu:.1f} s of CPU")
        if self.peak_cap is not None and self.peak[stage] > self.peak_cap:
            self.fail("memory", stage, None, f"peak RSS {self.peak[stage]:.0f} MB")
        return value, caught

    def fail(self, kind: str, stage: str, where: str | None, error: str, blame: str | None = None) -> None:
        """One failure; without a place, a hang or a memory peak is the stage's: parse and fmt are the
        front's, check, source and torch the core's (elaboration dwarfs reading the file)."""
        if blame is None and where is None:
            blame = "front" if stage.replace("archc ", "").startswith(("parse", "fmt")) else "core"
        self.failures.append({"kind": kind, "stage": stage, "owner": blame or owner(where), "where": where,
                              "error": error})


def _signature(report) -> tuple:
    """What fmt must not change: the figures and layers, and which diagnostics (by code: lines move)."""
    layers = [(l.name, l.op, tuple(l.output_shape), l.params, l.macs) for l in report.layers]
    codes = sorted((d.code, d.severity) for d in report.diagnostics)
    return report.ok, report.network, report.params, report.macs, tuple(report.output_shape), tuple(layers), tuple(codes)


class Job:
    """One mutant, written where its check reads it: a network alone, or a library beside a network using it."""

    def __init__(self, seed: int, index: int, folder: Path):
        self.name, self.text = mutant(seed, index)
        self.folder = folder / "m"  # one path per zoo file, so the parse cache keeps one entry for each
        (self.folder / "blocks").mkdir(parents=True, exist_ok=True)
        if self.name in HOSTS:  # a library: checked through its host, and alone
            self.edited = self.folder / self.name
            self.network = self.folder / "host.arch"
            self.network.write_text(SOURCES[HOSTS[self.name]], encoding="utf-8")
        else:
            self.edited = self.network = self.folder / Path(self.name).name
        self.write(self.text)

    def write(self, text: str) -> None:
        self.edited.write_bytes(text.encode("utf-8", "surrogatepass"))


def run_job(seed: int, job: dict, folder: Path, with_torch: bool) -> dict:
    from archc.compiler.check import UsageError, build_graph
    from archc.compiler.emit_source import emit
    from archc.dsl import ast
    from archc.dsl.cache import cached_parse
    from archc.dsl.diagnostics import ArchError
    from archc.dsl.parse import parse
    from archc.dsl.printer import Printer

    import archc

    index = job["index"]
    # With torch imported the worker's own RSS is hundreds of MB: its peaks say nothing about the input.
    s, m = Stages(index, None if with_torch else PEAK_MB), Job(seed, index, folder)
    outcome = {"index": index, "file": m.name}
    # Through the parse cache, as check reads it: check then finds the tree there (and tests the cache).
    tree, syntax = s.run("parse", lambda: cached_parse(m.text, str(m.edited)), (ArchError,))
    outcome["syntax"] = syntax is not None
    report, usage = s.run("check", lambda: archc.check(m.network), (UsageError,))
    if m.edited != m.network:
        s.run("check library", lambda: archc.check(m.edited), (UsageError,))
    outcome["usage"] = usage is not None
    outcome["ok"] = bool(report is not None and report.ok and report.network)
    if tree is not None:
        # format_source is Printer(parse(text), text).print(): the trees parsed above are printed, so that each
        # text is parsed once (parsing was two thirds of the fuzz's CPU); `archc fmt` runs whole in _binary.
        formatted, _ = s.run("fmt", lambda: Printer(tree, m.text).print(), (ArchError,))
        if formatted is not None:
            reparsed, error = s.run("fmt reparse", lambda: parse(formatted, str(m.edited)), (ArchError,))
            if error is not None or (reparsed is not None and
                                     ast.strip_spans(reparsed)["items"] != ast.strip_spans(tree)["items"]):
                s.fail("fmt changed the tree", "fmt", "dsl/printer.py", str(error or "a different tree"))
            if reparsed is not None:
                again, _ = s.run("fmt twice", lambda: Printer(reparsed, formatted).print(), (ArchError,))
                if again != formatted:
                    s.fail("fmt not idempotent", "fmt", "dsl/printer.py", "formatting the output again changed it")
            if index % FAITHFUL_EVERY == 0:  # the same tree means the same check; this checks that too
                m.write(formatted)
                after, after_usage = s.run("fmt check", lambda: archc.check(m.network), (UsageError,))
                m.write(m.text)
                if (after_usage is None) != (usage is None) or \
                        (after and report and _signature(after) != _signature(report)):
                    s.fail("fmt changed check's result", "fmt", "dsl/printer.py", "check of the formatted file differs")
    source = None
    if outcome["ok"]:
        graph, refused = s.run("source", lambda: build_graph(m.network), (ArchError,))
        if refused is not None:
            s.fail("check accepted, build_graph refused", "source", None, str(refused)[:300], blame="core")
        elif graph is not None:
            source, e500 = s.run("source", lambda: emit(graph), (ArchError,))
            outcome["e500"] = e500 is not None
            if source is not None:
                _, bad = s.run("source compiles", lambda: compile(source, "generated.py", "exec"), (SyntaxError, ValueError))
                if bad is not None:
                    s.fail("generated source does not compile", "source", None, f"{type(bad).__name__}: {bad}",
                           blame="core")
                    source = None
    if with_torch and source is not None:
        _torch_build(s, m, report, source)
    if job.get("binary"):
        _binary(s, m, outcome["ok"], measure_peak=not with_torch)
    outcome.update(failures=s.failures, cpu=s.cpu, peak_mb=None if with_torch else max(s.peak.values(), default=0.0),
                   torch=with_torch and source is not None)
    return outcome


def _torch_build(s: Stages, m: Job, report, source: str) -> None:
    """Build the network with torch, in memory and from the generated file: both must hold report.params."""
    from archc.api import build

    def in_memory():
        return sum(p.numel() for p in build(m.network).parameters())

    def generated():
        path = m.folder / "generated.py"
        path.write_text(source, encoding="utf-8")
        spec = importlib.util.spec_from_file_location(f"archc_fuzz_{s.index}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)  # archc's own output for the mutant, not the mutant's text
        return sum(p.numel() for p in module.build().parameters())

    for stage, fn in (("torch build", in_memory), ("torch build of the source", generated)):
        count, _ = s.run(stage, fn)
        if count is not None and count != report.params:
            s.fail("torch disagrees", stage, None, f"{count:,} parameters, check says {report.params:,}", blame="core")


def _binary(s: Stages, m: Job, ok: bool, measure_peak: bool) -> None:
    """The `archc` command on the mutant's files: exit 0/1/2, no traceback, JSON that parses, within the caps."""
    runs = [("archc check", ["check", str(m.network), "--json"]), ("archc fmt", ["fmt", "--check", str(m.edited)])]
    if ok:
        runs.append(("archc build", ["build", str(m.network), "-o", str(m.folder / "built.py")]))
    for stage, args in runs:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        try:
            done = subprocess.run([sys.executable, "-m", "archc", *args], capture_output=True, text=True,
                                  errors="replace", timeout=60, cwd=m.folder)
        except subprocess.TimeoutExpired:
            s.fail("hang", stage, None, "no exit within 60 s of wall time")
            continue
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        s.cpu[stage] = round(cpu, 4)
        # ru_maxrss of the children is the largest any has reached (this one's own peak only when it sets a
        # new record); it includes what Linux carries over exec from this worker, so it is an upper bound.
        if measure_peak and after.ru_maxrss > before.ru_maxrss and after.ru_maxrss / 1024 > PEAK_MB:
            s.fail("memory", stage, None, f"peak RSS {after.ru_maxrss / 1024:.0f} MB")
        if cpu > HANG_CPU:
            s.fail("hang", stage, None, f"{cpu:.1f} s of CPU")
        if done.returncode not in (0, 1, 2):
            s.fail("exit status", stage, None, f"exit {done.returncode}: {done.stderr[-300:]}")
        if "Traceback" in done.stderr:
            frames = re.findall(r'File "([^"]+)", line (\d+), in (\S+)', done.stderr)
            where = innermost([(p, int(n), f) for p, n, f in frames])
            s.fail("traceback", stage, where, done.stderr.strip().splitlines()[-1][:300])
        elif stage == "archc check":
            try:
                json.loads(done.stdout)
            except ValueError as error:
                s.fail("not JSON", stage, "archc/cli.py", str(error))


def main() -> None:
    seed, with_torch, dump = int(sys.argv[1]), sys.argv[2] == "torch", sys.argv[3]
    dump_file = open(dump, "a")  # noqa: SIM115 - open for the worker's life: faulthandler writes to it
    faulthandler.register(signal.SIGXCPU, file=dump_file, all_threads=False, chain=True)
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE[with_torch], resource.RLIM_INFINITY))
    # Imports first, so that a stage's CPU is its own work.
    import archc.compiler.check  # noqa: F401
    import archc.compiler.emit_source  # noqa: F401
    import archc.dsl.parse  # noqa: F401
    import archc.dsl.printer  # noqa: F401

    if with_torch:
        import archc.compiler.emit_torch  # noqa: F401
    folder = Path(tempfile.mkdtemp(prefix="archc-fuzz-"))
    for line in sys.stdin:
        job = json.loads(line)
        faulthandler.dump_traceback_later(300, exit=True, file=dump_file)  # a wait that uses no CPU
        result = run_job(seed, job, folder, with_torch)
        faulthandler.cancel_dump_traceback_later()
        sys.stdout.write(json.dumps(result) + "\n")
        sys.stdout.flush()
        _remove(folder / "m")


def _remove(path: Path) -> None:
    for item in sorted(path.rglob("*"), reverse=True):
        item.rmdir() if item.is_dir() else item.unlink()
    path.rmdir()


if __name__ == "__main__":
    main()
