"""Normalisation: batchnorm (torch.nn.BatchNorm2d / 1d) and lrn (LocalResponseNorm)."""

from __future__ import annotations

from math import prod

from pydantic import Field

from .base import Arg, Attrs, Op, free


class BatchNormAttrs(Attrs):
    eps: float = Field(default=1e-5, gt=0)
    momentum: float = Field(default=0.1, ge=0, le=1)


def _thop(layer, batch: int) -> int:
    # thop's count_normalization: 2 per input element, doubled when affine (always, here)
    return batch * 4 * prod(layer.in_shapes[0])


def _fvcore(layer, batch: int) -> int:
    # fvcore's batchnorm_flop_jit, not training: 2 per input element when affine (always, here)
    return batch * 2 * prod(layer.in_shapes[0])


class BatchNorm(Op):
    name = "batchnorm"
    Attrs = BatchNormAttrs
    category = "norm"
    keeps_inputs_only = True
    doc = "batchnorm(eps=1e-5, momentum=0.1): running statistics are buffers, not parameters"
    module, module_vector, channels = "nn.BatchNorm2d", "nn.BatchNorm1d", True
    args = (Arg("eps", "eps", default=1e-5), Arg("momentum", "momentum", default=0.1))
    thop, fvcore = staticmethod(_thop), staticmethod(_fvcore)

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


class Lrn(Op):
    name = "lrn"
    Attrs = LrnAttrs
    category = "norm"
    doc = "lrn(size, alpha=1e-4, beta=0.75, k=1.0): local response normalisation across channels"
    module = "nn.LocalResponseNorm"
    args = (Arg("size", "size", positional=True), Arg("alpha", "alpha", default=1e-4),
            Arg("beta", "beta", default=0.75), Arg("k", "k", default=1.0))
    # thop has no rule for it; fvcore sees only elementwise aten ops and an avg_pool3d
    thop = fvcore = staticmethod(free)
