"""linear: a fully connected layer on a vector (torch.nn.Linear)."""

from __future__ import annotations

from pydantic import Field

from .base import Attrs, Op, ShapeError, call_source, check_dims


class LinearAttrs(Attrs):
    out: int = Field(gt=0)
    bias: bool = True


class Linear(Op):
    name = "linear"
    Attrs = LinearAttrs
    doc = "linear(out, bias=true): needs a vector input (flatten first)"

    def infer(self, a: LinearAttrs, inputs):
        if len(inputs[0]) != 1:
            raise ShapeError(f"linear needs a vector, but its input is a {len(inputs[0])}-d feature map",
                             hint="put flatten() before it", code="E306")
        return check_dims((a.out,))

    def torch_module(self, a: LinearAttrs, inputs):
        from torch import nn

        return nn.Linear(inputs[0][0], a.out, a.bias)

    def source(self, args, c, rank, helpers):
        return call_source("nn.Linear", [c, args["out"]], args, {"bias": "bias"})

    def out_channels(self, args, c):
        return args["out"]

    def param_shapes(self, a: LinearAttrs, inputs):
        shapes = {"weight": (a.out, inputs[0][0])}
        if a.bias:
            shapes["bias"] = (a.out,)
        return shapes
