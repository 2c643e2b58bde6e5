"""The training configuration: defaults, then an optional TOML file, then command-line flags.

    >>> TrainConfig(epochs=3).lr
    0.002

A TOML file uses the flags' names with underscores (`weight_decay = 5e-4`);
network parameters go in a `[set]` table. An unknown key, or a value of the
wrong kind, is a ConfigError naming the file, the line and the key.

The defaults train `resnet.arch --variant resnet18` on the digits to ≥ 97%
validation accuracy in 226 CPU-seconds (measured on a 2-core CPU; README, "Set up").
"""

from __future__ import annotations

import re
import reprlib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..dsl.diagnostics import did_you_mean

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib


class ConfigError(Exception):
    """A bad configuration file or value (exit status 2)."""


class TrainConfig(BaseModel):
    # strict: `epochs = true` or `batch = "64"` in a TOML file is an error, never silently 1 or 64
    model_config = ConfigDict(extra="forbid", strict=True)

    data: str | None = None  # an ImageFolder tree; None: the embedded digits
    input: str | None = None  # CxHxW; default: digits 1x32x32, a folder the file's declared input
    variant: str | None = None
    set: dict[str, int | float | bool | str] = {}  # network parameters (--set NAME=VALUE)
    epochs: int = Field(8, ge=1, le=100_000)
    # the global batch, over every process; default: 128, smaller where an epoch would have under 10 steps
    batch: int | None = Field(None, ge=1, le=1 << 20)
    lr: float = Field(0.002, gt=0)  # the peak learning rate (AdamW's scale; SGD wants about 0.05-0.1)
    optimizer: Literal["sgd", "adam", "adamw", "rmsprop"] = "adamw"
    momentum: float = Field(0.9, ge=0, lt=1)
    nesterov: bool = True
    weight_decay: float = Field(0.05, ge=0)  # decoupled for AdamW; on conv and linear weights only
    schedule: Literal["cosine", "step", "plateau", "onecycle", "none"] = "cosine"
    # epochs of linear warmup from lr / 10 (onecycle: its rising part); default: 1, or a fifth of a shorter run
    warmup: float | None = Field(None, ge=0)
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    aux_weight: float = Field(0.3, ge=0)  # GoogLeNet's weight for the auxiliary classifiers' losses
    clip_grad: float | None = Field(None, gt=0)  # max global gradient norm
    color_jitter: float = Field(0.0, ge=0, lt=1)  # brightness, contrast and saturation, ± this fraction
    min_crop_scale: float | None = Field(None, gt=0, le=1)  # smallest crop area fraction; default: folders 0.25, digits 0.8
    flip: bool | None = None  # horizontal flips; default: on for folders, off for digits (a flipped 2 is no 2)
    kfold: int | None = Field(None, ge=2, le=100)
    val: float = Field(0.2, gt=0, lt=1)  # validation fraction for a tree without train/ and val/
    seed: int = Field(0, ge=0, lt=2**32)
    out: str | None = None  # default: runs/<network>-<time>
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # torch.compile: true, false, or "auto" (time both on the first steps, keep the faster);
    # default: "auto" on cuda, false on cpu (compiling there takes minutes)
    compile: bool | Literal["auto"] | None = None
    amp: bool | None = None  # bf16 autocast; default: on for cuda where supported
    workers: int | None = Field(None, ge=0, le=256)  # DataLoader processes; default: min(8, CPUs)
    # batch-norm statistics recomputed before validating while their moving averages lag (runtime/bn_stats.py)
    recompute_bn: Literal["auto", "always", "never"] = "auto"
    cache: Literal["auto", "memory", "off"] = "auto"  # a folder decoded once into device memory (auto: if it fits)
    # fine-tuning (runtime/finetune.py): reference weights, frozen parts, the re-initialised tensors' lr multiplier
    init: str | None = None  # torchvision:NAME, a .pt/.safetensors state dict, or an archc checkpoint
    freeze: list[str] = []  # sections, module paths or rows: features, features.3, features[:9]
    lr_head: float | None = Field(None, gt=0)  # lr × this for the tensors --init could not fill


def load_config(path: str | Path) -> dict:
    """The TOML file's values, checked against TrainConfig; ConfigError names the line of a bad key."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read {path}: {error}") from None
    try:
        values = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None
    except RecursionError:  # tomllib parses nested arrays and inline tables recursively
        raise ConfigError(f"{path}: not a training configuration: its values are nested too deeply") from None
    names = list(TrainConfig.model_fields)
    for key in values:
        if key not in names:
            prefixed = [n for n in names if key.startswith(f"{n}_") or n.startswith(f"{key}_")]  # lr_rate -> lr
            hint = did_you_mean(key, names) or (f"did you mean '{prefixed[0]}'?" if prefixed else None)
            raise ConfigError(f"{path}:{_line_of(text, key)}: unknown key '{key}'" + (f"; {hint}" if hint else "")
                              + f" (the keys are the flags of archc train: {', '.join(names)})")
    try:
        TrainConfig(**values)
    except ValidationError as error:
        first = error.errors()[0]
        key = str(first["loc"][0]) if first["loc"] else "?"
        raise ConfigError(f"{path}:{_line_of(text, key)}: {key}: {first['msg']} "
                          f"(got {_short(first.get('input'))})") from None
    _check_combination(TrainConfig(**values), str(path))
    return values


def _short(value) -> str:
    """A bad value as the message shows it: bounded in depth and length (a TOML value may nest 5,000 deep)."""
    shown = reprlib.Repr()  # Python 3.10 and 3.11 take no keywords here
    shown.maxlevel, shown.maxstring, shown.maxother = 2, 60, 60
    return shown.repr(value)


def _check_combination(cfg: TrainConfig, where: str) -> None:
    if cfg.lr_head is not None and cfg.init is None:
        raise ConfigError(f"{where}: --lr-head scales the learning rate of the tensors --init could not fill: "
                          "give --init too")


def _line_of(text: str, key: str) -> int | str:
    """The line where `key` is assigned or opens a table; '?' if it cannot be found (tomllib keeps no positions)."""
    quoted = rf"(?:{re.escape(key)}|\"{re.escape(key)}\"|'{re.escape(key)}')"
    pattern = re.compile(rf"^\s*(?:{quoted}\s*[=.]|\[\s*{quoted}\s*\])")
    for number, line in enumerate(text.splitlines(), start=1):
        if pattern.match(line):
            return number
    return "?"


def merge(toml_values: dict, flags: dict) -> TrainConfig:
    """Defaults < TOML < flags (flags left at None were not given). ConfigError for a bad value."""
    values = dict(toml_values)
    for key, value in flags.items():
        if key == "set" and value:
            values["set"] = {**values.get("set", {}), **value}
        elif value is not None and key != "set":
            values[key] = value
    try:
        cfg = TrainConfig(**values)
    except ValidationError as error:
        first = error.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"--{key.replace('_', '-')}: {first['msg']} (got {_short(first.get('input'))})") from None
    _check_combination(cfg, "--lr-head")
    return cfg
