"""Shape-keeping and reshaping ops: dropout, stochastic depth, identity, flatten."""

from __future__ import annotations

from math import prod

from pydantic import Field

from .base import Attrs, Op, check_dims


class DropoutAttrs(Attrs):
    p: float = Field(default=0.5, ge=0, le=1)


class Dropout(Op):
    name = "dropout"
    Attrs = DropoutAttrs
    doc = "dropout(p=0.5)"


class StochasticDepthAttrs(Attrs):
    p: float = Field(ge=0, le=1)
    mode: str = "row"


class StochasticDepth(Op):
    name = "stochastic_depth"
    Attrs = StochasticDepthAttrs
    doc = "stochastic_depth(p, mode='row'): drops whole samples of a residual branch (torchvision.ops)"


class Identity(Op):
    name = "identity"
    doc = "identity()"


class Flatten(Op):
    name = "flatten"
    doc = "flatten(): C×H×W to a vector of C·H·W"

    def infer(self, a, inputs):
        return check_dims((prod(inputs[0]),))
