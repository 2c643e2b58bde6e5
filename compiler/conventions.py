"""MAC conventions: how each counting tool prices each op, so that `archc check
--convention thop` prints the figure a paper or a report got from thop.

Tools disagree because they count different things (seed 001's "FLOPs
0.122993904 G" is twice thop's 61,496,952 MACs, where torchinfo says
55,545,474 on the same network). Each op states its rule for each
convention in its own spec (`Op.thop`, `Op.fvcore` in compiler/ops/), reading
only the graph's layer (its shapes, its parameter shapes, its attrs); the
registry refuses an op that leaves one out, so a new op is priced in each. A rule returns the
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

- ptflops: `ptflops.get_model_complexity_info` 0.7.5 with its default
  pytorch backend (module hooks, and patches of torch.nn.functional calls,
  eval mode, batch 1). It counts batch norm (2 per element), activations and
  pools (per element) and the conv and linear biases; a module whose
  forward calls a patched function is counted twice (nn.ReLU, nn.GELU and
  every pool), as ptflops does.
- calflops: `calflops.calculate_flops` 0.3.2 (patches of torch.nn.functional
  and tensor methods, eval mode): `calflops` is its MACs (conv and linear
  only), `calflops-flops` its FLOPs (2 per MAC, the conv bias, batch norm,
  pools and the activations it patches, not the linear bias).

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

from .graph import Layer
from .ops import OPS


def _torchinfo(layer: Layer, batch: int) -> int:
    # torchinfo 1.8: the op specs' own count (compiler/ops/base.py `Op.macs`)
    return batch * layer.macs


CONVENTIONS = {
    "torchinfo": dict.fromkeys(OPS, _torchinfo),
    "thop": {name: op.thop for name, op in OPS.items()},
    "fvcore": {name: op.fvcore for name, op in OPS.items()},
    "ptflops": {name: op.ptflops for name, op in OPS.items()},
    "calflops": {name: op.calflops for name, op in OPS.items()},
    "calflops-flops": {name: op.calflops_flops for name, op in OPS.items()},
}
# What each convention's figure is: multiply-adds, or floating-point operations
UNITS = {"torchinfo": "MACs", "thop": "MACs", "fvcore": "MACs", "ptflops": "MACs", "calflops": "MACs",
         "calflops-flops": "FLOPs"}
DEFAULT = "torchinfo"


def layer_macs(layer: Layer, convention: str = DEFAULT, batch: int = 1) -> int:
    """The MACs of one layer for a batch, counted as `convention` counts them."""
    return CONVENTIONS[convention][layer.op](layer, batch)
