"""`archc study`: several networks trained with one recipe on one data split, and seed 000's comparison.

    archc study architectures/nin_v1.arch architectures/nin_v2.arch architectures/inception_v3.arch \\
        --data faces/ --kfold 5 --epochs 10 --memory 6GiB --out runs/faces-study

Each network (`FILE` or `FILE:VARIANT`) is checked first, at the study's input with the data's
number of classes: its params, mult-adds and the largest batch that fits `--memory` come from
`archc check`. A network that cannot take the study's input (Inception v3 needs 75×75) is trained
at the smallest square input above it that it can take, and the study says so. Then every network
is trained, every fold, as `archc train --kfold K` would train it, into `OUT/<network>/`, and the
comparison — params, mult-adds, largest batch, time per epoch, images/s, best validation accuracy
per fold and their mean ± std — is printed and written as study.md, study.csv, study.json and
study.png (accuracy with error bars against mult-adds; runtime/study_report.py).

A study is resumable: run again with the same `--out`, it skips the networks whose run finished,
resumes the one that was interrupted (its finished folds are kept) and starts the rest; a study
folder refuses another recipe. Runs go one at a time in this process; with several GPUs, one per
GPU in parallel (each a process of its own, `--parallel N` to choose); with `--ray ADDRESS`, each
run is a Ray task with a GPU of its own where the cluster has GPUs (runtime/study_jobs.py).

    >>> from archc import zoo_path
    >>> smallest_square(str(zoo_path("inception_v3.arch")), None, [3, 32, 32], {"num_classes": 4})
    75
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from .config import ConfigError, TrainConfig
from .outputs import mean_and_std, write_json

MAX_SIDE = 2048  # the smallest input a network takes is looked for up to this side


@dataclass
class Entry:
    """One network of the study, as checked before training."""

    spec: str  # as given: FILE or FILE:VARIANT
    label: str  # its run folder's name under the study's
    file: str
    variant: str | None
    input: list[int]  # C, H, W it is trained at
    input_note: str | None  # why that is not the study's input
    params: int
    macs: int  # per image, archc check's convention (torchinfo's mult-adds)
    max_batch: int | None  # the largest batch that fits --memory, if given
    set: dict  # the --set values this network has a parameter for (each applies to the networks that have it)


def plan(specs: list[str], cfg: TrainConfig, memory: str | None) -> list[Entry]:
    """Check every network at the study's input and the data's classes; ConfigError for what cannot be a study."""
    from ..compare import split_spec
    from ..compiler.check import UsageError

    if not specs:
        raise ConfigError("archc study needs at least one network: FILE or FILE:VARIANT")
    for name in ("init", "freeze", "lr_head"):
        if getattr(cfg, name):
            raise ConfigError(f"--{name.replace('_', '-')} belongs to one network: fine-tune each with archc train")
    classes, digits = _classes(cfg)
    entries, labels = [], set()
    for spec in specs:
        path, variant = split_spec(spec)
        if not Path(path).is_file():
            raise ConfigError(f"no such file: {path}")
        label = _unique(Path(path).stem + (f"-{variant}" if variant else ""), labels)
        try:
            entries.append(_entry(spec, label, path, variant, cfg, classes, digits, memory))
        except (UsageError, ValueError) as error:  # a bad --memory, --input or parameter value
            raise ConfigError(f"{spec}: {error}") from None
    unused = set(cfg.set) - {name for entry in entries for name in entry.set}
    if unused:
        raise ConfigError(f"--set: no network here has the parameter {', '.join(sorted(unused))}")
    return entries


def _classes(cfg: TrainConfig) -> tuple[int, bool]:
    """(the number of classes, whether it is the embedded digits)."""
    if cfg.data is None:
        return 10, True
    from .data import folder_pool

    if not Path(cfg.data).is_dir():
        raise ConfigError(f"--data {cfg.data}: no such folder")
    return len(folder_pool(cfg.data, check_decode=False).classes), False


def _unique(label: str, taken: set[str]) -> str:
    name, k = label, 2
    while name in taken:
        name, k = f"{label}-{k}", k + 1
    taken.add(name)
    return name


def _entry(spec: str, label: str, path: str, variant: str | None, cfg: TrainConfig, classes: int, digits: bool,
           memory: str | None) -> Entry:
    import archc

    from ..compiler.check import parse_input

    names = archc.check(path, variant=variant).parameters
    given = {k: v for k, v in cfg.set.items() if k in names}
    declared = archc.check(path, variant=variant, **given)
    if not declared.ok:
        raise ConfigError(f"{spec} has errors: run archc check {path}" + (f" --variant {variant}" if variant else ""))
    params = {**given, **({"num_classes": classes} if "num_classes" in declared.parameters else {})}
    if cfg.input:
        wanted = list(parse_input(cfg.input))
    else:
        wanted = [1, 32, 32] if digits else [3, *declared.input[1:]]
    report = archc.check(path, variant=variant, input=tuple(wanted), memory=memory, **params)
    shape, note = wanted, None
    if not report.ok:
        first = next(d for d in report.diagnostics if d.severity == "error")
        side = smallest_square(path, variant, wanted, params)
        if side is None:
            raise ConfigError(f"{spec} cannot take the study's input {_size(wanted)} ({first.message}), nor any "
                              f"square input up to {MAX_SIDE}")
        shape = [wanted[0], side, side]
        note = f"at {_size(wanted)}: {first.message}; {_size(shape)} is the smallest square input it takes above"
        report = archc.check(path, variant=variant, input=tuple(shape), memory=memory, **params)
    if report.output_shape != [classes]:
        raise ConfigError(f"{spec} outputs {_size(report.output_shape)} values per image, but the data has {classes} "
                          "classes (the network has no num_classes parameter to set)")
    return Entry(spec, label, path, variant, shape, note, report.params, report.macs, report.max_batch, given)


def smallest_square(path: str, variant: str | None, wanted: list[int], params: dict) -> int | None:
    """The smallest side S > the wanted one at which the network checks at C×S×S; None below MAX_SIDE. Networks
    that take a side take every larger one (each stage's output only grows with its input), so a doubling then a
    halving search does, in about 2·log2(S) checks."""
    import archc

    def ok(side: int) -> bool:
        return archc.check(path, variant=variant, input=(wanted[0], side, side), **params).ok

    low, high = max(wanted[1:]), max(wanted[1:]) * 2
    while not ok(high):
        low, high = high, high * 2
        if low >= MAX_SIDE:
            return None
    while high - low > 1:  # ok(high), not ok(low)
        middle = (low + high) // 2
        low, high = (low, middle) if ok(middle) else (middle, high)
    return high


def _size(shape: list[int]) -> str:
    return "×".join(str(d) for d in shape)


# --- running --------------------------------------------------------------------------------------------------

def run(specs: list[str], cfg: TrainConfig, *, out: str | None = None, memory: str | None = None,
        parallel: int | None = None, ray: str | None = None, log=print) -> dict:
    """Plan, train every network not trained yet, and write the comparison; returns study.json's content."""
    from .runfolder import OutError, prepare_out
    from .study_jobs import Job, run_jobs
    from .study_report import write_outputs

    began = time.perf_counter()
    entries = plan(specs, cfg, memory)
    try:
        folder = prepare_out(Path(out or f"runs/study-{time.strftime('%Y%m%d-%H%M%S')}"))
    except OutError as error:
        raise ConfigError(str(error)) from None
    recipe = {k: v for k, v in cfg.model_dump().items() if k != "out"}
    _claim(folder, specs, recipe, memory)
    for entry in entries:
        log(f"{entry.label}: {entry.params:,} parameters, {entry.macs / 1e9:.3f} G mult-adds at {_size(entry.input)}"
            + (f", largest batch {entry.max_batch:,} in {memory}" if memory else "")
            + (f" (trained at {_size(entry.input)}: {entry.input_note})" if entry.input_note else ""))
    jobs, finished = [], {}
    for entry in entries:
        run_folder = folder / entry.label
        summary = _finished(run_folder, cfg)
        if summary is not None:
            log(f"{entry.label}: finished before ({run_folder}): kept")
            finished[entry.label] = summary
            continue
        config = {**cfg.model_dump(), "input": _size(entry.input).replace("×", "x"), "variant": entry.variant,
                  "set": entry.set, "out": str(run_folder)}
        jobs.append(Job(entry.label, entry.file, config, resume=(run_folder / "config.json").is_file()))
    finished.update(run_jobs(jobs, parallel=parallel, ray=ray, device=cfg.device, log=log))
    rows = [_row(entry, finished[entry.label], folder) for entry in entries]
    study = {"networks": rows, "recipe": recipe, "memory": memory, "data": cfg.data or "digits",
             "kfold": cfg.kfold, "seconds": round(time.perf_counter() - began, 1)}
    write_outputs(folder, study, log)
    return study


def _claim(folder: Path, specs: list[str], recipe: dict, memory: str | None) -> None:
    """A study folder holds one study: the same networks and recipe when it is run again (to resume it)."""
    mine = {"specs": specs, "recipe": recipe, "memory": memory}
    saved = folder / "study-plan.json"
    if saved.is_file():
        try:
            before = json.loads(saved.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            before = None
        if before != mine:
            differ = [k for k in mine if not isinstance(before, dict) or before.get(k) != mine[k]]
            detail = ", ".join(differ) if differ else "its plan"
            raise ConfigError(f"--out {folder} holds another study (it differs in {detail}); run it again as it was "
                              "to resume it, or give this one another --out")
        return
    write_json(saved, mine)


def _finished(run_folder: Path, cfg: TrainConfig) -> dict | None:
    """The run's summary.json if it finished (with every fold), else None."""
    try:
        summary = json.loads((run_folder / "summary.json").read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return None
    if not isinstance(summary, dict) or (cfg.kfold and len(summary.get("folds", [])) != cfg.kfold):
        return None
    return summary


def _row(entry: Entry, summary: dict, folder: Path) -> dict:
    """One network's line of the comparison, from its check and its run's summary.json."""
    folds = [f["val_accuracy"] for f in summary["folds"]] if "folds" in summary else [summary["val_accuracy"]]
    mean, std = mean_and_std(folds)
    return {**asdict(entry), "run": str(folder / entry.label), "seconds_per_epoch": summary["seconds_per_epoch"],
            "images_per_s": summary["train_images_per_s"], "fold_accuracies": folds, "mean_accuracy": mean,
            "std_accuracy": std}
