"""The run folder (`--out`): made or refused before any work, locked while a run trains into it, and
cleared of the temp files a killed write leaves.

One process at a time: `archc train --out DIR` (or `--resume`) while another run trains into DIR
would interleave two runs' checkpoints, so the run holds an exclusive `flock` on `DIR/.lock` until it
ends. The kernel drops the lock when its process dies, kill -9 included, so a killed run can be
resumed at once, and a lock is never stale.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder, RunLock(Path(folder)):
    ...     try:
    ...         RunLock(Path(folder)).acquire()
    ...     except FolderInUse as error:
    ...         print(error)
    /...: another archc train (process ...) is training into it; ...
"""

from __future__ import annotations

import os
from pathlib import Path

LOCK_NAME = ".lock"
TEMP_PATTERN = ".*.tmp"  # checkpoint, metrics.csv, summary.json and config.json temp files (all start with ".")


class FolderInUse(Exception):
    """Another process holds the run folder's lock."""


class OutError(Exception):
    """--out names something that cannot be a run folder (a file, or a place where no folder can be made)."""


def prepare_out(out: Path) -> Path:
    """Make the run folder (and its parents); OutError saying why it cannot be."""
    if out.exists() and not out.is_dir():
        raise OutError(f"--out {out}: that is a file, not a folder; give the run a folder of its own")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutError(f"--out {out}: cannot make the folder there ({error.strerror or error})") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise OutError(f"--out {out}: the folder is not writable")
    return out


class RunLock:
    """An exclusive, non-blocking lock on a run folder, held from `acquire` (or `with`) until `release`."""

    def __init__(self, folder: Path):
        self.path = folder / LOCK_NAME
        self.handle: int | None = None

    def acquire(self) -> RunLock:
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock (the rest works as before)
            return self
        try:
            handle = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise OutError(f"--out {self.path.parent}: cannot write there ({error.strerror or error})") from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(handle, 32).decode(errors="replace").strip() or "?"
            os.close(handle)
            raise FolderInUse(f"{self.path.parent}: another archc train (process {holder}) is training into it; "
                              "wait for it to end (or stop it) before resuming or starting a run there") from None
        os.ftruncate(handle, 0)
        os.write(handle, f"{os.getpid()}\n".encode())
        self.handle = handle
        return self

    def release(self) -> None:
        if self.handle is not None:
            os.close(self.handle)  # closing the descriptor drops the flock
            self.handle = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def remove_stale_temp_files(folder: Path) -> list[Path]:
    """Delete the temp files of writes that a kill interrupted (`.last.pt.k3j2.tmp`, ...); returns them.
    Only called with the folder's lock held, so no live write is among them."""
    stale = [p for p in folder.glob(TEMP_PATTERN) if p.is_file()]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


RUN_FILES = ("last.pt", "best.pt", "summary.json")


def earlier_run(folder: Path) -> str | None:
    """What of a run `folder` holds already (its checkpoints or summary, or a fold's), as a phrase; None if
    nothing. A new run there would overwrite them, so it is refused unless it resumes."""
    found = [p for name in RUN_FILES for p in [folder / name, *sorted(folder.glob(f"fold-*/{name}"))] if p.is_file()]
    if not found:
        return None
    shown = ", ".join(str(p.relative_to(folder)) for p in found[:3])
    return shown + (f" and {len(found) - 3} more" if len(found) > 3 else "")

