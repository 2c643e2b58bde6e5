"""Use a trained checkpoint: `evaluate` a labelled image-folder tree (accuracy, per-class
accuracy, confusion matrix) and `predict` the top classes of single images.

Both read the checkpoint with runtime/checkpoint.py and prepare every image exactly as
validation does (runtime/data.py's eval transform: short side to eval_resize, centre crop,
normalise), so `archc eval` on the validation folder gives the run's validation accuracy.

    >>> from archc.runtime.infer import evaluate, predict
    >>> evaluate("runs/resnet18/best.pt", "data")["accuracy"]            # doctest: +SKIP
    0.9861
    >>> predict("runs/resnet18/best.pt", ["cat.jpg"], top=1)[0]["top"]    # doctest: +SKIP
    [{'class': 'cat', 'index': 0, 'probability': 0.97}]
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from .checkpoint import CheckpointError, build_from_checkpoint, load_checkpoint
from .data import DataError, eval_transform, folder_pool, load_image, read_pil


class InferError(Exception):
    """A checkpoint, data folder or option that cannot be used; the message says which and why."""


def device_for() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def open_checkpoint(path: str | Path) -> tuple[torch.nn.Module, dict[str, Any]]:
    """(model in eval mode on the best device, checkpoint dict); InferError for a bad checkpoint."""
    try:
        model, ckpt = build_from_checkpoint(load_checkpoint(path))
    except CheckpointError as error:
        raise InferError(str(error)) from None
    return model.to(device_for()), ckpt


class _Files(torch.utils.data.Dataset):
    def __init__(self, files: list[Path], ckpt: dict[str, Any]):
        self.files, self.channels, self.transform = files, ckpt["input"][0], eval_transform(ckpt)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.transform(read_pil(self.files[i], self.channels))


def logits_of(model: torch.nn.Module, batches) -> torch.Tensor:
    """The model's float32 logits for every batch, concatenated, on the CPU."""
    device = next(model.parameters()).device
    out = []
    with torch.no_grad():
        for x in batches:
            out.append(model(x.to(device)).float().cpu())
    return torch.cat(out) if out else torch.zeros(0)


def evaluate(checkpoint: str | Path, data: str | Path, batch: int = 64) -> dict[str, Any]:
    """Accuracy, per-class accuracy and the confusion matrix (rows: true class, columns: predicted)
    of the checkpoint on the image-folder tree `data` (its `val/` when it has one).

    The tree's class folders are matched to the checkpoint's classes by name; a
    folder the network does not know is an error. Unreadable files are skipped
    and counted.
    """
    if batch < 1:
        raise InferError(f"--batch must be at least 1, got {batch}")
    root = Path(data)
    if (root / "val").is_dir():
        root = root / "val"
    model, ckpt = open_checkpoint(checkpoint)
    classes = list(ckpt["classes"])
    try:
        pool = folder_pool(root, channels=ckpt["input"][0])
    except DataError as error:
        raise InferError(str(error)) from None
    unknown = [name for name in pool.classes if name not in classes]
    if unknown:
        raise InferError(f"{root} has class folders the network was not trained on: {', '.join(unknown)} "
                         f"(its classes: {', '.join(classes)})")
    truth = torch.tensor([classes.index(pool.classes[label]) for label in pool.labels.tolist()], dtype=torch.int64)
    workers = 0 if len(pool) <= batch else min(4, os.cpu_count() or 1)  # small sets: no worker start-up
    loader = torch.utils.data.DataLoader(_Files(pool.files, ckpt), batch_size=batch, num_workers=workers)
    predicted = logits_of(model, loader).argmax(dim=1)
    confusion = torch.zeros(len(classes), len(classes), dtype=torch.int64)
    confusion.index_put_((truth, predicted), torch.ones_like(truth), accumulate=True)
    per_class = []
    for i, name in enumerate(classes):
        images, correct = int(confusion[i].sum()), int(confusion[i, i])
        per_class.append({"class": name, "images": images, "correct": correct,
                          "accuracy": correct / images if images else None})
    correct = int(confusion.diag().sum())
    return {"checkpoint": str(checkpoint), "network": ckpt.get("network"), "data": str(root), "images": len(pool),
            "correct": correct, "accuracy": correct / len(pool), "skipped": len(pool.skipped),
            "skipped_files": [f"{name}: {why}" for name, why in pool.skipped], "classes": classes,
            "per_class": per_class, "confusion": confusion.tolist()}


def format_evaluation(result: dict[str, Any]) -> str:
    """The evaluation as text: accuracy, a per-class table, the confusion matrix."""
    lines = [f"{result['network']} on {result['data']}: accuracy {result['accuracy']:.2%} "
             f"({result['correct']:,} of {result['images']:,} images)"
             + (f"; {result['skipped']:,} unreadable files skipped" if result["skipped"] else ""), ""]
    width = max(len("class"), *(len(row["class"]) for row in result["per_class"]))
    lines.append(f"{'#':>3}  {'class':<{width}}  {'images':>7}  {'accuracy':>8}")
    for i, row in enumerate(result["per_class"]):
        accuracy = "–" if row["accuracy"] is None else f"{row['accuracy']:.2%}"
        lines.append(f"{i:>3}  {row['class']:<{width}}  {row['images']:>7,}  {accuracy:>8}")
    cell = max(4, len(str(max(max(r) for r in result["confusion"]))) + 1)
    lines += ["", "confusion matrix: rows are the true class (#), columns the predicted one",
              "     " + "".join(f"{j:>{cell}}" for j in range(len(result["classes"])))]
    lines += [f"{i:>3}  " + "".join(f"{n:>{cell}}" for n in row) for i, row in enumerate(result["confusion"])]
    return "\n".join(lines)


def predict(checkpoint: str | Path, images: list[str | Path], top: int = 5) -> list[dict[str, Any]]:
    """Per image: {"image", "top": [{"class", "index", "probability"}, ...]} with the `top` most probable
    classes (softmax of the logits), or {"image", "error"} for a file that is not a readable image."""
    if top < 1:
        raise InferError(f"--top must be at least 1, got {top}")
    model, ckpt = open_checkpoint(checkpoint)
    classes = list(ckpt["classes"])
    results = []
    for path in images:
        if not Path(path).is_file():
            results.append({"image": str(path), "error": "no such file"})
            continue
        try:
            x = load_image(path, ckpt)
        except DataError as error:
            results.append({"image": str(path), "error": str(error)})
            continue
        probabilities = torch.softmax(logits_of(model, [x[None]])[0], dim=0)
        values, indices = probabilities.topk(min(top, len(classes)))
        results.append({"image": str(path), "top": [{"class": classes[i], "index": i, "probability": round(p, 6)}
                                                    for p, i in zip(values.tolist(), indices.tolist())]})
    return results
