"""MAC conventions: how each counting tool prices each op, so that `archc check
--convention thop` prints the figure a paper or a report got from thop.

Tools disagree because they count different things (seed 001's "FLOPs
0.122993904 G" is twice thop's 61,496,952 MACs, where torchinfo says
55,545,474 on the same network). Each convention here is a table of rules,
one per op name of the registry (compiler/ops), reading only the graph's
layer (its shapes, its parameter shapes, its attrs); a test keeps every
table complete, so a new op has to be priced in each. A rule returns the
count for a whole batch, as the tools do: thop truncates some products to
whole numbers over the batch, not per sample.

- torchinfo (the default): torchinfo 1.8's mult-adds, which reproduce
  torchvision's `_ops` figures; the op specs compute it (`Layer.macs`).
- thop: `thop.profile` of PyPI's `thop` 0.1.1 (pytorch-OpCounter), a forward
  hook per leaf module type it knows (thop/profile.py `register_hooks`),
  zero for every module it does not know and for everything torch computes
  outside a module (the residual add, the SE gate's multiply, concat).
  ultralytics-thop 2.x counts the same except pooling: an avgpool costs its
  windows' inputs plus its outputs, and adaptive windows are counted whole.
- fvcore: `fvcore.nn.FlopCountAnalysis` 0.1.5 of the model in eval mode. It
  traces the model and prices aten ops (fvcore/nn/flop_count.py
  `_DEFAULT_SUPPORTED_OPS`); every other op, activations, max pooling and
  fixed-window average pooling included, is skipped with a warning. One
  "flop" is one multiply-add.

thop and fvcore price ops by where torch runs them: torchvision's Inception
v3 pools its branches with `F.avg_pool2d`, which thop's module hooks never
see, so thop on torchvision's model counts those pools as zero while it
counts archc's own `nn.AvgPool2d` (docs/zoo/googlenet_inception.md).

    >>> from archc.compiler.check import check
    >>> from archc.compiler.program import library_dir
    >>> check(library_dir() / "mobilenet_v3_small.arch", num_classes=42, convention="thop").macs
    61496952
"""

from __future__ import annotations

from collections.abc import Callable
from math import prod

from .graph import Layer
from .ops import OPS

Rule = Callable[[Layer, int], int]  # (layer, batch) -> MACs of the whole batch


def _free(layer: Layer, batch: int) -> int:
    """Counted as zero: no multiply-add, or a module/op the tool has no rule for."""
    return 0


# --- torchinfo 1.8: the op specs' own count (compiler/ops/base.py `Op.macs`) ---

def _torchinfo(layer: Layer, batch: int) -> int:
    return batch * layer.macs


# --- thop 0.1.1: thop/vision/basic_hooks.py and calc_func.py ---

def _thop_conv(layer: Layer, batch: int) -> int:
    # count_convNd: output elements × (in_c / groups) × kh × kw; the bias is not counted
    return batch * prod(layer.out_shape) * prod(layer.params["weight"][1:])


def _thop_batchnorm(layer: Layer, batch: int) -> int:
    # count_normalization: 2 per input element, doubled when affine (always, here)
    return batch * 4 * prod(layer.in_shapes[0])


def _thop_avgpool(layer: Layer, batch: int) -> int:
    # count_avgpool: one per output element, whatever the kernel
    return batch * prod(layer.out_shape)


def _thop_adaptive_avgpool(layer: Layer, batch: int) -> int:
    # count_adap_avgpool: (prod(input size / output size) + 1) per output element, in float64 and
    # truncated over the whole batch; a float ratio where the output does not divide the input
    (_, h, w), (_, oh, ow) = layer.in_shapes[0], layer.out_shape
    return int(((h / oh) * (w / ow) + 1) * (batch * prod(layer.out_shape)))


def _thop_linear(layer: Layer, batch: int) -> int:
    # count_linear: in_features per output element; the bias is not counted
    return batch * prod(layer.out_shape) * layer.in_shapes[0][0]


# --- fvcore 0.1.5, eval mode: fvcore/nn/jit_handles.py ---

def _fvcore_conv(layer: Layer, batch: int) -> int:
    # conv_flop_jit on aten::_convolution: weight elements × output positions; no bias
    return batch * prod(layer.params["weight"]) * prod(layer.out_shape[1:])


def _fvcore_batchnorm(layer: Layer, batch: int) -> int:
    # batchnorm_flop_jit, not training: 2 per input element when affine (always, here)
    return batch * 2 * prod(layer.in_shapes[0])


def _fvcore_adaptive_avgpool(layer: Layer, batch: int) -> int:
    # aten::adaptive_avg_pool2d: elementwise_flop_counter(1, 0), one per input element
    return batch * prod(layer.in_shapes[0])


def _fvcore_linear(layer: Layer, batch: int) -> int:
    # linear_flop_jit on aten::linear: input elements × out_features; no bias
    return batch * prod(layer.in_shapes[0]) * layer.out_shape[0]


# The ops neither tool prices: element-wise activations (thop knows ReLU, ReLU6 and LeakyReLU
# and prices them at zero; fvcore skips them), max pooling, dropout and stochastic depth (identity
# in eval), reshapes, local response norm (thop has no rule; fvcore sees only elementwise aten
# ops and an avg_pool3d), and the joins torch computes outside any module.
_UNPRICED = ("relu", "relu6", "hardswish", "hardsigmoid", "sigmoid", "silu", "gelu", "tanh", "leaky_relu",
             "maxpool", "adaptive_maxpool", "dropout", "stochastic_depth", "identity", "flatten", "lrn",
             "add", "concat", "multiply")

THOP: dict[str, Rule] = {
    **dict.fromkeys(_UNPRICED, _free),
    "conv": _thop_conv,
    "batchnorm": _thop_batchnorm,
    "avgpool": _thop_avgpool,
    "adaptive_avgpool": _thop_adaptive_avgpool,
    "global_avgpool": _thop_adaptive_avgpool,  # built as nn.AdaptiveAvgPool2d(1)
    "linear": _thop_linear,
}

FVCORE: dict[str, Rule] = {
    **dict.fromkeys(_UNPRICED, _free),
    "conv": _fvcore_conv,
    "batchnorm": _fvcore_batchnorm,
    "avgpool": _free,  # aten::avg_pool2d has no handle
    "adaptive_avgpool": _fvcore_adaptive_avgpool,
    "global_avgpool": _fvcore_adaptive_avgpool,
    "linear": _fvcore_linear,
}

CONVENTIONS: dict[str, dict[str, Rule]] = {
    "torchinfo": dict.fromkeys(OPS, _torchinfo),
    "thop": THOP,
    "fvcore": FVCORE,
}
DEFAULT = "torchinfo"


def layer_macs(layer: Layer, convention: str = DEFAULT, batch: int = 1) -> int:
    """The MACs of one layer for a batch, counted as `convention` counts them."""
    return CONVENTIONS[convention][layer.op](layer, batch)
