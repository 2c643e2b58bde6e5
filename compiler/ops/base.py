"""What every primitive op knows: its parameters (a pydantic model), its output
shape, its parameter and buffer shapes, its MACs, and the torch module that
computes it. The checker reads the first four and never imports torch; the
in-memory builder calls `torch_module`; the source emitter fills `template`.

Shapes exclude the batch: (C, H, W) for feature maps, (F,) for vectors.

MAC convention (torchinfo 1.8, which reproduces torchvision's `_ops`): a layer
that holds parameters costs, per sample, its parameter count times its output
positions for convolutions (H_out * W_out), and its parameter count once for
every other layer (linear, batch norm). Layers without parameters cost nothing.
"""

from __future__ import annotations

from math import prod
from typing import ClassVar

from pydantic import BaseModel, ConfigDict

Shape = tuple[int, ...]

MAX_DIM = 1 << 20  # 1,048,576: no channel count or side length of a real CNN comes near it


class ShapeError(Exception):
    """A user error found while inferring a shape; the caller adds the location."""

    def __init__(self, message: str, hint: str | None = None, code: str = "E300"):
        super().__init__(message)
        self.message, self.hint, self.code = message, hint, code


class Attrs(BaseModel):
    """Base of every op's parameter model."""

    # strict: `bias = 1` or `out = 2.0` is a mistake to report, not to coerce
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class Op:
    """One primitive. Subclasses set `name`, `Attrs` and override `infer`/`param_shapes`."""

    name: ClassVar[str]
    Attrs: ClassVar[type[Attrs]] = Attrs
    doc: ClassVar[str] = ""
    callable_: ClassVar[bool] = True  # False for add/concat/multiply, made by statements
    is_conv: ClassVar[bool] = False
    in_place: ClassVar[bool] = False  # has an `inplace=True` form, bit-exact (compiler/inplace.py)

    def infer(self, a, inputs: list[Shape]) -> Shape:
        return inputs[0]

    def param_shapes(self, a, inputs: list[Shape]) -> dict[str, Shape]:
        """Trainable tensors, in the order torch registers them."""
        return {}

    def buffer_shapes(self, a, inputs: list[Shape]) -> dict[str, Shape]:
        return {}

    def torch_module(self, a, inputs: list[Shape]):
        """The torch.nn module computing this op, its parameters registered in the
        order of `param_shapes`. Imports torch, so only emission calls it."""
        raise NotImplementedError(f"{self.name} is computed by the emitted forward, not by a module")

    def source(self, args: dict[str, str], c: str, rank: int, helpers: set[str]) -> str:
        """The Python constructor of this op's module for the source emitter, from the
        source of each attribute the call gives (`args`) and of the input channels (`c`).
        `rank` is 3 for feature maps, 1 for vectors; `helpers` collects the emitted
        file's helper functions it uses."""
        raise NotImplementedError(f"{self.name} is computed by the emitted forward, not by a module")

    def out_channels(self, args: dict[str, str], c: str) -> str:
        """The source of the output channels (or features), given the input's."""
        return c

    def macs(self, a, inputs: list[Shape], out: Shape) -> int:
        params = sum(prod(s) for s in self.param_shapes(a, inputs).values())
        if self.is_conv:
            return params * prod(out[1:])
        return params


def need_map(op: str, shape: Shape) -> tuple[int, int, int]:
    if len(shape) != 3:
        raise ShapeError(f"{op} needs a C×H×W feature map, but its input is {fmt_shape(shape)}",
                         hint="a flatten or linear layer came before it", code="E306")
    return shape  # type: ignore[return-value]


def check_dims(shape: Shape) -> Shape:
    for d in shape:
        if d < 1:
            raise ShapeError(f"the output would be {fmt_shape(shape)}: a size below 1", code="E301",
                             hint="the input is too small for this kernel and stride")
        if d > MAX_DIM:
            raise ShapeError(f"the output would be {fmt_shape(shape)}: a size above the limit of {MAX_DIM:,}",
                             code="E400", hint="no real network comes near it: is a digit too many?")
    return shape


def call_source(ctor: str, positional: list[str], args: dict[str, str], keywords: dict[str, str]) -> str:
    """`ctor(positional..., torch_name=source...)` for each attribute the call gives:
    `keywords` maps the op's attribute names to the torch argument names."""
    parts = positional + [f"{torch}={args[name]}" for name, torch in keywords.items() if name in args]
    return f"{ctor}({', '.join(parts)})"


def pair(v: int | tuple[int, int] | list[int]) -> tuple[int, int]:
    if isinstance(v, (tuple, list)):
        return (int(v[0]), int(v[-1]))
    return (int(v), int(v))


def fmt_shape(shape: Shape) -> str:
    if len(shape) == 3:
        return f"{shape[1]}×{shape[2]}×{shape[0]}"
    return "×".join(str(d) for d in shape) if shape else "a scalar"
