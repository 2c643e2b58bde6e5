"""What every primitive op is, declared once: its parameters (a pydantic model), its
output shape, its parameter and buffer shapes, its MACs under every counting
convention, and the torch constructor the emitted source calls. The checker reads
the first parts and never imports torch; the source emitter writes the constructor
from `module` and `args` (compiler/emit_calls.py), and the in-memory module is that
source compiled, so the two cannot differ.

Shapes exclude the batch: (C, H, W) for feature maps, (F,) for vectors.

MAC convention (torchinfo 1.8, which reproduces torchvision's `_ops`): a layer
that holds parameters costs, per sample, its parameter count times its output
positions for convolutions (H_out * W_out), and its parameter count once for
every other layer (linear, batch norm). Layers without parameters cost nothing.
The other conventions are rules per op (`thop`, `fvcore`; compiler/conventions.py).
"""

from __future__ import annotations

from collections.abc import Callable
from math import prod
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from ...dsl.record import Record

Shape = tuple[int, ...]

MAX_DIM = 1 << 20  # 1,048,576: no channel count, side or kernel of a real CNN comes near it
MAX_WEIGHT = 1 << 34  # elements in one layer's weight: RegNetY-128GF's largest is under 2^25

CATEGORIES = ("conv", "norm", "activation", "pool", "linear", "shape", "join")


class ShapeError(Exception):
    """A user error found while inferring a shape; the caller adds the location."""

    def __init__(self, message: str, hint: str | None = None, code: str = "E300"):
        super().__init__(message)
        self.message, self.hint, self.code = message, hint, code


class Attrs(BaseModel):
    """Base of every op's parameter model."""

    # strict: `bias = 1` or `out = 2.0` is a mistake to report, not to coerce
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, defer_build=True)


NO_DEFAULT = object()


class Arg(Record):
    """One argument of the torch constructor that the emitted source writes for an op.

    It copies an attribute (`attr`), or is derived from the attributes (`derive` gives its
    value; `formula` expressions for it from the attributes' expressions and values in every
    use, for the emitter to check; `helper` the file's function that computes it from any
    attributes). A keyword at torch's `default` is left out.
    """

    keyword: str
    attr: str | None = None
    positional: bool = False
    default: Any = NO_DEFAULT
    derive: Callable[[Any], Any] | None = None
    formula: Callable[[dict, dict], list] | None = None
    helper: str | None = None

    def value(self, attrs) -> Any:
        return self.derive(attrs) if self.derive is not None else getattr(attrs, self.attr)


Rule = Callable[[Any, int], int]  # (layer, batch) -> MACs of the whole batch under one convention


class Window(Record):
    """Where an output position looks in the input, per axis (height, width): kernel, stride, the padding
    before the first position, dilation (compiler/receptive.py composes them, Araujo et al. 2019)."""

    k: tuple[int, int] = (1, 1)
    s: tuple[int, int] = (1, 1)
    p: tuple[int, int] = (0, 0)
    d: tuple[int, int] = (1, 1)


POINTWISE = Window()  # each output position sees its own input position (activations, batch norm, dropout)
GLOBAL = "global"  # each output sees the whole input (global pooling, flatten, linear)
IRREGULAR = "irregular"  # windows of different sizes or strides (adaptive pooling that does not divide)

WindowRule = Callable[[Any], "Window | str"]  # (layer) -> its window, GLOBAL or IRREGULAR


class Saved(Record):
    """One tensor that autograd keeps for backward when a layer runs in training (compiler/train_memory.py):
    its input at `index`, its output, or one the op makes (`new`: a mask, pooling indices, batch statistics,
    a copy of an input it overwrites), of `shape` (with the batch in front when `per_sample`) and `dtype`
    ("compute": the dtype the layer runs in). `weight`: a parameter, which costs nothing more in float32
    and is saved as a bfloat16 copy under autocast."""

    of: str  # "input", "output", "new", "weight"
    index: int = 0
    shape: tuple[int, ...] = ()
    per_sample: bool = True
    dtype: str = "compute"  # "compute", "float32", "int64", "bool"


SavedRule = Callable[[Any, bool], tuple[Saved, ...]]  # (layer, runs in place) -> what its backward keeps


def free(layer, batch: int) -> int:
    """Counted as zero: no multiply-add, or a module/op the tool has no rule for."""
    return 0


def input_elements(layer, batch: int) -> int:
    """One per input element (ptflops' and calflops' pooling, calflops' activations)."""
    return batch * prod(layer.in_shapes[0])


def pointwise(layer) -> Window:
    return POINTWISE


def whole(layer) -> str:
    return GLOBAL


def keeps_nothing(layer, in_place: bool) -> tuple[Saved, ...]:
    return ()


def keeps_input(layer, in_place: bool) -> tuple[Saved, ...]:
    return (Saved("input"),)


def keeps_output(layer, in_place: bool) -> tuple[Saved, ...]:
    return (Saved("output"),)


def never(layer) -> bool:
    return False


def always(layer) -> bool:
    return True


class Op:
    """One primitive, declared by class attributes; subclasses override `infer`/`param_shapes`."""

    name: ClassVar[str]
    Attrs: ClassVar[type[Attrs]] = Attrs
    doc: ClassVar[str] = ""
    category: ClassVar[str]  # one of CATEGORIES: the drawing's colour, what the conventions price
    callable_: ClassVar[bool] = True  # False for add/concat/multiply, made by statements

    # The emitted constructor: `module(in_channels?, *positional args, **keyword args)`.
    module: ClassVar[str | None] = None  # "nn.Conv2d"; "StochasticDepth" is a class the file defines
    module_vector: ClassVar[str | None] = None  # on a vector, where torch has another class (BatchNorm1d)
    channels: ClassVar[bool] = False  # the constructor's first argument is the input's channels
    args: ClassVar[tuple[Arg, ...]] = ()
    join: ClassVar[str | None] = None  # a join's forward expression: "{0} + {1}", over its inputs
    defines: ClassVar[str | None] = None  # the source of `module` where the file defines it (it imports only torch)
    out_attr: ClassVar[str | None] = None  # the attribute giving the output channels (conv, linear: out)
    reshapes: ClassVar[bool] = False  # changes the channel count by reshaping (flatten)

    # What compiler/inplace.py and runtime/cam.py need to know.
    in_place: ClassVar[bool] = False  # has an `inplace=True` form computing the same bits, forward and backward
    keeps_inputs_only: ClassVar[bool] = False  # its backward needs its inputs (or nothing), never its output
    identity_at_eval: ClassVar[bool] = False  # returns its very input in eval mode (dropout, identity)

    # MACs under the other conventions (compiler/conventions.py); every op states each.
    thop: ClassVar[Rule]
    fvcore: ClassVar[Rule]
    ptflops: ClassVar[Rule]
    calflops: ClassVar[Rule]  # calflops' MACs
    calflops_flops: ClassVar[Rule]  # and its FLOPs

    # The analyses (compiler/receptive.py, compiler/train_memory.py); every op states each.
    window: ClassVar[WindowRule]  # where its outputs look in its input
    saved: ClassVar[SavedRule]  # what autograd keeps for its backward in a training step
    # The dtype it computes in under bfloat16 autocast: "lower" (conv, linear: inputs and weights are cast
    # to bfloat16), "float32" (ops torch's autocast runs in float32), "keep" (its input's dtype).
    autocast: ClassVar[str] = "keep"
    # Whether its output is its input's very storage in training (a view, or the input returned unchanged);
    # layers that run in place (compiler/inplace.py) share their input's storage as well.
    returns_input: ClassVar[Callable[[Any], bool]] = staticmethod(never)

    @property
    def fields(self) -> tuple[str, ...]:
        """The attributes' names, in the order calls give them positionally."""
        return _FIELDS[type(self)]

    def make(self, values: dict):
        """The op's attributes from a call's values (validated once for each distinct set of values:
        a network repeats its layers' settings many times over)."""
        try:
            key = (type(self), tuple(sorted(values.items())))
            hash(key)
        except TypeError:
            return self.Attrs(**values)
        attrs = _MADE.get(key)
        if attrs is None:
            attrs = _MADE[key] = self.Attrs(**values)
        return attrs

    def describe(self, attrs, inputs: tuple[Shape, ...]):
        """(output shape, parameter shapes, buffer shapes, MACs) of a layer, computed once for each
        distinct attributes and inputs; raises ShapeError."""
        key = (type(self), attrs, inputs)
        found = _DESCRIBED.get(key)
        if found is None:
            shapes = list(inputs)
            out = self.infer(attrs, shapes)
            found = _DESCRIBED[key] = (out, self.param_shapes(attrs, shapes), self.buffer_shapes(attrs, shapes),
                                       self.macs(attrs, shapes, out))
        return found

    def out_channels(self, c, attrs: dict):
        """The output's channels as an expression of the input's (`c`) and of the attributes' expressions:
        a candidate the emitter checks before it writes it (None: nothing to say)."""
        if self.out_attr is not None:
            return attrs.get(self.out_attr)
        return None if self.reshapes else c

    def infer(self, a, inputs: list[Shape]) -> Shape:
        return inputs[0]

    def param_shapes(self, a, inputs: list[Shape]) -> dict[str, Shape]:
        """Trainable tensors, in the order torch registers them."""
        return {}

    def buffer_shapes(self, a, inputs: list[Shape]) -> dict[str, Shape]:
        return {}

    def macs(self, a, inputs: list[Shape], out: Shape) -> int:
        params = sum(prod(s) for s in self.param_shapes(a, inputs).values())
        if self.category == "conv":
            return params * prod(out[1:])
        return params

    def module_for(self, rank: int) -> str:
        return self.module_vector if rank == 1 and self.module_vector else self.module


_FIELDS: dict[type, tuple[str, ...]] = {}  # filled by the registry (compiler/ops/__init__.py)
_MADE: dict = {}
_DESCRIBED: dict = {}


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


def check_window(what: str, *sizes: int) -> None:
    """Kernels, strides, dilations and paddings get the bounds channels have (and torch's lower ones)."""
    for size in sizes:
        if size > MAX_DIM:
            raise ShapeError(f"{what} of {size:,} is above the limit of {MAX_DIM:,}", code="E400",
                             hint="no real network comes near it: is a digit too many?")


def pair(v: int | tuple[int, int] | list[int]) -> tuple[int, int]:
    if isinstance(v, (tuple, list)):
        return (int(v[0]), int(v[-1]))
    return (int(v), int(v))


def fmt_shape(shape: Shape) -> str:
    if len(shape) == 3:
        return f"{shape[1]}×{shape[2]}×{shape[0]}"
    return "×".join(str(d) for d in shape) if shape else "a scalar"
