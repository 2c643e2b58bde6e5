"""linear: a fully connected layer on a vector (torch.nn.Linear)."""

from __future__ import annotations

from math import prod

from pydantic import Field

from .base import Arg, Attrs, Op, ShapeError, check_dims


class LinearAttrs(Attrs):
    out: int = Field(gt=0)
    bias: bool = True


def _thop(layer, batch: int) -> int:
    # thop's count_linear: in_features per output element; the bias is not counted
    return batch * prod(layer.out_shape) * layer.in_shapes[0][0]


def _fvcore(layer, batch: int) -> int:
    # fvcore's linear_flop_jit on aten::linear: input elements × out_features; no bias
    return batch * prod(layer.in_shapes[0]) * layer.out_shape[0]


class Linear(Op):
    name = "linear"
    Attrs = LinearAttrs
    category = "linear"
    keeps_inputs_only = True
    doc = "linear(out, bias=true): needs a vector input (flatten first)"
    module, channels = "nn.Linear", True
    out_attr = "out"
    args = (Arg("out_features", "out", positional=True), Arg("bias", "bias", default=True))
    thop, fvcore = staticmethod(_thop), staticmethod(_fvcore)

    def infer(self, a: LinearAttrs, inputs):
        if len(inputs[0]) != 1:
            raise ShapeError(f"linear needs a vector, but its input is a {len(inputs[0])}-d feature map",
                             hint="put flatten() before it", code="E306")
        return check_dims((a.out,))

    def param_shapes(self, a: LinearAttrs, inputs):
        shapes = {"weight": (a.out, inputs[0][0])}
        if a.bias:
            shapes["bias"] = (a.out,)
        return shapes
