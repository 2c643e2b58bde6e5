"""conv: a 2-D convolution (torch.nn.Conv2d)."""

from __future__ import annotations

from math import prod
from typing import Literal

from pydantic import Field

from ..pyexpr import FUNCTIONS, Cmp, IfElse, Lit, call
from .base import MAX_WEIGHT, Arg, Attrs, Op, Saved, ShapeError, Window, check_dims, check_window, need_map, pair

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
    ph, pw = (kh - 1) // 2 * dh, (kw - 1) // 2 * dw
    return ph if ph == pw else (ph, pw)


FUNCTIONS["conv_padding"] = conv_padding  # the emitted file has it too (compiler/emit_source.py HELPERS)


def _padding_formula(e: dict, values: dict) -> list:
    """Expressions of the call's k, padding and dilation for torch's padding, most readable first:
    `(k - 1) // 2` where every use pads automatically (the emitter keeps one only where it gives
    conv_padding's value in every use)."""
    padding, k, d = e["padding"], e["k"], e["dilation"]
    auto = None
    if k is not None and d is not None and all(isinstance(v, int) for v in values["k"] + values["dilation"]):
        auto = (k - 1) // 2 * d
    given = [v for v in values["padding"] if v is not None]
    candidates = []
    if not given:
        candidates.append(auto)
    elif all(v not in ("same", "valid") for v in values["padding"]):
        candidates += [padding, IfElse(Cmp("is", padding, Lit(None)), auto, padding) if auto and padding else None]
    if k is not None and padding is not None and d is not None:
        unit = isinstance(d, Lit) and d.value == 1
        candidates.append(call("conv_padding", k, padding) if unit else call("conv_padding", k, padding, d))
    return candidates


class ConvAttrs(Attrs):
    out: int = Field(gt=0)
    k: IntPair
    stride: IntPair = 1
    # None: (k - 1) // 2 * dilation on each side, torchvision's ConvNormActivation default
    padding: IntPair | Literal["same", "valid"] | None = None
    dilation: IntPair = 1
    groups: int = Field(default=1, gt=0)
    bias: bool = True  # torch's default; blocks followed by batchnorm pass bias = false


def _thop(layer, batch: int) -> int:
    # thop's count_convNd: output elements × (in_c / groups) × kh × kw; the bias is not counted
    return batch * prod(layer.out_shape) * prod(layer.params["weight"][1:])


def _fvcore(layer, batch: int) -> int:
    # fvcore's conv_flop_jit on aten::_convolution: weight elements × output positions; no bias
    return batch * prod(layer.params["weight"]) * prod(layer.out_shape[1:])


def _ptflops(layer, batch: int) -> int:
    # ptflops' conv_flops_counter_hook: weight elements × output positions, plus one per output element for
    # the bias
    bias = prod(layer.out_shape) if "bias" in layer.params else 0
    return batch * (prod(layer.params["weight"]) * prod(layer.out_shape[1:]) + bias)


def _calflops(layer, batch: int) -> int:
    # calflops' _conv_flops_compute on F.conv2d, its MACs: kernel × in_c × out_c / groups per output position
    return batch * prod(layer.params["weight"]) * prod(layer.out_shape[1:])


def _calflops_flops(layer, batch: int) -> int:
    # its FLOPs: two per MAC, and out_c per output position for the bias
    bias = prod(layer.out_shape) if "bias" in layer.params else 0
    return 2 * _calflops(layer, batch) + batch * bias


def _window(layer) -> Window:
    a = layer.attrs
    (kh, kw), (sh, sw), (dh, dw) = pair(a.k), pair(a.stride), pair(a.dilation)
    if a.padding == "same":  # torch pads d·(k - 1) in all, the larger half after the input
        before = (dh * (kh - 1) // 2, dw * (kw - 1) // 2)
    elif a.padding == "valid":
        before = (0, 0)
    elif a.padding is None:
        before = ((kh - 1) // 2 * dh, (kw - 1) // 2 * dw)
    else:
        before = pair(a.padding)
    return Window((kh, kw), (sh, sw), before, (dh, dw))


def _saved(layer, in_place: bool) -> tuple[Saved, ...]:
    # convolution_backward needs the input (for the weight's gradient) and the weight (for the input's)
    return (Saved("input"), Saved("weight"))


class Conv(Op):
    name = "conv"
    Attrs = ConvAttrs
    category = "conv"
    keeps_inputs_only = True
    doc = "conv(out, k, stride=1, padding=auto, dilation=1, groups=1, bias=true)"
    module, channels = "nn.Conv2d", True
    out_attr = "out"
    args = (Arg("out_channels", "out", positional=True), Arg("kernel_size", "k", positional=True),
            Arg("stride", "stride", default=1),
            Arg("padding", derive=lambda a: conv_padding(a.k, a.padding, a.dilation), formula=_padding_formula,
                helper="conv_padding(k, padding, dilation)", default=0),
            Arg("dilation", "dilation", default=1), Arg("groups", "groups", default=1),
            Arg("bias", "bias", default=True))
    thop, fvcore = staticmethod(_thop), staticmethod(_fvcore)
    ptflops, calflops, calflops_flops = staticmethod(_ptflops), staticmethod(_calflops), staticmethod(_calflops_flops)
    window, saved = staticmethod(_window), staticmethod(_saved)
    autocast = "lower"

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
        check_window("a kernel, stride, dilation or padding", kh, kw, sh, sw, dh, dw, ph, pw)
        if a.padding == "same":  # torch pads an even kernel more on one side; the size is kept
            out = check_dims((a.out, h, w))
        else:
            ho = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
            wo = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
            out = check_dims((a.out, ho, wo))
        if a.out * (c // a.groups) * kh * kw > MAX_WEIGHT:
            raise ShapeError(f"a weight of {a.out:,}×{c // a.groups:,}×{kh:,}×{kw:,} is above the limit of "
                             f"{MAX_WEIGHT:,} elements", code="E400",
                             hint="no real network comes near it: is a digit too many?")
        return out

    def param_shapes(self, a: ConvAttrs, inputs):
        kh, kw = pair(a.k)
        shapes = {"weight": (a.out, inputs[0][0] // a.groups, kh, kw)}
        if a.bias:
            shapes["bias"] = (a.out,)
        return shapes
