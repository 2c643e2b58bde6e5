"""Published cost figures of the zoo's networks, for `archc check --convention all` and `--explain`: the
papers' (as the zoo pages in docs/zoo/ cite them) and torchvision's `_ops` (its weights' metadata: GMACs,
labelled GFLOPS; tests/test_conventions_all.py checks them against the installed torchvision). Keyed by the
network's name and variant; every figure is for batch 1 at the network's own input and 1000 classes.
"""

from __future__ import annotations

from typing import NamedTuple


class Figure(NamedTuple):
    value: float  # operations
    source: str


_RESNET = {"resnet18": 1.8e9, "resnet34": 3.6e9, "resnet50": 3.8e9, "resnet101": 7.6e9, "resnet152": 11.3e9}
_EFFICIENTNET = dict(zip([f"b{i}" for i in range(8)], [0.39e9, 0.70e9, 1.0e9, 1.8e9, 4.2e9, 9.9e9, 19e9, 37e9]))

PAPERS: dict[tuple[str, str | None], Figure] = {
    **{("resnet", v): Figure(f, "He et al. 2016, Table 1 (FLOPs: multiply-adds)") for v, f in _RESNET.items()},
    **{("efficientnet", v): Figure(f, "Tan & Le 2019, Table 2 (FLOPS: multiply-adds)")
       for v, f in _EFFICIENTNET.items()},
    ("mobilenet_v3_large", None): Figure(219e6, "Howard et al. 2019, Table 3 (MAdds)"),
    ("mobilenet_v3_small", None): Figure(56e6, "Howard et al. 2019, Table 3 (MAdds)"),
    ("googlenet", None): Figure(1.5e9, "Szegedy et al. 2015, §5 (multiply-adds)"),
    ("inception_v3", None): Figure(5e9, "Szegedy et al. 2016, abstract (multiply-adds)"),
}

# torchvision 0.29's `_ops` (GFLOPS in its tables; they are torchinfo's mult-adds, in G)
TORCHVISION_OPS: dict[tuple[str, str | None], float] = {
    ("resnet", "resnet18"): 1.814, ("resnet", "resnet34"): 3.664, ("resnet", "resnet50"): 4.089,
    ("resnet", "resnet101"): 7.801, ("resnet", "resnet152"): 11.514,
    ("mobilenet_v3_large", None): 0.217, ("mobilenet_v3_small", None): 0.057,
    ("googlenet", None): 1.498, ("inception_v3", None): 5.713,
    **{("efficientnet", f"b{i}"): ops for i, ops in
       enumerate([0.386, 0.687, 1.088, 1.827, 4.394, 10.266, 19.068, 37.746])},
}

# torchvision's builder for each, whose weights carry the figure
TORCHVISION_BUILDERS = {("resnet", v): v for v in _RESNET} | {
    ("efficientnet", f"b{i}"): f"efficientnet_b{i}" for i in range(8)} | {
    ("mobilenet_v3_large", None): "mobilenet_v3_large", ("mobilenet_v3_small", None): "mobilenet_v3_small",
    ("googlenet", None): "googlenet", ("inception_v3", None): "inception_v3"}
