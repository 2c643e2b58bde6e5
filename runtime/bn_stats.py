"""Batch-norm running statistics recomputed from the training images before a validation whose
moving averages have not caught up yet.

Batch norm normalises with the batch's statistics in training and with running averages in
evaluation; each step moves the averages by `momentum` towards the batch's. torchvision's
MobileNetV3 uses momentum 0.01 (the paper's TensorFlow decay 0.99), so after t steps the
averages still hold 0.99^t of their starting values (mean 0, variance 1): on the digits
(11 steps an epoch at batch 128) MobileNetV3-Small reached 97.7% training accuracy in 8
epochs and validated at chance, 9.7%. A short run, a small data set or a large batch all do
this. So, by default (`recompute_bn = "auto"`), before each validation in which some batch-norm
layer's averages still hold more than 1% of their starting values, every batch-norm layer's
statistics are recomputed as plain averages over up to RECOMPUTE_IMAGES training images
("precise BN", Wu & Johnson 2021, "Rethinking 'Batch' in BatchNorm", §3), seen as evaluation
sees them (the centre view, no augmentation; the rest of the network in eval mode, so dropout
and stochastic depth are off). Training then goes on from those values with the layer's own
momentum. `"always"` does it before every validation; `"never"` keeps the moving averages.
Under DDP each process averages its shard of those images and the processes' figures are
averaged, so every process validates, and rank 0 saves, the same statistics. Frozen batch norms
(`--freeze`, runtime/finetune.py) are left out: their statistics are the source's, kept as they are.
"""

from __future__ import annotations

import torch

from .distributed import Dist, all_sum

RECOMPUTE_IMAGES = 8192  # at most this many training images, spread evenly over the split
LEFT_OVER = 0.01  # recompute while some layer's averages still hold more than this of their start


def batch_norms(model: torch.nn.Module, skip=()) -> list[torch.nn.modules.batchnorm._BatchNorm]:
    """The batch norms that keep running statistics, less those in `skip` (frozen ones)."""
    skipped = {id(m) for m in skip}
    return [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
            and m.track_running_stats and id(m) not in skipped]


def needs_recompute(model: torch.nn.Module, steps_done: int, mode: str, skip=()) -> bool:
    """Whether to recompute before this validation: "always", "never", or "auto" while (1 - momentum)^steps
    of the slowest layer exceeds LEFT_OVER."""
    layers = batch_norms(model, skip)
    if mode == "never" or not layers:
        return False
    if mode == "always":
        return True
    momenta = [m.momentum for m in layers if m.momentum is not None]  # None: a plain average already
    return bool(momenta) and (1.0 - min(momenta)) ** steps_done > LEFT_OVER


@torch.no_grad()
def recompute(model: torch.nn.Module, batches, dist: Dist, autocast, skip=()) -> int:
    """Set every batch-norm layer's running statistics (but those in `skip`) to the average over `batches`
    (images, labels); returns how many images this process saw."""
    layers = batch_norms(model, skip)
    was_training = model.training
    momenta = [m.momentum for m in layers]
    model.eval()
    for m in layers:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over the batches below
        m.train()
    seen = 0
    for images, _labels in batches:
        with autocast():
            model(images)
        seen += len(images)
    for m, momentum in zip(layers, momenta):
        m.momentum = momentum
        if dist.world > 1:  # the mean of the processes' averages
            for buffer in (m.running_mean, m.running_var):
                buffer.copy_(all_sum(buffer.clone(), dist) / dist.world)
    model.train(was_training)
    return seen


def spread(positions: torch.Tensor, limit: int = RECOMPUTE_IMAGES) -> torch.Tensor:
    """At most `limit` of `positions`, evenly spaced (a split sorted by class keeps every class)."""
    if len(positions) <= limit:
        return positions
    return positions[torch.linspace(0, len(positions) - 1, limit).round().long()]
