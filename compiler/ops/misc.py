"""Shape-keeping and reshaping ops: dropout, stochastic depth, identity, flatten."""

from __future__ import annotations

from math import prod
from typing import Literal

from pydantic import Field

from .base import Arg, Attrs, Op, check_dims, free


class DropoutAttrs(Attrs):
    p: float = Field(default=0.5, ge=0, le=1)


class Dropout(Op):
    name = "dropout"
    Attrs = DropoutAttrs
    category = "shape"
    identity_at_eval = True
    doc = "dropout(p=0.5)"
    module = "nn.Dropout"
    args = (Arg("p", "p", default=0.5),)
    thop = fvcore = staticmethod(free)  # identity in eval mode


class StochasticDepthAttrs(Attrs):
    p: float = Field(ge=0, le=1)
    mode: Literal["row", "batch"] = "row"


class StochasticDepth(Op):
    name = "stochastic_depth"
    Attrs = StochasticDepthAttrs
    category = "shape"
    identity_at_eval = True
    doc = "stochastic_depth(p, mode='row'): drops whole samples of a residual branch (torchvision.ops)"
    module = "StochasticDepth"  # torchvision.ops.StochasticDepth, written into the file: it imports only torch
    defines = '''class StochasticDepth(nn.Module):
    """torchvision.ops.StochasticDepth: drops whole samples ("row") or the whole batch in training."""

    def __init__(self, p, mode="row"):
        super().__init__()
        self.p, self.mode = p, mode

    def forward(self, x):
        if not self.training or self.p == 0.0:
            return x
        survival = 1.0 - self.p
        size = [x.shape[0]] + [1] * (x.ndim - 1) if self.mode == "row" else [1] * x.ndim
        noise = torch.empty(size, dtype=x.dtype, device=x.device).bernoulli_(survival)
        if survival > 0.0:
            noise.div_(survival)
        return x * noise'''
    args = (Arg("p", "p", positional=True), Arg("mode", "mode", default="row"))
    thop = fvcore = staticmethod(free)


class Identity(Op):
    name = "identity"
    category = "shape"
    identity_at_eval = True
    doc = "identity()"
    module = "nn.Identity"
    thop = fvcore = staticmethod(free)


class Flatten(Op):
    name = "flatten"
    category = "shape"
    doc = "flatten(): C×H×W to a vector of C·H·W"
    module = "nn.Flatten"
    reshapes = True
    thop = fvcore = staticmethod(free)

    def infer(self, a, inputs):
        return check_dims((prod(inputs[0]),))
