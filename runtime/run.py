"""`archc train`: read the data, check the network at the data's input, then train a hold-out split
or K folds, and write the run's summary.

    >>> summary = train("architectures/resnet.arch", TrainConfig(variant="resnet18", out="runs/r18"))  # doctest: +SKIP
    >>> summary["val_accuracy"]  # doctest: +SKIP
    0.986

The data decides the input: digits are 1×32×32; a folder gives 3 channels at
the file's declared resolution; `--input` overrides both. It also decides the
number of classes: set as the network parameter `num_classes` when the file
has one, else it must equal the network's output.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from .batches import LoaderBatches, Shard, TensorBatches
from .cache import cache_pool, fits_on_device, free_memory
from .config import ConfigError, TrainConfig
from .data import (
    DataError,
    Pool,
    digits_pool,
    drop_unreadable,
    eval_resize_for,
    folder_pool,
    holdout_split,
    kfold_splits,
    normalization,
    require_every_class,
)
from .distributed import Dist, broadcast, init, shutdown
from .finetune import Source, read_source
from .outputs import fold_table, mean_and_std, write_json
from .runfolder import FolderInUse, OutError, RunLock, earlier_run, prepare_out, remove_stale_temp_files
from .trainer import SUMMARY_CLASSES, Plan, TrainingInterrupted, fit

SKIPPED_LISTED = 1000  # at most this many skipped files are named in summary.json


class NetworkError(Exception):
    """The network has errors at the data's input; the message is the checker's rendered diagnostics."""


def train(file: str | Path, cfg: TrainConfig, resume: bool = False, log=print) -> dict:
    """Train `file` as `cfg` says; returns the summary written to OUT/summary.json."""
    file = Path(file)
    if not file.is_file():
        raise ConfigError(f"no such file: {file}")
    began = time.perf_counter()
    device = _device(cfg.device)
    dist = init(device)
    if device.type == "cuda" and dist.world > 1:
        device = torch.device("cuda", dist.local_rank)
        torch.cuda.set_device(device)
    if device.type == "cpu" and dist.world > 1:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // dist.world))
    tune_backends(device)
    try:
        return _train(file, cfg, resume, device, dist, log if dist.main else _quiet, began)
    finally:
        shutdown(dist)


def tune_backends(device: torch.device) -> None:
    """On a GPU, let cuDNN time its convolution algorithms once per shape and keep the fastest: training
    batches all have one shape (the issue's reference figures and benchmarks/ were measured so)."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True


def _quiet(*_args, **_kwargs) -> None:
    pass


def _train(file: Path, cfg: TrainConfig, resume: bool, device: torch.device, dist: Dist, log, began: float) -> dict:
    digits = cfg.data is None
    if not digits and not Path(cfg.data).is_dir():
        raise ConfigError(f"--data {cfg.data}: no such folder")
    declared = _check(file, cfg.variant, None, dict(cfg.set))
    channels, size = _input_of(cfg, declared.input, digits)
    pool = digits_pool(size) if digits else folder_pool(cfg.data, channels, check_decode=False)  # listed, not read
    params = _with_classes(file, dict(cfg.set), declared.parameters, len(pool.classes))
    report = _check(file, cfg.variant, (channels, *size), params)
    if report.output_shape != [len(pool.classes)]:
        raise DataError(f"{file} outputs {_shape(report.output_shape)} values per image, but the data has "
                        f"{len(pool.classes)} classes" + ("" if "num_classes" in declared.parameters else
                                                          " (the network has no num_classes parameter to set)"))
    init = read_source(cfg.init) if cfg.init else None  # a missing source is said before any long work
    title = cfg.variant or file.stem
    out = Path(broadcast(cfg.out or f"runs/{title}-{time.strftime('%Y%m%d-%H%M%S')}", dist))
    lock = _claim(out, dist, resume)
    try:
        if dist.main:
            remove_stale_temp_files(out)
            write_json(out / "config.json", {"file": str(file), **cfg.model_dump()})  # before anything can fail
        return _train_into(out, file, cfg, resume, device, dist, log, began,
                           Checked(digits, pool, params, report, init))
    except KeyboardInterrupt:  # before the first epoch began
        raise TrainingInterrupted(None, 0, cfg.epochs) from None
    except TrainingInterrupted as interrupted:
        interrupted.out, interrupted.file = out, file  # for the message: the command that resumes
        raise
    finally:
        if lock is not None:
            lock.release()


def _claim(out: Path, dist: Dist, resume: bool) -> RunLock | None:
    """Rank 0 makes the run folder and locks it for the run; every process raises if it could not, or if
    the folder holds an earlier run that a new one (not resuming it) would overwrite."""
    lock, refusal = None, None
    if dist.main:
        try:
            lock = RunLock(prepare_out(out)).acquire()
            held = None if resume else earlier_run(out)
            if held is not None:
                lock.release()
                lock, refusal = None, ("usage", f"--out {out} holds a run already ({held}): continue it with "
                                       "--resume, or give this run another --out (nothing there was changed)")
        except OutError as error:
            refusal = ("usage", str(error))
        except FolderInUse as error:
            refusal = ("busy", str(error))
    refusal = broadcast(refusal, dist)  # so that every process raises, not rank 0 alone
    if refusal is not None:
        raise (ConfigError if refusal[0] == "usage" else FolderInUse)(refusal[1])
    return lock


@dataclass
class Checked:
    """What `_train` found before making the run folder: the data listed, the network checked at its input."""

    digits: bool
    pool: Pool
    params: dict
    report: object  # the checker's Report at the data's input
    init: Source | None  # --init's weights


def _train_into(out: Path, file: Path, cfg: TrainConfig, resume: bool, device: torch.device, dist: Dist, log,
                began: float, checked: Checked) -> dict:
    from .checkpoint import arch_sources

    digits, pool, params, report = checked.digits, checked.pool, checked.params, checked.report
    channels, size = report.input[0], tuple(report.input[1:])
    workers = cfg.workers if cfg.workers is not None else max(0, min(8, (os.cpu_count() or 1) // dist.world))
    eval_resize = eval_resize_for(size, digits)
    decoding, decoded = time.perf_counter(), {}
    pool = _decode(pool, cfg, digits, eval_resize, device, workers, decoded)
    if decoded:
        log(f"decoded {len(pool)} images ({decoded['nvjpeg']} by nvjpeg on the GPU, {decoded['pil']} by PIL) into a "
            f"{eval_resize}×{eval_resize} uint8 cache on {device} in {time.perf_counter() - decoding:.1f} s")
    if pool.skipped:
        shown = "; ".join(f"{name} ({why})" for name, why in pool.skipped[:3])
        log(f"skipped {len(pool.skipped)} file{'s' if len(pool.skipped) != 1 else ''} that are not readable images: "
            f"{shown}{' …' if len(pool.skipped) > 3 else ''}")
    title = cfg.variant or file.stem
    main, sources = arch_sources(file)
    cuda = device.type == "cuda"
    normalize = normalization(channels, digits)
    if checked.init is not None and checked.init.normalize and len(checked.init.normalize["mean"]) == channels:
        normalize = checked.init.normalize  # the inputs the weights were trained on
        log(f"--init {cfg.init}: inputs normalised as that run's were "
            f"(mean {normalize['mean']}, std {normalize['std']})")
    plan = Plan(cfg=cfg, arch_file=file, network=file.stem, title=title, params=params,
                input=(channels, *size), classes=pool.classes, normalize=normalize,
                eval_resize=eval_resize, arch_main=main, arch_sources=sources, device=device, dist=dist,
                amp=cfg.amp if cfg.amp is not None else cuda and torch.cuda.is_bf16_supported(),
                compile=compile_mode(cfg.compile, cuda), log=log,
                init_state=checked.init.state if checked.init else None)
    log(f"training {title} ({report.params:,} parameters) at {_shape(list(plan.input))} on {pool.name}: "
        f"{len(pool)} images, {len(pool.classes)} classes; {device}"
        + (f" × {dist.world} processes" if dist.world > 1 else "")
        + f"{', bf16' if plan.amp else ''}{COMPILE_NOTE[plan.compile]}"
        + f"; data {'cached on the device' if pool.images is not None else f'read by {workers} workers'}; → {out}")
    heads = aux_heads(report)
    if heads:
        log(f"aux head{'s' if len(heads) > 1 else ''} {', '.join(heads)}: in training their losses are added to the "
            f"main head's × {cfg.aux_weight:g} (--aux-weight); validation, best.pt and eval use the main head alone")
    source = _source_factory(pool, plan, cfg, digits, workers, dist)
    extra = {"data": pool.name, "skipped_files": len(pool.skipped),
             "skipped": [{"file": name, "why": why} for name, why in pool.skipped[:SKIPPED_LISTED]],
             "device": str(device), "processes": dist.world, "amp": plan.amp,
             "data_cached": pool.images is not None}
    if heads:
        extra["aux"] = {"heads": heads, "weight": cfg.aux_weight}
    if cfg.kfold:
        summary = _kfold(plan, pool, source, out, resume, extra, log)
    else:
        train_positions, val_positions = holdout_split(pool, cfg.val, cfg.seed)
        result = fit(plan, source(), train_positions, val_positions, out, resume)
        summary = {**result, **extra, "train_images": len(train_positions), "val_images": len(val_positions)}
    summary["seconds"] = round(time.perf_counter() - began, 1)
    if dist.main:
        write_json(out / "summary.json", summary)
        if cfg.kfold:
            log(f"{cfg.kfold}-fold mean best val_accuracy {summary['mean_val_accuracy']:.4f} ± "
                f"{summary['std_val_accuracy']:.4f}, mean final val_accuracy {summary['final_val_accuracy']:.4f}; "
                f"{summary['seconds']:.0f} s; wrote {out}")
        else:
            log(f"best val_accuracy {summary['val_accuracy']:.4f} (epoch {summary['best_epoch']}), final "
                f"{summary['final_val_accuracy']:.4f}; {summary['seconds']:.0f} s; wrote {out}")
    return summary


def aux_heads(report) -> list[str]:
    """The auxiliary heads' names (the first part of their layers' names: aux1, aux2; AuxLogits), in order."""
    return list(dict.fromkeys(layer.name.split(".")[0] for layer in report.layers if layer.aux))


def _kfold(plan: Plan, pool: Pool, source, out: Path, resume: bool, extra: dict, log) -> dict:
    import json

    folds = []
    for index, (train_positions, val_positions) in enumerate(kfold_splits(pool, plan.cfg.kfold, plan.cfg.seed), 1):
        folder = out / f"fold-{index}"
        done = folder / "summary.json"
        if resume and done.is_file():
            result = json.loads(done.read_text())
            log(f"fold {index}: done before (val_accuracy {result['val_accuracy']:.4f})")
        else:
            log(f"fold {index}/{plan.cfg.kfold}: {len(train_positions)} train, {len(val_positions)} val")
            result = fit(plan, source(), train_positions, val_positions, folder, resume)
        folds.append({"fold": index, "val_accuracy": result["val_accuracy"],
                      "final_val_accuracy": result["final_val_accuracy"], "best_epoch": result["best_epoch"],
                      "train_images_per_s": result["train_images_per_s"],
                      "seconds_per_epoch": result["seconds_per_epoch"]})
    mean, std = mean_and_std([f["val_accuracy"] for f in folds])
    log(fold_table(folds, f"{plan.cfg.kfold}-fold cross-validation of {plan.title} on {pool.name} "
                          "(best val_accuracy per fold):"))
    return {"network": plan.title, "file": str(plan.arch_file), "variant": plan.cfg.variant, "params": plan.params,
            "input": list(plan.input), "epochs": plan.cfg.epochs, "kfold": plan.cfg.kfold, "folds": folds,
            "mean_val_accuracy": mean, "std_val_accuracy": std, "val_accuracy": mean,
            "final_val_accuracy": mean_and_std([f["final_val_accuracy"] for f in folds])[0],
            "train_images_per_s": round(mean_and_std([f["train_images_per_s"] for f in folds])[0], 1),
            "seconds_per_epoch": round(mean_and_std([f["seconds_per_epoch"] for f in folds])[0], 3),
            "classes": plan.classes if len(plan.classes) <= SUMMARY_CLASSES else len(plan.classes), **extra}


COMPILE_NOTE = {"off": "", "on": ", compiled", "auto": ", torch.compile if the first steps show it faster"}


def compile_mode(setting: bool | str | None, cuda: bool) -> str:
    """ "on", "off" or "auto" from the config's compile (true, false, "auto" or unset: auto on cuda, off on cpu).

        >>> compile_mode(None, cuda=True), compile_mode(None, cuda=False), compile_mode(True, cuda=False)
        ('auto', 'off', 'on')
    """
    if setting is None:
        return "auto" if cuda else "off"
    if setting == "auto":
        return "auto"
    return "on" if setting else "off"


def _device(kind: str) -> torch.device:
    if kind == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA device is available here (use --device cpu or auto)")
    if kind == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(kind)


def _check(file: Path, variant: str | None, input_shape, params: dict):
    """The checker's report; NetworkError (its diagnostics rendered) if the network has errors there."""
    import archc

    try:
        report = archc.check(file, variant=variant, input=input_shape, **params)
    except (archc.UsageError, ValueError) as error:
        raise ConfigError(str(error)) from None
    if not report.ok:
        shown = f" at input {_shape(list(input_shape))}" if input_shape else ""
        rendered = "\n".join(d.render(report.sources.get(d.file)) for d in report.diagnostics if d.severity == "error")
        raise NetworkError(f"{rendered}\narchc: error: {file} cannot be trained{shown}: it has errors there "
                           "(see above); nothing was trained")
    return report


def _input_of(cfg: TrainConfig, declared: list[int], digits: bool) -> tuple[int, tuple[int, int]]:
    """(channels, (H, W)): --input, else digits 1×32×32, else 3 channels at the file's declared H×W."""
    from ..compiler.check import UsageError, parse_input

    if cfg.input:
        try:
            channels, height, width = parse_input(cfg.input)
        except UsageError as error:
            raise ConfigError(str(error)) from None
        if digits and channels != 1:
            raise ConfigError(f"--input {cfg.input}: the digits are grey, 1 channel (write 1x{height}x{width})")
        if channels not in (1, 3):
            raise ConfigError(f"--input {cfg.input}: images are read as 1 channel (grey) or 3 (RGB)")
        return channels, (height, width)
    if digits:
        return 1, (32, 32)
    return 3, (declared[1], declared[2])


def _with_classes(file: Path, params: dict, declared_params: dict, classes: int) -> dict:
    """The network parameters with num_classes set from the data, where the file has that parameter."""
    if "num_classes" not in declared_params:
        return params
    if "num_classes" in params and params["num_classes"] != classes:
        raise DataError(f"--set num_classes={params['num_classes']}, but the data has {classes} classes")
    return {**params, "num_classes": classes}


def _decode(pool: Pool, cfg: TrainConfig, digits: bool, eval_resize: int, device: torch.device, workers: int,
            stats: dict) -> Pool:
    """Digits go to the device as they are; a folder is cached there when asked or when it fits (in a
    quarter of the GPU's free memory, or of the available memory shared by the processes on a CPU), else
    its files are checked once and read by DataLoader workers."""
    if digits:
        pool.images = pool.images.to(device)
        return pool
    cache = cfg.cache == "memory"
    if cfg.cache == "auto":
        local = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))  # torchrun's processes on this machine
        free = free_memory(device, processes=local)
        cache = fits_on_device(len(pool), pool.channels, eval_resize, free)
    if cache:
        return cache_pool(pool, eval_resize, device, workers=max(1, workers), stats=stats)
    pool = drop_unreadable(pool, workers=max(1, workers))
    require_every_class(pool)
    return pool


def _source_factory(pool: Pool, plan: Plan, cfg: TrainConfig, digits: bool, workers: int, dist: Dist):
    """A function giving each split its batch source (one tensor source is shared by every fold)."""
    shard = Shard(dist.rank, dist.world)
    size = plan.input[1:]
    min_scale = cfg.min_crop_scale or (0.8 if digits else 0.25)
    flip = cfg.flip if cfg.flip is not None else not digits
    if pool.images is not None:
        shared = TensorBatches(pool.images, pool.labels, size, plan.normalize, min_scale=min_scale, flip=flip,
                               jitter=cfg.color_jitter, shard=shard)
        return lambda: shared
    return lambda: LoaderBatches(pool.files, pool.labels, pool.channels, size, plan.normalize, plan.eval_resize,
                                 min_scale=min_scale, flip=flip, jitter=cfg.color_jitter, workers=workers,
                                 pin=plan.device.type == "cuda", shard=shard)


def _shape(shape: list[int]) -> str:
    return "×".join(str(d) for d in shape)
