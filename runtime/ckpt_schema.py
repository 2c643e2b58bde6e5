"""What a checkpoint must hold before `eval`, `predict`, `cam`, `export` or a resume use it.

A checkpoint is untrusted input: `torch.load(weights_only=True)` keeps it from running code, but
what it loads is whatever someone wrote. Every field used to rebuild the network or to prepare an
image is validated here, with bounds on every size, so a crafted file gets a clear error naming
the field instead of a traceback, a hang or a huge allocation (an `input` of 3×100000×100000, an
`eval_resize` of 1,000,000). Fields this module does not name (optimizer, rng, metrics, ...)
are left to their readers.

    >>> meta = {"format": "archc-checkpoint", "version": 1, "network": "tiny", "arch_file": "tiny.arch",
    ...         "arch_sources": {"tiny.arch": "network tiny()"}, "variant": None, "params": {"num_classes": 3},
    ...         "input": [3, 32, 32], "classes": ["cat", "dog", "fox"], "eval_resize": 36,
    ...         "normalize": {"mean": [0.5, 0.5, 0.5], "std": [0.2, 0.2, 0.2]}, "model": {}}
    >>> validated(meta)["input"]
    [3, 32, 32]
    >>> validated({**meta, "eval_resize": 0})
    Traceback (most recent call last):
    ...
    ValueError: eval_resize: 0 is below the input's larger side (32): the centre crop would not fit in the resized image
"""

from __future__ import annotations

import math
from pathlib import PurePosixPath
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..compiler.program import MAX_IMPORTS
from ..dsl.parse import MAX_SOURCE_CHARS

MAX_SIDE = 4096  # pixels per side of a checkpoint's input: a 3×4096×4096 float input is already 200 MB
MAX_RESIZE_RATIO = 2  # eval_resize at most this × the input's larger side (archc train writes 256/224 of it)
MAX_CLASSES = 100_000  # ImageNet-21k has 21,841
MAX_NAME = 255  # characters in a class, network or parameter name (a folder name's limit)
MAX_NUMBER = 10**15  # magnitude of a stored network parameter; the compiler bounds sizes further
# archc.build's and build_graph's own keyword arguments: a network parameter stored under one of these names
# would be passed as that argument instead
RESERVED_PARAMS = ("path", "variant", "input", "text")

Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME)]
ParamValue = bool | int | float | str | None


def relative_parts(name: str) -> tuple[str, ...]:
    """The parts of a stored source file's relative name; ValueError for an absolute name, `..` or a drive."""
    pure = PurePosixPath(str(name).replace("\\", "/"))
    if (len(str(name)) > 1000 or pure.is_absolute() or not pure.parts or any(p in ("..", "") for p in pure.parts)
            or ":" in pure.parts[0]):
        raise ValueError(f"names a source file outside its folder: {str(name)[:100]!r}")
    return pure.parts


def _printable(text: str, what: str) -> str:
    if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in text):
        raise ValueError(f"{what} {text[:40]!r} holds a control character")
    return text


class Normalize(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    mean: list[float] = Field(min_length=1, max_length=3)
    std: list[float] = Field(min_length=1, max_length=3)

    @field_validator("mean", "std")
    @classmethod
    def _finite(cls, values: list[float], info) -> list[float]:
        if not all(math.isfinite(v) for v in values):
            raise ValueError(f"{values} holds a value that is not a finite number")
        if info.field_name == "std" and min(values) <= 0:
            raise ValueError(f"{values}: every standard deviation must be above 0")
        return values


class CheckpointMeta(BaseModel):
    """The fields that say what network a checkpoint holds and how its images are prepared."""

    model_config = ConfigDict(extra="ignore", strict=True)
    network: Name
    arch_file: Annotated[str, Field(min_length=1, max_length=1000)]
    arch_sources: dict[str, Annotated[str, Field(max_length=MAX_SOURCE_CHARS)]] = Field(
        min_length=1, max_length=MAX_IMPORTS + 1)
    variant: Name | None = None
    params: dict[str, ParamValue] = Field(default_factory=dict, max_length=256)
    input: list[int] = Field(min_length=3, max_length=3)
    classes: list[Name] = Field(min_length=2, max_length=MAX_CLASSES)
    normalize: Normalize
    eval_resize: int
    model: dict[str, Any]

    @field_validator("arch_sources")
    @classmethod
    def _relative_names(cls, sources: dict[str, str]) -> dict[str, str]:
        for name in sources:
            relative_parts(name)
        return sources

    @field_validator("params")
    @classmethod
    def _plain_parameters(cls, params: dict[str, ParamValue]) -> dict[str, ParamValue]:
        for name, value in params.items():
            if not name.isidentifier() or len(name) > MAX_NAME:
                raise ValueError(f"{name[:40]!r} is not a parameter name")
            if name in RESERVED_PARAMS:
                raise ValueError(f"{name!r} is not a network parameter archc can set "
                                 "(it is an argument of archc.build)")
            if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_NUMBER:
                raise ValueError(f"{name} = {str(value)[:20]}… is out of range (at most {MAX_NUMBER:.0e} in size)")
            if isinstance(value, float) and not (math.isfinite(value) and abs(value) <= MAX_NUMBER):
                raise ValueError(f"{name} = {value} is not a finite number of at most {MAX_NUMBER:.0e}")
            if isinstance(value, str) and (not value.isidentifier() or len(value) > MAX_NAME):
                raise ValueError(f"{name} = {value[:40]!r} is not a name")
        return params

    @field_validator("input")
    @classmethod
    def _image_input(cls, shape: list[int]) -> list[int]:
        channels, height, width = shape
        if channels not in (1, 3):
            raise ValueError(f"{shape}: images are read with 1 (grey) or 3 (RGB) channels, not {channels}")
        if not (1 <= height <= MAX_SIDE and 1 <= width <= MAX_SIDE):
            raise ValueError(f"{shape}: each side must be 1 to {MAX_SIDE} pixels")
        return shape

    @field_validator("classes")
    @classmethod
    def _distinct_classes(cls, classes: list[str]) -> list[str]:
        for name in classes:
            _printable(name, "the class name")
        if len(set(classes)) != len(classes):
            repeated = sorted({c for c in classes if classes.count(c) > 1})[:3]
            raise ValueError(f"names a class twice: {', '.join(repeated)}")
        return classes

    @field_validator("model")
    @classmethod
    def _tensors(cls, state: dict[str, Any]) -> dict[str, Any]:
        import torch

        for key, value in state.items():
            if not isinstance(key, str) or not isinstance(value, torch.Tensor):
                raise ValueError(f"holds {type(value).__name__} under {str(key)[:60]!r}: a state dict holds tensors")
        return state

    @model_validator(mode="after")
    def _consistent(self) -> CheckpointMeta:
        channels, height, width = self.input
        for what, values in (("normalize.mean", self.normalize.mean), ("normalize.std", self.normalize.std)):
            if len(values) != channels:
                raise ValueError(f"{what}: {len(values)} values for an input of {channels} channel"
                                 f"{'s' if channels > 1 else ''}")
        larger = max(height, width)
        if not larger <= self.eval_resize <= MAX_RESIZE_RATIO * larger:
            why = ("is below the input's larger side ({}): the centre crop would not fit in the resized image"
                   if self.eval_resize < larger else f"is above {MAX_RESIZE_RATIO}× the input's larger side ({{}})")
            raise ValueError(f"eval_resize: {self.eval_resize} {why.format(larger)}")
        if self.arch_file not in self.arch_sources:
            raise ValueError(f"arch_file: {self.arch_file!r} is not among the stored sources")
        _printable(self.network, "the network name")
        return self


def validated(payload: dict[str, Any]) -> dict[str, Any]:
    """`payload` with its metadata checked; ValueError naming the first bad field, in words."""
    try:
        CheckpointMeta.model_validate(payload)
    except ValidationError as error:
        raise ValueError(_words(error)) from None
    return payload


def _words(error: ValidationError) -> str:
    problems = error.errors(include_url=False)
    first = problems[0]
    where = ".".join(str(part) for part in first["loc"])
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "missing":
        text = f"{where}: missing (archc train writes it)"
    elif not where:  # the model validator's own message names its field
        text = message
    else:
        given = repr(first.get("input"))
        shown = f" (it holds {given[:60]}{'…' if len(given) > 60 else ''})" if first["type"].endswith("_type") else ""
        text = f"{where}: {message}{shown}"
    more = len(problems) - 1
    return text + (f" (and {more} more problem{'s' if more > 1 else ''})" if more else "")
