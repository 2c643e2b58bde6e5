"""What a run leaves in its folder besides checkpoints: metrics.csv, TensorBoard events,
curves.png, confusion.png and summary.json. Only rank 0 calls these."""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

from ..jsontext import dumps

COLUMNS = ["epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "seconds", "images_per_s"]


def write_metrics_csv(folder: Path, metrics: list[dict]) -> None:
    """The whole table, rewritten each epoch (a resumed run continues it without repeating rows)."""
    temp = folder / ".metrics.csv.tmp"
    with temp.open("w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(metrics)
    os.replace(temp, folder / "metrics.csv")


def write_json(path: Path, data: dict) -> None:
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_text(dumps(data) + "\n")
    os.replace(temp, path)


class Events:
    """TensorBoard scalars, when tensorboard is installed; a resumed run purges the steps it repeats."""

    def __init__(self, folder: Path, first_epoch: int):
        self.writer, self.note = None, None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            self.note = "no TensorBoard events: install tensorboard (pip install 'archc[train]')"
            return
        self.writer = SummaryWriter(str(folder / "tensorboard"), purge_step=first_epoch + 1 if first_epoch else None)

    def epoch(self, row: dict) -> None:
        if self.writer is None:
            return
        step = row["epoch"]
        for split in ("train", "val"):
            self.writer.add_scalar(f"loss/{split}", row[f"{split}_loss"], step)
            self.writer.add_scalar(f"accuracy/{split}", row[f"{split}_accuracy"], step)
        self.writer.add_scalar("lr", row["lr"], step)
        self.writer.add_scalar("images_per_s", row["images_per_s"], step)
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    return plt


def plot_curves(path: Path, metrics: list[dict], title: str) -> None:
    """Loss and accuracy per epoch, train and val."""
    plt = _pyplot()
    epochs = [row["epoch"] for row in metrics]
    figure, (loss, accuracy) = plt.subplots(1, 2, figsize=(10, 4))
    for split, style in (("train", "-o"), ("val", "-s")):
        loss.plot(epochs, [row[f"{split}_loss"] for row in metrics], style, label=split, markersize=3)
        accuracy.plot(epochs, [row[f"{split}_accuracy"] for row in metrics], style, label=split, markersize=3)
    loss.set(xlabel="epoch", ylabel="loss", title="loss")
    accuracy.set(xlabel="epoch", ylabel="accuracy", title="accuracy", ylim=(0, 1.01))
    for axes in (loss, accuracy):
        axes.grid(alpha=0.3)
        axes.legend()
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def plot_confusion(path: Path, matrix: list[list[int]], classes: list[str], title: str) -> None:
    """Rows: true class; columns: predicted class. Counts are written in the cells of small matrices."""
    plt = _pyplot()
    count = len(classes)
    side = min(16, max(4, 0.45 * count + 2))
    figure, axes = plt.subplots(figsize=(side, side))
    axes.imshow(matrix, cmap="Blues")
    if count <= 40:
        axes.set_xticks(range(count), classes, rotation=90 if count > 10 else 0)
        axes.set_yticks(range(count), classes)
    if count <= 20:
        peak = max(max(row) for row in matrix) or 1
        for i, row in enumerate(matrix):
            for j, value in enumerate(row):
                axes.text(j, i, str(value), ha="center", va="center", fontsize=8,
                          color="white" if value > peak / 2 else "black")
    axes.set(xlabel="predicted", ylabel="true", title=title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def mean_and_std(values: list[float]) -> tuple[float, float]:
    """The mean and the population standard deviation (numpy's default, ddof=0)."""
    mean = sum(values) / len(values)
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))


def fold_table(folds: list[dict], title: str) -> str:
    """Seed 000's closing table: a line per fold, then mean ± std, in percent."""
    lines = [title]
    for fold in folds:
        lines.append(f"  fold {fold['fold']}: {100 * fold['val_accuracy']:.3f} %")
    mean, std = mean_and_std([f["val_accuracy"] for f in folds])
    lines.append(f"  mean ± std: {100 * mean:.3f} ± {100 * std:.3f} %")
    return "\n".join(lines)
