"""Normalisation: batchnorm (torch.nn.BatchNorm2d / 1d) and lrn (LocalResponseNorm)."""

from __future__ import annotations

from math import prod

from pydantic import Field

from .base import Arg, Attrs, Op, Saved, free, pointwise


class BatchNormAttrs(Attrs):
    eps: float = Field(default=1e-5, gt=0)
    momentum: float = Field(default=0.1, ge=0, le=1)


def _thop(layer, batch: int) -> int:
    # thop's count_normalization: 2 per input element, doubled when affine (always, here)
    return batch * 4 * prod(layer.in_shapes[0])


def _fvcore(layer, batch: int) -> int:
    # fvcore's batchnorm_flop_jit, not training: 2 per input element when affine (always, here)
    return batch * 2 * prod(layer.in_shapes[0])


def _ptflops(layer, batch: int) -> int:
    # ptflops' bn_flops_counter_hook: one per input element, doubled when affine (always, here); calflops'
    # _batch_norm_flops_compute in eval mode counts the same FLOPs, and no MACs
    return batch * 2 * prod(layer.in_shapes[0])


def _saved(layer, in_place: bool) -> tuple[Saved, ...]:
    # native_batch_norm_backward: the input, the weight, the running statistics (module state, no cost)
    # and the batch's mean and inverse standard deviation, one float32 per channel each
    c = layer.in_shapes[0][0]
    batch_stat = Saved("new", shape=(c,), per_sample=False, dtype="float32")
    return (Saved("input"), batch_stat, batch_stat)


class BatchNorm(Op):
    name = "batchnorm"
    Attrs = BatchNormAttrs
    category = "norm"
    keeps_inputs_only = True
    doc = "batchnorm(eps=1e-5, momentum=0.1): running statistics are buffers, not parameters"
    module, module_vector, channels = "nn.BatchNorm2d", "nn.BatchNorm1d", True
    args = (Arg("eps", "eps", default=1e-5), Arg("momentum", "momentum", default=0.1))
    thop, fvcore = staticmethod(_thop), staticmethod(_fvcore)
    ptflops = calflops_flops = staticmethod(_ptflops)
    calflops = staticmethod(free)
    window, saved = staticmethod(pointwise), staticmethod(_saved)

    def param_shapes(self, a, inputs):
        c = inputs[0][0]
        return {"weight": (c,), "bias": (c,)}

    def buffer_shapes(self, a, inputs):
        c = inputs[0][0]
        return {"running_mean": (c,), "running_var": (c,), "num_batches_tracked": ()}


class LrnAttrs(Attrs):
    size: int = Field(gt=0, le=1 << 20)
    alpha: float = 1e-4
    beta: float = 0.75
    k: float = 1.0


def _lrn_elements(layer, batch: int) -> int:
    # torch's F.local_response_norm: input.mul(input), avg_pool3d over the square padded to C + size - 1
    # channels, .mul(alpha), .add(k), then pow and a division. ptflops and calflops patch Tensor.mul,
    # Tensor.add and F.avg_pool3d, one per element each; pow and `/` they do not see
    c, h, w = layer.in_shapes[0]
    return batch * (3 * c * h * w + (c + layer.attrs.size - 1) * h * w)


def _lrn_saved(layer, in_place: bool) -> tuple[Saved, ...]:
    # the input (for the square and the division), the padded square (avg_pool3d's input), the sum before
    # pow and pow's result (the divisor); torch's autocast runs avg_pool3d in float32, so those stay float32
    c, h, w = layer.in_shapes[0]
    padded = Saved("new", shape=(1, c + layer.attrs.size - 1, h, w), dtype="float32")
    return (Saved("input"), padded, Saved("new", shape=(c, h, w), dtype="float32"),
            Saved("new", shape=(c, h, w), dtype="float32"))


class Lrn(Op):
    name = "lrn"
    Attrs = LrnAttrs
    category = "norm"
    doc = "lrn(size, alpha=1e-4, beta=0.75, k=1.0): local response normalisation across channels"
    module = "nn.LocalResponseNorm"
    args = (Arg("size", "size", positional=True), Arg("alpha", "alpha", default=1e-4),
            Arg("beta", "beta", default=0.75), Arg("k", "k", default=1.0))
    # thop has no rule for it; fvcore sees only elementwise aten ops and an avg_pool3d
    thop = fvcore = calflops = staticmethod(free)
    ptflops = calflops_flops = staticmethod(_lrn_elements)
    window, saved = staticmethod(pointwise), staticmethod(_lrn_saved)  # across channels, not positions
    autocast = "float32"
