"""Optimizers and learning-rate schedules.

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
