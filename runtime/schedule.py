"""Optimizers, learning-rate schedules, and how a run is cut into steps (the batch, the warmup).

One small `Schedule` gives the learning rate of every step: a linear warmup
(from lr/10 over `warmup` epochs) times the shape of the schedule: cosine to
zero, step (÷10 at half and at three quarters of the run, as He et al. train
ResNets), plateau (÷10 when the validation loss has not improved for 2 epochs),
one-cycle (torchvision's OneCycleLR shape, its rise taking the warmup) or none.
Its state is a plain dict, saved in checkpoints for an exact resume.

    >>> s = Schedule("cosine", base_lr=0.1, epochs=10, steps_per_epoch=5, warmup=1)
    >>> round(s.lr(0), 3), round(s.lr(5), 3), s.lr(50)
    (0.01, 0.1, 0.0)
"""

from __future__ import annotations

import math

import torch

PLATEAU_PATIENCE, PLATEAU_FACTOR = 2, 0.1
WARMUP_START = 0.1  # the warmup starts at this fraction of the learning rate
DEFAULT_BATCH = 128
FEW_STEPS = 10  # an epoch with fewer optimizer steps than this is worth a warning
SMALLEST_DEFAULT_BATCH = 8  # the default batch shrinks for small data sets, but not below this
WARMUP_EPOCHS, WARMUP_SHARE = 1.0, 0.2  # default warmup: one epoch, or a fifth of a run shorter than 5 epochs


def choose_batch(asked: int | None, images: int, processes: int) -> tuple[int, str | None]:
    """(the global batch, a warning or None) for a training split of `images` over `processes`.

    Unset, it is DEFAULT_BATCH, or where that would leave fewer than FEW_STEPS steps an epoch the
    largest power of two that gives at least that many (not below SMALLEST_DEFAULT_BATCH): a small
    folder is not trained with one step an epoch. Each process takes an equal share of at least 2
    images (batch norm normalises over the batch): ConfigError for a smaller --batch, ValueError when
    the split itself is too small for that.

        >>> choose_batch(None, 1437, 1)
        (128, None)
        >>> choose_batch(None, 300, 1)
        (16, None)
        >>> choose_batch(128, 300, 1)[1]
        'an epoch has 2 steps (300 training images at batch 128): too few to learn much; leave --batch unset for 16'
    """
    least = 2 * processes
    if images < least:
        raise ValueError(f"the training split has {images} image{'s' if images != 1 else ''}: a batch needs at "
                         f"least 2 per process ({least} over {processes})")
    if asked is not None and asked < least:
        from .config import ConfigError

        raise ConfigError(f"--batch {asked}: a batch needs at least 2 images per process (batch norm normalises "
                         f"over the batch), so at least {least} over {processes} process{'es' if processes > 1 else ''}")
    default = DEFAULT_BATCH
    while default > SMALLEST_DEFAULT_BATCH and images // default < FEW_STEPS:
        default //= 2
    batch = asked if asked is not None else default
    batch = max(least, min(batch, images) // processes * processes)
    steps = images // batch
    if steps >= FEW_STEPS:
        return batch, None
    better = "" if asked is None or default >= batch else f"; leave --batch unset for {default}"
    return batch, (f"an epoch has {steps} step{'s' if steps != 1 else ''} ({images} training images at batch "
                   f"{batch}): too few to learn much{better}")


def choose_warmup(asked: float | None, epochs: int) -> float:
    """Epochs of warmup: as asked, else one epoch, or a fifth of a run shorter than 5 epochs (a 1-epoch run
    warmed up for its whole length would never reach, let alone decay from, its learning rate).

        >>> choose_warmup(None, 8), choose_warmup(None, 1), choose_warmup(0.5, 1)
        (1.0, 0.2, 0.5)
    """
    if asked is not None:
        return asked
    return min(WARMUP_EPOCHS, WARMUP_SHARE * epochs)


def make_optimizer(name: str, params, lr: float, momentum: float, nesterov: bool, weight_decay: float,
                   fused: bool) -> torch.optim.Optimizer:
    """SGD (momentum, Nesterov), Adam, AdamW or RMSprop; fused kernels where asked (CUDA)."""
    extra = {"fused": True} if fused else {}
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, nesterov=nesterov and momentum > 0,
                               weight_decay=weight_decay, **extra)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, **extra)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, **extra)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}")


def decay_and_no_decay(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Parameter groups: weight decay on conv and linear weights, none on biases and norm scales (1-d tensors)."""
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim > 1]
    rest = [p for p in model.parameters() if p.requires_grad and p.ndim <= 1]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]


class Schedule:
    """The learning rate at each optimizer step, and the plateau rule's memory."""

    def __init__(self, kind: str, base_lr: float, epochs: int, steps_per_epoch: int, warmup: float):
        self.kind, self.base_lr = kind, base_lr
        self.total = max(1, epochs * steps_per_epoch)
        self.warmup_steps = min(self.total - 1, round(warmup * steps_per_epoch)) if warmup > 0 else 0
        self.steps_per_epoch = steps_per_epoch
        self.epochs = epochs
        self.plateau_scale, self.best_loss, self.bad_epochs = 1.0, math.inf, 0

    def lr(self, step: int) -> float:
        if self.kind == "onecycle":
            return self.base_lr * _one_cycle(step, self.total, self.warmup_steps or round(0.3 * self.total))
        warm = 1.0
        if step < self.warmup_steps:
            warm = WARMUP_START + (1 - WARMUP_START) * step / self.warmup_steps
        return self.base_lr * warm * self._shape(step)

    def _shape(self, step: int) -> float:
        if self.kind == "cosine":
            span = max(1, self.total - self.warmup_steps)
            t = min(1.0, max(0, step - self.warmup_steps) / span)
            return 0.5 * (1 + math.cos(math.pi * t))
        if self.kind == "step":
            epoch = step // self.steps_per_epoch
            return 0.1 ** sum(epoch >= m for m in (self.epochs // 2, (3 * self.epochs) // 4) if m > 0)
        if self.kind == "plateau":
            return self.plateau_scale
        return 1.0

    def end_epoch(self, val_loss: float) -> None:
        """The plateau rule: ÷10 after PLATEAU_PATIENCE epochs without a better validation loss."""
        if self.kind != "plateau":
            return
        if val_loss < self.best_loss * (1 - 1e-4):
            self.best_loss, self.bad_epochs = val_loss, 0
        else:
            self.bad_epochs += 1
            if self.bad_epochs > PLATEAU_PATIENCE:
                self.plateau_scale *= PLATEAU_FACTOR
                self.bad_epochs = 0

    def state_dict(self) -> dict:
        return {"kind": self.kind, "plateau_scale": self.plateau_scale, "best_loss": self.best_loss,
                "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict) -> None:
        self.plateau_scale = float(state["plateau_scale"])
        self.best_loss = float(state["best_loss"])
        self.bad_epochs = int(state["bad_epochs"])


def _one_cycle(step: int, total: int, rise: int) -> float:
    """torch's OneCycleLR (cosine annealing): from 1/25 up to 1 over `rise` steps, then down to 1/(25·10⁴)."""
    start, end = 1 / 25, 1 / 25 / 1e4
    if step < rise:
        return start + (1 - start) * (1 - math.cos(math.pi * step / max(1, rise))) / 2
    t = min(1.0, (step - rise) / max(1, total - 1 - rise))
    return end + (1 - end) * (1 + math.cos(math.pi * t)) / 2
