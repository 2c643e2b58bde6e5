"""Pooling: max/avg (with ceil mode), adaptive, and global pooling."""

from __future__ import annotations

from math import ceil

from pydantic import Field

from .base import Attrs, Op, ShapeError, call_source, check_dims, need_map, pair

IntPair = int | tuple[int, int]


class PoolAttrs(Attrs):
    k: IntPair
    stride: IntPair | None = None  # torch's default: the kernel size
    padding: IntPair = 0
    ceil: bool = False


def _pooled(size: int, k: int, s: int, p: int, ceil_mode: bool) -> int:
    # torch.nn.functional's pooling_output_shape, dilation 1
    span = size + 2 * p - k
    out = (ceil(span / s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1  # the last window must start inside the input or its left padding
    return out


class _Pool(Op):
    Attrs = PoolAttrs

    def infer(self, a: PoolAttrs, inputs):
        c, h, w = need_map(self.name, inputs[0])
        (kh, kw), (ph, pw) = pair(a.k), pair(a.padding)
        sh, sw = pair(a.stride if a.stride is not None else a.k)
        if min(kh, kw, sh, sw) < 1:
            raise ShapeError("kernel and stride must be at least 1", code="E209")
        if ph > kh // 2 or pw > kw // 2:
            raise ShapeError(f"padding {a.padding} is more than half the kernel {a.k}", hint="torch refuses this")
        return check_dims((c, _pooled(h, kh, sh, ph, a.ceil), _pooled(w, kw, sw, pw, a.ceil)))


    def torch_module(self, a: PoolAttrs, inputs):
        from torch import nn

        cls = nn.MaxPool2d if self.name == "maxpool" else nn.AvgPool2d
        return cls(pair(a.k), pair(a.stride if a.stride is not None else a.k), pair(a.padding), ceil_mode=a.ceil)

    def source(self, args, c, rank, helpers):
        ctor = "nn.MaxPool2d" if self.name == "maxpool" else "nn.AvgPool2d"
        return call_source(ctor, [args["k"]], args, {"stride": "stride", "padding": "padding", "ceil": "ceil_mode"})


class MaxPool(_Pool):
    name = "maxpool"
    doc = "maxpool(k, stride=k, padding=0, ceil=false)"


class AvgPool(_Pool):
    name = "avgpool"
    doc = "avgpool(k, stride=k, padding=0, ceil=false)"


class AdaptiveAttrs(Attrs):
    size: IntPair = Field(default=1)


class _Adaptive(Op):
    Attrs = AdaptiveAttrs

    def infer(self, a: AdaptiveAttrs, inputs):
        c, _, _ = need_map(self.name, inputs[0])
        return check_dims((c, *pair(a.size)))

    def torch_module(self, a: AdaptiveAttrs, inputs):
        from torch import nn

        cls = nn.AdaptiveAvgPool2d if self.name == "adaptive_avgpool" else nn.AdaptiveMaxPool2d
        return cls(pair(a.size))

    def source(self, args, c, rank, helpers):
        ctor = "nn.AdaptiveAvgPool2d" if self.name == "adaptive_avgpool" else "nn.AdaptiveMaxPool2d"
        return f"{ctor}({args.get('size', '1')})"


class AdaptiveAvgPool(_Adaptive):
    name = "adaptive_avgpool"
    doc = "adaptive_avgpool(size=1)"


class AdaptiveMaxPool(_Adaptive):
    name = "adaptive_maxpool"
    doc = "adaptive_maxpool(size=1)"


class GlobalAvgPool(Op):
    name = "global_avgpool"
    doc = "global_avgpool(): the mean of each channel, C×1×1 (AdaptiveAvgPool2d(1))"

    def infer(self, a, inputs):
        c, _, _ = need_map(self.name, inputs[0])
        return (c, 1, 1)

    def torch_module(self, a, inputs):
        from torch import nn

        return nn.AdaptiveAvgPool2d(1)

    def source(self, args, c, rank, helpers):
        return "nn.AdaptiveAvgPool2d(1)"
