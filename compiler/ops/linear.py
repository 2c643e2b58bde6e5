"""linear: a fully connected layer on a vector (torch.nn.Linear)."""

from __future__ import annotations

from math import prod

from pydantic import Field

from .base import Arg, Attrs, Op, Saved, ShapeError, check_dims, whole


class LinearAttrs(Attrs):
    out: int = Field(gt=0)
    bias: bool = True


def _thop(layer, batch: int) -> int:
    # thop's count_linear: in_features per output element; the bias is not counted
    return batch * prod(layer.out_shape) * layer.in_shapes[0][0]


def _fvcore(layer, batch: int) -> int:
    # fvcore's linear_flop_jit on aten::linear: input elements × out_features; no bias
    return batch * prod(layer.in_shapes[0]) * layer.out_shape[0]


def _ptflops(layer, batch: int) -> int:
    # ptflops' linear_flops_counter_hook: in × out, plus out for the bias
    bias = layer.out_shape[0] if "bias" in layer.params else 0
    return batch * (layer.in_shapes[0][0] * layer.out_shape[0] + bias)


def _calflops(layer, batch: int) -> int:
    # calflops' _linear_flops_compute on F.linear: input elements × out_features MACs, twice that in FLOPs;
    # the bias is not counted
    return batch * layer.in_shapes[0][0] * layer.out_shape[0]


def _saved(layer, in_place: bool) -> tuple[Saved, ...]:
    # addmm's backward: the input (for the weight's gradient) and the weight (for the input's)
    return (Saved("input"), Saved("weight"))


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
    ptflops, calflops = staticmethod(_ptflops), staticmethod(_calflops)
    calflops_flops = staticmethod(lambda layer, batch: 2 * _calflops(layer, batch))
    window, saved = staticmethod(whole), staticmethod(_saved)
    autocast = "lower"

    def infer(self, a: LinearAttrs, inputs):
        if len(inputs[0]) != 1:
            raise ShapeError(f"linear needs a vector, but its input is a {len(inputs[0])}-d feature map",
                             hint="put flatten() before it; for a linear layer over the channels at each position (ConvNeXt's "
                                  "MLP), use channel_linear(out)", code="E306")
        return check_dims((a.out,))

    def param_shapes(self, a: LinearAttrs, inputs):
        shapes = {"weight": (a.out, inputs[0][0])}
        if a.bias:
            shapes["bias"] = (a.out,)
        return shapes
