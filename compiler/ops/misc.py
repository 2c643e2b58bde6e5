"""Shape-keeping and reshaping ops: dropout, stochastic depth, identity, flatten."""

from __future__ import annotations

from math import prod
from typing import Literal

from pydantic import Field

from .base import Attrs, Op, check_dims


class DropoutAttrs(Attrs):
    p: float = Field(default=0.5, ge=0, le=1)


class Dropout(Op):
    name = "dropout"
    Attrs = DropoutAttrs
    doc = "dropout(p=0.5)"

    def torch_module(self, a: DropoutAttrs, inputs):
        from torch import nn

        return nn.Dropout(a.p)

    def source(self, args, c, rank, helpers):
        return f"nn.Dropout({args.get('p', '')})"


class StochasticDepthAttrs(Attrs):
    p: float = Field(ge=0, le=1)
    mode: Literal["row", "batch"] = "row"


class StochasticDepth(Op):
    name = "stochastic_depth"
    Attrs = StochasticDepthAttrs
    doc = "stochastic_depth(p, mode='row'): drops whole samples of a residual branch (torchvision.ops)"

    def torch_module(self, a: StochasticDepthAttrs, inputs):
        from torchvision.ops import StochasticDepth as TorchStochasticDepth

        return TorchStochasticDepth(a.p, a.mode)

    def source(self, args, c, rank, helpers):
        helpers.add("StochasticDepth")  # written into the emitted file: it imports only torch
        return f"StochasticDepth({args['p']}, {args.get('mode', repr('row'))})"


class Identity(Op):
    name = "identity"
    doc = "identity()"

    def torch_module(self, a, inputs):
        from torch import nn

        return nn.Identity()

    def source(self, args, c, rank, helpers):
        return "nn.Identity()"


class Flatten(Op):
    name = "flatten"
    doc = "flatten(): C×H×W to a vector of C·H·W"

    def infer(self, a, inputs):
        return check_dims((prod(inputs[0]),))

    def torch_module(self, a, inputs):
        from torch import nn

        return nn.Flatten()

    def source(self, args, c, rank, helpers):
        return "nn.Flatten()"
