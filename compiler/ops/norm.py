"""Normalisation: batchnorm (torch.nn.BatchNorm2d / 1d) and lrn (LocalResponseNorm)."""

from __future__ import annotations

from pydantic import Field

from .base import Attrs, Op, call_source


class BatchNormAttrs(Attrs):
    eps: float = Field(default=1e-5, gt=0)
    momentum: float = Field(default=0.1, ge=0, le=1)


class BatchNorm(Op):
    name = "batchnorm"
    Attrs = BatchNormAttrs
    doc = "batchnorm(eps=1e-5, momentum=0.1): running statistics are buffers, not parameters"

    def torch_module(self, a: BatchNormAttrs, inputs):
        from torch import nn

        cls = nn.BatchNorm2d if len(inputs[0]) == 3 else nn.BatchNorm1d
        return cls(inputs[0][0], eps=a.eps, momentum=a.momentum)

    def source(self, args, c, rank, helpers):
        return call_source("nn.BatchNorm2d" if rank == 3 else "nn.BatchNorm1d", [c], args,
                           {"eps": "eps", "momentum": "momentum"})

    def param_shapes(self, a, inputs):
        c = inputs[0][0]
        return {"weight": (c,), "bias": (c,)}

    def buffer_shapes(self, a, inputs):
        c = inputs[0][0]
        return {"running_mean": (c,), "running_var": (c,), "num_batches_tracked": ()}


class LrnAttrs(Attrs):
    size: int = Field(gt=0)
    alpha: float = 1e-4
    beta: float = 0.75
    k: float = 1.0


class Lrn(Op):
    name = "lrn"
    Attrs = LrnAttrs
    doc = "lrn(size, alpha=1e-4, beta=0.75, k=1.0): local response normalisation across channels"

    def torch_module(self, a: LrnAttrs, inputs):
        from torch import nn

        return nn.LocalResponseNorm(a.size, a.alpha, a.beta, a.k)

    def source(self, args, c, rank, helpers):
        return call_source("nn.LocalResponseNorm", [args["size"]], args, {"alpha": "alpha", "beta": "beta", "k": "k"})
