"""What the benchmarks share: the commit and CPU they measured, and their sections of RESULTS.md."""

import platform
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "RESULTS.md"


def markers(name: str, mode: str | None = None) -> tuple[str, str]:
    """The comment lines around a benchmark's section in RESULTS.md (or around one mode's part of it)."""
    key = f"{name}:{mode}" if mode else name
    return f"<!-- {key}:begin -->", f"<!-- {key}:end -->"


def mode_parts(name: str) -> dict[str, str]:
    """The parts of `name`'s section already in RESULTS.md, by mode ("cpu", "cuda"), markers included:
    a run on one device rewrites its part and keeps the other's."""
    begin, end = markers(name)
    old = RESULTS.read_text() if RESULTS.exists() else ""
    if begin not in old or end not in old:
        return {}
    section = old.split(begin, 1)[1].split(end, 1)[0]
    parts = {}
    for mode in ("cpu", "cuda"):
        b, e = markers(name, mode)
        if b in section and e in section:
            parts[mode] = b + section.split(b, 1)[1].split(e, 1)[0] + e
    return parts


def write_section(name: str, section: str) -> None:
    """Put `section` (its markers included) in RESULTS.md in place of `name`'s old one, or at the end."""
    begin, end = markers(name)
    old = RESULTS.read_text() if RESULTS.exists() else "# Benchmarks\n"
    if begin in old and end in old:
        head, rest = old.split(begin, 1)
        new = head + section + rest.split(end, 1)[1]
    else:
        new = old.rstrip("\n") + "\n\n" + section + "\n"
    RESULTS.write_text(new)


def git_revision() -> str:
    """The commit measured, with a note when the working tree differs from it."""
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{rev} (with uncommitted changes)" if dirty else rev


def cpu_name() -> str:
    """The CPU's model name, as /proc/cpuinfo gives it where there is one."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
