"""Checkpoints: one file holds everything `eval`, `predict` and `cam` need.

The payload is plain Python values and tensors, so `torch.load(path,
weights_only=True)` reads it; the network travels as its .arch source (the
main file and every file it `use`s from outside the shipped block library)
with the variant, parameters and input it was trained at:

    {"format": "archc-checkpoint", "version": 1, "network", "arch_file", "arch_sources",
     "variant", "params", "input": [C, H, W], "classes", "normalize": {"mean", "std"},
     "eval_resize", "model", "optimizer", "scheduler", "epoch", "rng", "config", "metrics"}

Writes are atomic (a temp file in the same folder, fsync, rename), so a run
killed mid-write leaves the previous checkpoint whole.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

FORMAT, VERSION = "archc-checkpoint", 1


class CheckpointError(Exception):
    """A file that is not an archc checkpoint, or one whose network cannot be rebuilt."""


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """Write `payload` to `path` atomically: the old file stays whole until the new one is complete."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            torch.save({"format": FORMAT, "version": VERSION, **payload}, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where folders cannot be opened."""
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint with `weights_only=True`; CheckpointError if it is not an archc checkpoint."""
    import pickle

    import torch

    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"no such checkpoint: {path}") from None
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError, KeyError, ValueError, TypeError) as error:
        # torch.load of a foreign file fails in many ways (its legacy-format reader raises KeyError on text)
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(f"{path} is not a readable checkpoint: {first}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an archc checkpoint (archc train writes them: best.pt, last.pt)")
    if payload.get("version") != VERSION:
        raise CheckpointError(f"{path} is an archc checkpoint of version {payload.get('version')}; "
                              f"this archc reads version {VERSION}")
    return payload


def arch_sources(main_file: str | Path) -> tuple[str, dict[str, str]]:
    """(main file's relative name, {relative path: text}) for the main .arch file and what it uses.

    Files of the shipped block library are left out: `use` finds them again
    when the checkpoint is rebuilt. Paths are relative to the deepest folder
    holding all the others, so they never need `..`.
    """
    from ..compiler.program import library_dir, load

    program = load(main_file)
    library = library_dir().resolve()
    main = Path(main_file).resolve()
    kept = {Path(name).resolve(): text for name, text in program.sources.items()
            if Path(name).resolve() == main or library not in Path(name).resolve().parents}
    root = Path(os.path.commonpath([str(p.parent) for p in kept]))
    return main.relative_to(root).as_posix(), {p.relative_to(root).as_posix(): text for p, text in kept.items()}


def build_from_checkpoint(ckpt: dict[str, Any]):
    """(the network in eval mode with the checkpoint's weights, ckpt).

    The .arch sources are written to a temporary folder under their relative
    names, then built at the stored variant, parameters and input.

        >>> model, ckpt = build_from_checkpoint(load_checkpoint("runs/resnet18-digits/best.pt"))  # doctest: +SKIP
    """
    import archc

    from ..dsl.diagnostics import ArchError

    sources, main = ckpt.get("arch_sources"), ckpt.get("arch_file")
    if not isinstance(sources, dict) or main not in sources:
        raise CheckpointError("the checkpoint holds no .arch source for its network")
    with tempfile.TemporaryDirectory(prefix="archc-ckpt-") as folder:
        for name, text in sources.items():
            target = Path(folder, *_safe_parts(name))
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        try:
            model = archc.build(Path(folder, *_safe_parts(main)), variant=ckpt.get("variant"),
                                input=tuple(ckpt["input"]), **dict(ckpt.get("params") or {}))
        except (ArchError, archc.UsageError, ValueError) as error:
            raise CheckpointError(f"cannot rebuild the checkpoint's network {ckpt.get('network')}: {error}") from None
    try:
        model.load_state_dict(ckpt["model"])
    except (RuntimeError, KeyError) as error:
        raise CheckpointError(f"the checkpoint's weights do not fit its network: {error}") from None
    return model.eval(), ckpt


def _safe_parts(name: str) -> tuple[str, ...]:
    """The parts of a stored relative path; refuse absolute names and `..` (a checkpoint is untrusted input)."""
    pure = PurePosixPath(str(name).replace("\\", "/"))
    if pure.is_absolute() or not pure.parts or any(part in ("..", "") for part in pure.parts) or ":" in pure.parts[0]:
        raise CheckpointError(f"the checkpoint names a source file outside its folder: {name!r}")
    return pure.parts
