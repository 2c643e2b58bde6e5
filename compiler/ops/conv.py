"""conv: a 2-D convolution (torch.nn.Conv2d)."""

from __future__ import annotations

from ast import literal_eval
from typing import Literal

from pydantic import Field

from .base import Attrs, Op, ShapeError, call_source, check_dims, need_map, pair

IntPair = int | tuple[int, int]


def conv_padding(k, padding=None, dilation=1):
    """conv's padding for torch.nn.Conv2d: none pads (k - 1) // 2 * dilation on each
    side (torchvision's ConvNormActivation); 'valid' is none at all."""
    if padding == "same":
        return "same"
    if padding == "valid":
        return 0
    if padding is not None:
        return padding
    kh, kw = k if isinstance(k, (tuple, list)) else (k, k)
    dh, dw = dilation if isinstance(dilation, (tuple, list)) else (dilation, dilation)
    return ((kh - 1) // 2 * dh, (kw - 1) // 2 * dw)


class ConvAttrs(Attrs):
    out: int = Field(gt=0)
    k: IntPair
    stride: IntPair = 1
    # None: (k - 1) // 2 * dilation on each side, torchvision's ConvNormActivation default
    padding: IntPair | Literal["same", "valid"] | None = None
    dilation: IntPair = 1
    groups: int = Field(default=1, gt=0)
    bias: bool = True  # torch's default; blocks followed by batchnorm pass bias = false


class Conv(Op):
    name = "conv"
    Attrs = ConvAttrs
    is_conv = True
    doc = "conv(out, k, stride=1, padding=auto, dilation=1, groups=1, bias=true)"

    def padding(self, a: ConvAttrs) -> tuple[int, int]:
        (kh, kw), (dh, dw) = pair(a.k), pair(a.dilation)
        if a.padding is None or a.padding == "same":
            return ((kh - 1) // 2 * dh, (kw - 1) // 2 * dw)
        if a.padding == "valid":
            return (0, 0)
        return pair(a.padding)

    def infer(self, a: ConvAttrs, inputs):
        c, h, w = need_map("conv", inputs[0])
        if c % a.groups or a.out % a.groups:
            raise ShapeError(f"groups={a.groups} must divide both the input channels ({c}) and out ({a.out})",
                             hint="for a depthwise conv use groups = in.c")
        if a.padding == "same" and pair(a.stride) != (1, 1):
            raise ShapeError("padding 'same' needs stride 1", hint="give the padding as a number")
        (kh, kw), (sh, sw), (dh, dw), (ph, pw) = pair(a.k), pair(a.stride), pair(a.dilation), self.padding(a)
        if min(kh, kw, sh, sw, dh, dw) < 1 or min(ph, pw) < 0:
            raise ShapeError("kernel, stride and dilation must be at least 1, padding at least 0", code="E209")
        if a.padding == "same":  # torch pads an even kernel more on one side; the size is kept
            return check_dims((a.out, h, w))
        ho = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
        wo = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
        return check_dims((a.out, ho, wo))

    def torch_module(self, a: ConvAttrs, inputs):
        from torch import nn

        padding = conv_padding(a.k, a.padding, a.dilation)
        return nn.Conv2d(inputs[0][0], a.out, pair(a.k), pair(a.stride), padding, pair(a.dilation), a.groups, a.bias)

    def source(self, args, c, rank, helpers):
        padding = args.get("padding")
        k, d = args["k"], args.get("dilation", "1")
        try:  # numbers written in the call: the padding is a number too
            value = conv_padding(literal_eval(k), None if padding is None else literal_eval(padding), literal_eval(d))
            padding = repr(value[0] if isinstance(value, tuple) and value[0] == value[1] else value)
        except (ValueError, SyntaxError):
            helpers.add("conv_padding")
            padding = f"conv_padding({k}, {padding or 'None'}, {d})"
        args = {**args, "padding": padding} if padding != "0" else {k: v for k, v in args.items() if k != "padding"}
        return call_source("nn.Conv2d", [c, args["out"], k], args,
                           {"stride": "stride", "padding": "padding", "dilation": "dilation", "groups": "groups",
                            "bias": "bias"})

    def out_channels(self, args, c):
        return args["out"]

    def param_shapes(self, a: ConvAttrs, inputs):
        kh, kw = pair(a.k)
        shapes = {"weight": (a.out, inputs[0][0] // a.groups, kh, kw)}
        if a.bias:
            shapes["bias"] = (a.out,)
        return shapes
