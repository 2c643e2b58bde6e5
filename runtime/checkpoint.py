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
from pathlib import Path
from typing import Any

from ..dsl.record import replace
from .ckpt_format import FORMAT, VERSION, ZIP_MAGIC


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
    """Read a checkpoint with `weights_only=True`, its metadata validated (runtime/ckpt_schema.py).

    CheckpointError, saying in words what is wrong, if it is not a readable archc checkpoint.
    """
    import warnings

    import torch

    from .ckpt_schema import validated
    from .files import NotRegularFile, open_regular

    try:
        handle = open_regular(path)
    except FileNotFoundError:
        raise CheckpointError(f"no such checkpoint: {path}") from None
    except OSError as error:  # a folder, a FIFO, no permission
        why = str(error).removeprefix(f"{path} ") if isinstance(error, NotRegularFile) else error.strerror or str(error)
        raise CheckpointError(f"{path} is not a readable checkpoint: {why}") from None
    try:
        with handle, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's note on a pickle protocol it did not write
            payload = torch.load(handle, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - torch.load of a foreign file fails in many ways; each is said in words
        raise CheckpointError(f"{path} is not a readable checkpoint: {_unreadable(path, error)}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an archc checkpoint (archc train writes them: best.pt, last.pt)")
    if payload.get("version") != VERSION:
        raise CheckpointError(f"{path} is an archc checkpoint of version {str(payload.get('version'))[:20]}; "
                              f"this archc reads version {VERSION}")
    try:
        return validated(payload)
    except ValueError as error:
        raise CheckpointError(f"{path} is not a usable archc checkpoint: {error}") from None


def _unreadable(path: str | Path, error: Exception) -> str:
    """Why torch.load refused a regular file, in words rather than its internals (a KeyError of 101 for text)."""
    import pickle

    from .files import open_regular

    if isinstance(error, pickle.UnpicklingError) and "Weights only load failed" in str(error):
        return ("it holds Python objects besides tensors and plain values, which a safe load (weights_only=True) "
                "refuses; archc train's checkpoints hold none")
    try:
        with open_regular(path) as handle:
            head = handle.read(4)
    except OSError:
        head = b""
    if not head:
        return "the file is empty"
    if head == ZIP_MAGIC:
        return "its zip archive is damaged or cut short (an interrupted copy?)"
    if head[:1] == b"\x80":
        return "it is a pickle, but not one torch.save wrote (or one cut short)"
    return "it is not a file torch.save wrote (neither a zip archive nor a pickle)"


def arch_sources(main_file: str | Path) -> tuple[str, dict[str, str]]:
    """(main file's relative name, {relative path: text}) for the main .arch file and what it uses.

    Files of the shipped block library are left out: `use` finds them again
    when the checkpoint is rebuilt. Paths are relative to the deepest folder
    holding all the others, so they never need `..`.

        >>> from archc.compiler.program import library_dir
        >>> main, sources = arch_sources(library_dir() / "resnet.arch")
        >>> main, sorted(sources)  # blocks/resnet.arch is the library's: use finds it again
        ('resnet.arch', ['resnet.arch'])
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
    """(the network in eval mode with the checkpoint's weights, ckpt), from a checkpoint load_checkpoint read.

    The .arch sources are written to a temporary folder under their relative
    names, then built at the stored variant, parameters and input.

        >>> model, ckpt = build_from_checkpoint(load_checkpoint("runs/resnet18-digits/best.pt"))  # doctest: +SKIP
    """
    import archc

    model = _compiled(ckpt, archc.build)
    try:
        model.load_state_dict(ckpt["model"])
    except (RuntimeError, KeyError) as error:
        first = str(error).strip().splitlines()[0][:300]
        raise CheckpointError(f"the checkpoint's weights do not fit its network: {first}") from None
    return model.eval(), ckpt


def graph_of_checkpoint(ckpt: dict[str, Any]):
    """The checked graph of the checkpoint's network (compiler/check.py's build_graph) at its stored settings;
    CheckpointError unless its output is one logit per stored class."""
    from ..compiler.check import build_graph

    graph = _compiled(ckpt, build_graph)
    output = tuple(graph.layer(graph.result).out_shape)
    if output != (len(ckpt["classes"]),):
        raise CheckpointError(f"the checkpoint names {len(ckpt['classes'])} classes, but its network outputs "
                              f"{'×'.join(map(str, output))} values per image")
    return graph


def _compiled(ckpt: dict[str, Any], compile_):
    """compile_(main file, variant=, input=, **params) over the stored sources written to a temporary
    folder; the compiler's diagnostics come back rendered against the stored files."""
    from ..compiler.check import UsageError
    from ..dsl.diagnostics import ArchError

    sources, main = ckpt["arch_sources"], ckpt["arch_file"]
    with tempfile.TemporaryDirectory(prefix="archc-ckpt-") as folder:
        for name, text in sources.items():
            target = Path(folder, *_safe_parts(name))
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        try:
            return compile_(Path(folder, *_safe_parts(main)), variant=ckpt.get("variant"), input=tuple(ckpt["input"]),
                            **dict(ckpt.get("params") or {}))
        except ArchError as error:
            shown = "\n".join(_rendered(d, Path(folder), sources) for d in error.diagnostics)
            raise CheckpointError(f"the network stored in the checkpoint ({ckpt['network']}) does not compile:\n"
                                  f"{shown}") from None
        except (UsageError, ValueError, TypeError) as error:
            raise CheckpointError(f"cannot rebuild the checkpoint's network {ckpt['network']}: {error}") from None


def _rendered(diagnostic, folder: Path, sources: dict[str, str]) -> str:
    """The diagnostic with the stored file's relative name and text (not the temporary folder's path)."""
    from ..compiler.check import sources_of

    try:
        name = Path(diagnostic.file).relative_to(folder).as_posix()
    except ValueError:  # a file of archc's block library
        return diagnostic.render(sources_of([diagnostic], diagnostic.file, None).get(diagnostic.file))
    return replace(diagnostic, file=f"(stored) {name}").render(sources.get(name))


def _safe_parts(name: str) -> tuple[str, ...]:
    """The parts of a stored relative path; refuse absolute names and `..` (a checkpoint is untrusted input)."""
    from .ckpt_schema import relative_parts

    try:
        return relative_parts(name)
    except ValueError:
        raise CheckpointError(f"the checkpoint names a source file outside its folder: {str(name)[:100]!r}") from None
