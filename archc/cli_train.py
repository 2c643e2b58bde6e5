"""`archc train`: its flags, and the exit statuses of what can go wrong.

    archc train FILE [--variant V] [--set NAME=VALUE]... [--data DIR] [--input CxHxW] [--epochs N] [--batch N]
                [--lr LR] [--optimizer sgd|adam|adamw|rmsprop] [--momentum M] [--nesterov/--no-nesterov]
                [--weight-decay WD] [--schedule cosine|step|plateau|onecycle|none] [--warmup EPOCHS]
                [--label-smoothing E] [--aux-weight W] [--clip-grad NORM] [--kfold K] [--seed S] [--out DIR]
                [--resume] [--config FILE.toml] [--device cpu|cuda|auto] [--compile [auto] | --no-compile]
                [--amp/--no-amp] [--workers N] [--val FRACTION] [--cache auto|memory|off]
                [--recompute-bn auto|always|never] [--init SOURCE] [--freeze PATTERN...] [--lr-head MULT]

Exit status: 0 trained; 1 the network, the data or the run failed (a
message says which); 2 a usage error (a bad flag, config file or value);
130 interrupted (Ctrl-C), saying where the last checkpoint is and how to resume.
Kept apart from cli.py so that `archc check` never imports torch.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .cli import EXIT_ERRORS, EXIT_OK, Usage, _overrides


def add_arguments(train: argparse.ArgumentParser) -> None:
    """The flags of `archc train`. Every default is None: unset flags leave the config file's value or the default."""
    train.add_argument("file")
    train.add_argument("--variant", help="a named variant of the network (e.g. resnet18)")
    train.add_argument("--out", metavar="DIR", help="the run folder (default runs/<network>-<time>)")
    train.add_argument("--resume", action="store_true", help="continue the run in --out from its last.pt")
    add_recipe_arguments(train)


def add_recipe_arguments(train: argparse.ArgumentParser) -> None:
    """The flags that say how to train (shared by `archc train` and `archc study`)."""
    train.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="a network parameter")
    train.add_argument("--data", metavar="DIR", help="an ImageFolder tree (DIR/train + DIR/val, or a folder per "
                                                     "class); default: the embedded handwritten digits")
    train.add_argument("--input", metavar="CxHxW", help="input size (default: digits 1x32x32, a folder: the file's)")
    train.add_argument("--epochs", type=int)
    train.add_argument("--batch", type=int, help="global batch size, over all processes")
    train.add_argument("--lr", type=float, help="peak learning rate")
    train.add_argument("--optimizer", choices=["sgd", "adam", "adamw", "rmsprop"])
    train.add_argument("--momentum", type=float)
    train.add_argument("--nesterov", action=argparse.BooleanOptionalAction, default=None)
    train.add_argument("--weight-decay", type=float)
    train.add_argument("--schedule", choices=["cosine", "step", "plateau", "onecycle", "none"])
    train.add_argument("--warmup", type=float, metavar="EPOCHS", help="linear warmup, in epochs")
    train.add_argument("--label-smoothing", type=float)
    train.add_argument("--aux-weight", type=float, help="weight of auxiliary heads' losses (GoogLeNet: 0.3)")
    train.add_argument("--clip-grad", type=float, metavar="NORM", help="clip the global gradient norm")
    train.add_argument("--color-jitter", type=float, help="brightness/contrast/saturation jitter, e.g. 0.2")
    train.add_argument("--min-crop-scale", type=float, help="smallest random-crop area fraction")
    train.add_argument("--flip", action=argparse.BooleanOptionalAction, default=None, help="horizontal flips")
    train.add_argument("--kfold", type=int, metavar="K", help="K-fold cross-validation over all the data")
    train.add_argument("--val", type=float, metavar="FRACTION", help="validation fraction (default 0.2)")
    train.add_argument("--seed", type=int)
    train.add_argument("--config", metavar="FILE.toml", help="options as TOML (flags override it)")
    train.add_argument("--device", choices=["auto", "cpu", "cuda"])
    train.add_argument("--compile", nargs="?", const=True, default=None, type=_compile_value, metavar="auto",
                       help="torch.compile; `--compile auto` times eager and compiled steps first and keeps the "
                            "faster (the default with CUDA)")
    train.add_argument("--no-compile", dest="compile", action="store_false", help="never torch.compile")
    train.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None,
                       help="bf16 autocast (default: on with CUDA where supported)")
    train.add_argument("--workers", type=int, help="DataLoader worker processes")
    train.add_argument("--recompute-bn", choices=["auto", "always", "never"],
                       help="recompute batch-norm statistics from training images before validating (auto: while "
                            "their moving averages lag, e.g. MobileNetV3's momentum 0.01 in a short run)")
    train.add_argument("--cache", choices=["auto", "memory", "off"],
                       help="decode a folder once into device (or main) memory (auto: when it fits)")
    train.add_argument("--init", metavar="SOURCE", help="start from these weights: torchvision:NAME (from the local "
                                                        "torch hub cache), a .pt/.safetensors state dict, or an archc "
                                                        "checkpoint; tensors that no longer fit are re-initialised")
    train.add_argument("--freeze", nargs="+", metavar="PATTERN", help="train none of these parts: a section "
                                                                      "(features), a path (features.3) or rows "
                                                                      "(features[:9]); their batch norms stay in eval")
    train.add_argument("--lr-head", type=float, metavar="MULT", help="the re-initialised tensors' learning rate, "
                                                                     "as a multiple of --lr")


RECIPE = ["data", "input", "epochs", "batch", "lr", "optimizer", "momentum", "nesterov", "weight_decay",
          "schedule", "warmup", "label_smoothing", "aux_weight", "clip_grad", "color_jitter", "min_crop_scale", "flip",
          "kfold", "val", "seed", "device", "compile", "amp", "workers", "cache", "recompute_bn", "init", "freeze",
          "lr_head"]
FLAGS = ["variant", "out", *RECIPE]


def _compile_value(value: str) -> str:
    if value != "auto":
        raise argparse.ArgumentTypeError(f"'{value}': write --compile (always), --compile auto or --no-compile")
    return value


def train(args) -> int:
    from .runtime.run import train as run_training

    with Failures() as failed:
        cfg = config_from(args, FLAGS, resumed=args.resume)
        run_training(args.file, cfg, resume=args.resume)
    return failed.status


def config_from(args, names: list[str], resumed: bool = False):
    """The TrainConfig of the flags `names`, over --config's file, over the resumed run's config.json;
    Usage (exit 2) for anything wrong with them."""
    from .runtime.config import ConfigError, load_config, merge

    try:
        flags = {name: getattr(args, name) for name in names}
        flags["set"] = _overrides(args.set)
        base = _resumed_config(args) if resumed else {}
        if args.config:
            base.update(load_config(args.config))
        return merge(base, flags)
    except (ValueError, ConfigError) as error:
        raise Usage(str(error)) from None


class Failures:
    """What can go wrong in a run, as exit statuses: 1 with `archc: error: ...` (the network's diagnostics as
    they are), 2 for usage, 130 for Ctrl-C with where the last checkpoint is. `status` is 0 if nothing did."""

    status = EXIT_OK

    def __enter__(self):
        return self

    def __exit__(self, kind, error, _trace) -> bool:
        from .runtime.checkpoint import CheckpointError
        from .runtime.config import ConfigError
        from .runtime.data import DataError
        from .runtime.finetune import InitError
        from .runtime.run import NetworkError
        from .runtime.runfolder import FolderInUse
        from .runtime.study_jobs import StudyRunFailed
        from .runtime.trainer import TrainingInterrupted, TrainingStopped

        if error is None:
            return False
        if isinstance(error, ConfigError):
            raise Usage(str(error)) from None
        if isinstance(error, NetworkError):
            print(error, file=sys.stderr)
        elif isinstance(error, (DataError, TrainingStopped, CheckpointError, InitError, FolderInUse, StudyRunFailed)):
            print(f"archc: error: {error}", file=sys.stderr)
        elif isinstance(error, TrainingInterrupted):
            print(interrupted_message(error), file=sys.stderr)
            self.status = EXIT_INTERRUPTED
            return True
        else:
            return False
        self.status = EXIT_ERRORS
        return True


EXIT_INTERRUPTED = 130  # as a shell reports a process stopped by SIGINT


def interrupted_message(stop) -> str:
    """Ctrl-C: where the last checkpoint is, and the command that continues the run."""
    out = getattr(stop, "out", None)
    if stop.checkpoint is None:
        return ("archc: interrupted before an epoch finished: no checkpoint to resume from"
                + (f" in {out}" if out else "") + "; start the run again")
    command = f"archc train {stop.file} --out {out} --resume" if out else "archc train ... --out DIR --resume"
    return (f"archc: interrupted; the last checkpoint is {stop.checkpoint} (epoch {stop.epoch} of {stop.epochs}). "
            f"Continue with: {command}")


def _resumed_config(args) -> dict:
    """The settings the run in --out started with (its config.json), so `--out DIR --resume` is enough.
    ConfigError when there is none: resuming with the defaults would train another run than the one stopped."""
    from .runtime.config import ConfigError, TrainConfig

    if not args.out:
        raise ConfigError("--resume continues the run in --out DIR: give the run's folder")
    saved = Path(args.out) / "config.json"
    if not saved.is_file():
        raise ConfigError(f"--resume: {args.out} holds no run to resume (no config.json: the run was stopped before "
                          "it began, or never ran there); start it again without --resume, with its flags")
    try:
        values = json.loads(saved.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise ConfigError(f"--resume: cannot read {saved} ({error}); start the run again without --resume") from None
    if not isinstance(values, dict):
        raise ConfigError(f"--resume: {saved} is not a run's configuration; start the run again without --resume")
    return {k: v for k, v in values.items() if k in TrainConfig.model_fields and v is not None}
