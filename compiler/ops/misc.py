"""Shape-keeping and reshaping ops: dropout, stochastic depth, identity, flatten."""

from __future__ import annotations

from math import prod
from typing import Literal

from pydantic import Field

from .base import Arg, Attrs, Op, Saved, always, check_dims, free, keeps_nothing, pointwise, whole


class DropoutAttrs(Attrs):
    p: float = Field(default=0.5, ge=0, le=1)


def _dropout_saved(layer, in_place: bool) -> tuple[Saved, ...]:
    # input × mask / (1 - p): the mask, of the input's dtype; at p = 1 a zero scalar instead
    if layer.attrs.p == 0:
        return ()
    if layer.attrs.p == 1:
        return (Saved("new", shape=(), per_sample=False),)
    return (Saved("new", shape=layer.in_shapes[0]),)


def _depth_saved(layer, in_place: bool) -> tuple[Saved, ...]:
    # x * noise (compiler/templates/network.py.j2): the noise, one per sample ("row") or one in all
    if layer.attrs.p == 0:
        return ()
    return (Saved("new", shape=(1,), per_sample=layer.attrs.mode == "row"),)


class Dropout(Op):
    name = "dropout"
    Attrs = DropoutAttrs
    category = "shape"
    identity_at_eval = True
    doc = "dropout(p=0.5)"
    module = "nn.Dropout"
    args = (Arg("p", "p", default=0.5),)
    thop = fvcore = ptflops = calflops = calflops_flops = staticmethod(free)  # identity in eval mode
    window = staticmethod(pointwise)
    saved = staticmethod(_dropout_saved)
    returns_input = staticmethod(lambda layer: layer.attrs.p == 0)  # torch returns its input at p = 0


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
    thop = fvcore = ptflops = calflops = calflops_flops = staticmethod(free)
    window, saved = staticmethod(pointwise), staticmethod(_depth_saved)
    returns_input = staticmethod(lambda layer: layer.attrs.p == 0)


class Identity(Op):
    name = "identity"
    category = "shape"
    identity_at_eval = True
    doc = "identity()"
    module = "nn.Identity"
    thop = fvcore = ptflops = calflops = calflops_flops = staticmethod(free)
    window, saved, returns_input = staticmethod(pointwise), staticmethod(keeps_nothing), staticmethod(always)


class Flatten(Op):
    name = "flatten"
    category = "shape"
    doc = "flatten(): C×H×W to a vector of C·H·W"
    module = "nn.Flatten"
    reshapes = True
    thop = fvcore = ptflops = calflops = calflops_flops = staticmethod(free)
    # a view: its output is its input's storage; each element sees what its position saw, the vector as a
    # whole the whole input
    window, saved, returns_input = staticmethod(whole), staticmethod(keeps_nothing), staticmethod(always)

    def infer(self, a, inputs):
        return check_dims((prod(inputs[0]),))
