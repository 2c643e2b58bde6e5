"""Use a trained checkpoint: `evaluate` a labelled image-folder tree (accuracy, per-class
accuracy, confusion matrix) and `predict` the top classes of images and folders of images.

Both read the checkpoint with runtime/checkpoint.py (its metadata validated) and prepare every
image as validation does (runtime/data.py's load_view: short side to eval_resize, centre crop,
normalise), so `archc eval` on the validation folder gives the run's validation accuracy; `archc
cam` draws on the same view.

    >>> from archc.runtime.infer import evaluate, predict
    >>> evaluate("runs/resnet18/best.pt", "data")["accuracy"]            # doctest: +SKIP
    0.9861
    >>> predict("runs/resnet18/best.pt", ["cat.jpg"], top=1)[0]["top"]    # doctest: +SKIP
    [{'class': 'cat', 'index': 0, 'probability': 0.97}]
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

import torch

from .checkpoint import CheckpointError, build_from_checkpoint, load_checkpoint
from .data import DataError, ImageError, folder_pool, load_view
from .files import is_image_name, list_files


class InferError(Exception):
    """A checkpoint, data folder or option that cannot be used; the message says which and why."""


def device_for() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def open_checkpoint(path: str | Path) -> tuple[torch.nn.Module, dict[str, Any]]:
    """(model in eval mode on the best device, checkpoint dict); InferError for a bad checkpoint."""
    try:
        model, ckpt = build_from_checkpoint(load_checkpoint(path))
    except CheckpointError as error:
        message = str(error)
        raise InferError(message if message.startswith(str(path)) else f"{path}: {message}") from None
    return model.to(device_for()), ckpt


class _Views(torch.utils.data.Dataset):
    """Image files as the network's inputs; a file that does not decode gives its error instead."""

    def __init__(self, files: list[Path], ckpt: dict[str, Any]):
        self.files, self.ckpt = files, ckpt

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, str]:
        try:
            return load_view(self.files[i], self.ckpt).input, ""
        except ImageError as error:
            return torch.zeros(self.ckpt["input"]), error.reason


def _loader(files: list[Path], ckpt: dict[str, Any], batch: int):
    workers = 0 if len(files) <= batch else min(4, os.cpu_count() or 1)  # small sets: no worker start-up
    return torch.utils.data.DataLoader(_Views(files, ckpt), batch_size=batch, num_workers=workers)


def logits_of(model: torch.nn.Module, batches, classes: int | None = None) -> torch.Tensor:
    """The model's float32 logits for every batch of inputs, concatenated, on the CPU.

    With `classes`, InferError unless the network gives one logit per class.
    """
    out = [_forward(model, x, classes) for x in batches]
    return torch.cat(out) if out else torch.zeros(0)


def _forward(model: torch.nn.Module, x: torch.Tensor, classes: int | None) -> torch.Tensor:
    with torch.no_grad():
        logits = model(x.to(next(model.parameters()).device)).float().cpu()
    if classes is not None and tuple(logits.shape[1:]) != (classes,):
        raise InferError(f"the network gives {'×'.join(map(str, logits.shape[1:]))} values per image, "
                         f"but the checkpoint names {classes} classes")
    return logits


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
    predicted = logits_of(model, (x for x, _ in _loader(pool.files, ckpt, batch)), len(classes)).argmax(dim=1)
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


def images_in(paths: list[str | Path]) -> tuple[list[Path], list[dict[str, str]]]:
    """(the image files to predict, entries skipped): a file as given; a folder's image files, found as
    training finds them (runtime/files.py), in path order. Skipped: {"image", "skipped": why}."""
    files, skipped = [], []
    for path in map(Path, paths):
        if not path.is_dir():
            files.append(path)
            continue
        listing = list_files(path)
        files += [p for p in listing.files if is_image_name(p)]
        skipped += [{"image": str(p), "skipped": "not an image file"} for p in listing.files if not is_image_name(p)]
        skipped += [{"image": str(p), "skipped": why} for p, why in listing.skipped]
    return files, skipped


def predict(checkpoint: str | Path, images: list[str | Path], top: int = 5, batch: int = 64) -> list[dict[str, Any]]:
    """Per image: {"image", "top": [{"class", "index", "probability"}, ...]} with the `top` most probable
    classes (softmax of the logits), or {"image", "error"} for a file that is not a readable image.

    A folder stands for the image files below it; what else it holds comes back as {"image", "skipped"}.
    """
    if top < 1:
        raise InferError(f"--top must be at least 1, got {top}")
    if batch < 1:
        raise InferError(f"--batch must be at least 1, got {batch}")
    model, ckpt = open_checkpoint(checkpoint)
    classes = list(ckpt["classes"])
    files, skipped = images_in(images)
    results = []
    for start, (x, errors) in zip(range(0, len(files), batch), _loader(files, ckpt, batch)):
        probabilities = torch.softmax(_forward(model, x, len(classes)), dim=1)
        for path, p, error in zip(files[start:start + batch], probabilities, errors):
            results.append({"image": str(path), "error": error} if error else _top(path, p, classes, top))
    return results + skipped


def _top(path: Path, probabilities: torch.Tensor, classes: list[str], top: int) -> dict[str, Any]:
    values, indices = probabilities.topk(min(top, len(classes)))
    return {"image": str(path), "top": [{"class": classes[i], "index": i, "probability": round(q, 6)}
                                        for q, i in zip(values.tolist(), indices.tolist())]}


def write_csv(results: list[dict[str, Any]], output) -> None:
    """The predictions as CSV: image, class_1, probability_1, ..., class_k, probability_k, error (or why skipped).

    A text cell that a spreadsheet would read as a formula (=, +, -, @ first) is written with a leading
    apostrophe: image and class names come from file and folder names.
    """
    top = max((len(result.get("top", [])) for result in results), default=0)
    writer = csv.writer(output)
    writer.writerow(["image"] + [f"{name}_{k}" for k in range(1, top + 1) for name in ("class", "probability")]
                    + ["error"])
    for result in results:
        guesses = [cell for guess in result.get("top", [])
                   for cell in (_cell(guess["class"]), f"{guess['probability']:.6f}")]
        guesses += [""] * (2 * top - len(guesses))
        writer.writerow([_cell(result["image"]), *guesses, _cell(result.get("error") or result.get("skipped", ""))])


def _cell(text: str) -> str:
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
