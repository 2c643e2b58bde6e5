"""What a run shows on the terminal while it trains: a progress bar per epoch and a line after it.

The bar (rank 0, on a terminal only) shows the epoch's running mean loss, not one step's: on a CPU
refreshed at every step, on a GPU about ten times an epoch and at its last step, since reading the
loss waits for the GPU.
"""

from __future__ import annotations

import math
import sys

import torch


def report_epoch(plan, row: dict) -> None:
    plan.log(f"epoch {row['epoch']}/{plan.cfg.epochs}  train loss {row['train_loss']:.4f} acc {row['train_accuracy']:.4f}"
             f"  val loss {row['val_loss']:.4f} acc {row['val_accuracy']:.4f}  lr {row['lr']:.3g}"
             f"  {row['seconds']:.1f} s  {row['images_per_s']:.0f} img/s")


class EpochProgress:
    """A rich progress bar on a terminal (rank 0 only), showing the epoch's running mean loss; nothing otherwise."""

    def __init__(self, plan, title: str, steps: int, bar=None):
        self.bar, self.steps = bar, steps
        # reading the loss waits for a GPU: there, about ten looks an epoch (and the last step); on a CPU, every step
        self.every = 1 if plan.device.type == "cpu" else max(1, min(10, steps // 10))
        if self.bar is None and plan.dist.main and sys.stderr.isatty():
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )

            self.bar = Progress(TextColumn(title), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                                TextColumn("{task.fields[loss]}"), transient=True)
        if self.bar is not None:
            self.task = self.bar.add_task(title, total=steps, loss="")

    def __enter__(self):
        if self.bar is not None:
            self.bar.start()
        return self

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.stop()

    def advance(self, step: int, loss_sum: torch.Tensor, count: int) -> None:
        """After step `step` (from 0): `loss_sum` over the `count` images of the epoch so far."""
        if self.bar is None:
            return
        fields = {}
        if (step + 1) % self.every == 0 or step + 1 == self.steps:
            value = float(loss_sum) / max(1, count)
            fields["loss"] = f"loss {value:.4f}" if math.isfinite(value) else ""
        self.bar.update(self.task, completed=step + 1, **fields)
