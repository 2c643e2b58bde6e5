"""Pooling: max/avg (with ceil mode), adaptive, and global pooling."""

from __future__ import annotations

from math import ceil, prod

from pydantic import Field

from .base import Arg, Attrs, Op, ShapeError, check_dims, check_window, free, need_map, pair

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


def _thop_avgpool(layer, batch: int) -> int:
    # thop's count_avgpool: one per output element, whatever the kernel
    return batch * prod(layer.out_shape)


def _thop_adaptive_avgpool(layer, batch: int) -> int:
    # thop's count_adap_avgpool: (prod(input size / output size) + 1) per output element, in float64 and
    # truncated over the whole batch; a float ratio where the output does not divide the input
    (_, h, w), (_, oh, ow) = layer.in_shapes[0], layer.out_shape
    return int(((h / oh) * (w / ow) + 1) * (batch * prod(layer.out_shape)))


def _fvcore_adaptive_avgpool(layer, batch: int) -> int:
    # fvcore: aten::adaptive_avg_pool2d is elementwise_flop_counter(1, 0), one per input element
    return batch * prod(layer.in_shapes[0])


class _Pool(Op):
    Attrs = PoolAttrs
    category = "pool"
    args = (Arg("kernel_size", "k", positional=True), Arg("stride", "stride", default=None),
            Arg("padding", "padding", default=0), Arg("ceil_mode", "ceil", default=False))

    def infer(self, a: PoolAttrs, inputs):
        c, h, w = need_map(self.name, inputs[0])
        (kh, kw), (ph, pw) = pair(a.k), pair(a.padding)
        sh, sw = pair(a.stride if a.stride is not None else a.k)
        if min(kh, kw, sh, sw) < 1:
            raise ShapeError("kernel and stride must be at least 1", code="E209")
        check_window("a kernel, stride or padding", kh, kw, sh, sw, ph, pw)
        if ph > kh // 2 or pw > kw // 2:
            raise ShapeError(f"padding {a.padding} is more than half the kernel {a.k}", hint="torch refuses this")
        return check_dims((c, _pooled(h, kh, sh, ph, a.ceil), _pooled(w, kw, sw, pw, a.ceil)))


class MaxPool(_Pool):
    name = "maxpool"
    doc = "maxpool(k, stride=k, padding=0, ceil=false)"
    module = "nn.MaxPool2d"
    thop = fvcore = staticmethod(free)


class AvgPool(_Pool):
    name = "avgpool"
    doc = "avgpool(k, stride=k, padding=0, ceil=false)"
    module = "nn.AvgPool2d"
    thop = staticmethod(_thop_avgpool)
    fvcore = staticmethod(free)  # aten::avg_pool2d has no handle in fvcore


class AdaptiveAttrs(Attrs):
    size: IntPair = Field(default=1)


class _Adaptive(Op):
    Attrs = AdaptiveAttrs
    category = "pool"
    args = (Arg("output_size", "size", positional=True),)

    def infer(self, a: AdaptiveAttrs, inputs):
        c, _, _ = need_map(self.name, inputs[0])
        return check_dims((c, *pair(a.size)))


class AdaptiveAvgPool(_Adaptive):
    name = "adaptive_avgpool"
    doc = "adaptive_avgpool(size=1)"
    module = "nn.AdaptiveAvgPool2d"
    thop, fvcore = staticmethod(_thop_adaptive_avgpool), staticmethod(_fvcore_adaptive_avgpool)


class AdaptiveMaxPool(_Adaptive):
    name = "adaptive_maxpool"
    doc = "adaptive_maxpool(size=1)"
    module = "nn.AdaptiveMaxPool2d"
    thop = fvcore = staticmethod(free)


class GlobalAvgPool(Op):
    name = "global_avgpool"
    category = "pool"
    doc = "global_avgpool(): the mean of each channel, C×1×1 (AdaptiveAvgPool2d(1))"
    module = "nn.AdaptiveAvgPool2d"
    args = (Arg("output_size", derive=lambda a: 1, positional=True),)
    # built as nn.AdaptiveAvgPool2d(1), so the tools price it as one
    thop, fvcore = staticmethod(_thop_adaptive_avgpool), staticmethod(_fvcore_adaptive_avgpool)

    def infer(self, a, inputs):
        c, _, _ = need_map(self.name, inputs[0])
        return (c, 1, 1)
