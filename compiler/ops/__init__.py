"""The registry of primitive ops: one name, one spec, no silent overwrite, nothing left undeclared."""

from __future__ import annotations

from .activation import ACTIVATIONS
from .base import _FIELDS, CATEGORIES, MAX_DIM, Arg, Attrs, Op, Shape, ShapeError, fmt_shape
from .channels import ChannelLinear, ChannelShuffle, Chunk, LayerNorm, LayerScale
from .conv import Conv
from .linear import Linear
from .merge import Add, Concat, Multiply
from .misc import Dropout, Flatten, Identity, StochasticDepth
from .norm import BatchNorm, Lrn
from .pool import AdaptiveAvgPool, AdaptiveMaxPool, AvgPool, GlobalAvgPool, MaxPool

OPS: dict[str, Op] = {}

# What every op must declare: its kind, its MACs under each counting convention (compiler/conventions.py),
# its window (compiler/receptive.py) and what its backward keeps (compiler/train_memory.py).
REQUIRED = ("category", "thop", "fvcore", "ptflops", "calflops", "calflops_flops", "window", "saved")

for _cls in (Conv, BatchNorm, Lrn, *ACTIVATIONS, MaxPool, AvgPool, AdaptiveAvgPool, AdaptiveMaxPool, GlobalAvgPool,
             Linear, Dropout, StochasticDepth, Identity, Flatten, LayerNorm, ChannelLinear, LayerScale, Chunk,
             ChannelShuffle, Add, Concat, Multiply):
    if _cls.name in OPS:
        raise RuntimeError(f"op {_cls.name!r} registered twice")
    missing = [attr for attr in REQUIRED if not hasattr(_cls, attr)]
    if missing or _cls.category not in CATEGORIES or (_cls.module is None) == _cls.callable_ \
            or _cls.autocast not in ("lower", "float32", "keep"):
        raise RuntimeError(f"op {_cls.name!r} does not declare {missing or 'a category, module or join'}")
    OPS[_cls.name] = _cls()
    _FIELDS[_cls] = tuple(_cls.Attrs.model_fields)

# The paper's other names for the same op.
ALIASES = {"swish": "silu", "bn": "batchnorm", "fc": "linear"}

CALLABLE = {name for name, op in OPS.items() if op.callable_} | set(ALIASES)


def lookup(name: str) -> Op | None:
    op = OPS.get(ALIASES.get(name, name))
    return op if op is not None and op.callable_ else None


__all__ = ["OPS", "ALIASES", "CALLABLE", "MAX_DIM", "Arg", "Attrs", "Op", "Shape", "ShapeError", "fmt_shape",
           "lookup"]
