"""Pooling: max/avg (with ceil mode), adaptive, and global pooling."""

from __future__ import annotations

from math import ceil, prod

from pydantic import Field

from .base import (GLOBAL, IRREGULAR, Arg, Attrs, Op, Saved, ShapeError, Window, check_dims, check_window, free,
                   input_elements, keeps_input, keeps_nothing, need_map, pair)

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


def _ptflops(layer, batch: int) -> int:
    # ptflops' pool_flops_counter_hook counts the input's elements, and its patch of F.max_pool2d
    # (F.avg_pool2d, F.adaptive_*), which the module's forward calls, counts them again
    return 2 * input_elements(layer, batch)


def _window(layer) -> Window:
    a = layer.attrs
    return Window(pair(a.k), pair(a.stride if a.stride is not None else a.k), pair(a.padding))


def _with_indices(layer, in_place: bool) -> tuple[Saved, ...]:
    # max_pool2d_with_indices_backward: the input and the argmax of every output, int64
    return (Saved("input"), Saved("new", shape=layer.out_shape, dtype="int64"))


def _adaptive_window(layer):
    (_, h, w), (_, oh, ow) = layer.in_shapes[0], layer.out_shape
    if (oh, ow) == (1, 1):
        return GLOBAL
    if h % oh or w % ow:
        return IRREGULAR  # windows of two sizes: no one stride describes them
    return Window((h // oh, w // ow), (h // oh, w // ow))


def _adaptive_avg_saved(layer, in_place: bool) -> tuple[Saved, ...]:
    # to 1×1, torch computes a mean over H and W, whose backward needs only the sizes
    return () if layer.out_shape[1:] == (1, 1) else (Saved("input"),)


class _Pool(Op):
    Attrs = PoolAttrs
    category = "pool"
    ptflops, calflops_flops, calflops = staticmethod(_ptflops), staticmethod(input_elements), staticmethod(free)
    window = staticmethod(_window)
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
    saved = staticmethod(_with_indices)


class AvgPool(_Pool):
    name = "avgpool"
    doc = "avgpool(k, stride=k, padding=0, ceil=false)"
    module = "nn.AvgPool2d"
    thop = staticmethod(_thop_avgpool)
    fvcore = staticmethod(free)  # aten::avg_pool2d has no handle in fvcore
    saved = staticmethod(keeps_input)


class AdaptiveAttrs(Attrs):
    size: IntPair = Field(default=1)


class _Adaptive(Op):
    Attrs = AdaptiveAttrs
    category = "pool"
    ptflops, calflops_flops, calflops = staticmethod(_ptflops), staticmethod(input_elements), staticmethod(free)
    window = staticmethod(_adaptive_window)
    args = (Arg("output_size", "size", positional=True),)

    def infer(self, a: AdaptiveAttrs, inputs):
        c, _, _ = need_map(self.name, inputs[0])
        return check_dims((c, *pair(a.size)))


class AdaptiveAvgPool(_Adaptive):
    name = "adaptive_avgpool"
    doc = "adaptive_avgpool(size=1)"
    module = "nn.AdaptiveAvgPool2d"
    thop, fvcore = staticmethod(_thop_adaptive_avgpool), staticmethod(_fvcore_adaptive_avgpool)
    saved = staticmethod(_adaptive_avg_saved)


class AdaptiveMaxPool(_Adaptive):
    name = "adaptive_maxpool"
    doc = "adaptive_maxpool(size=1)"
    module = "nn.AdaptiveMaxPool2d"
    thop = fvcore = staticmethod(free)
    saved = staticmethod(_with_indices)


class GlobalAvgPool(Op):
    name = "global_avgpool"
    category = "pool"
    doc = "global_avgpool(): the mean of each channel, C×1×1 (AdaptiveAvgPool2d(1))"
    module = "nn.AdaptiveAvgPool2d"
    args = (Arg("output_size", derive=lambda a: 1, positional=True),)
    # built as nn.AdaptiveAvgPool2d(1), so the tools price it as one
    thop, fvcore = staticmethod(_thop_adaptive_avgpool), staticmethod(_fvcore_adaptive_avgpool)
    ptflops, calflops_flops, calflops = staticmethod(_ptflops), staticmethod(input_elements), staticmethod(free)
    window, saved = staticmethod(lambda layer: GLOBAL), staticmethod(keeps_nothing)  # a mean: sizes only

    def infer(self, a, inputs):
        c, _, _ = need_map(self.name, inputs[0])
        return (c, 1, 1)
