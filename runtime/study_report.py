"""A study's comparison, written five ways: a rich table on the terminal, study.md, study.csv,
study.json and study.png (mean accuracy with ± one standard deviation against mult-adds).

The rows are runtime/study.py's: a network's figures from `archc check` (params, mult-adds per
image, the largest batch for the memory budget) and from its run (training seconds per epoch,
training images per second, the best validation accuracy of every fold, their mean and population
standard deviation, as seed 000 reports them).

    >>> row = {"label": "nin_v2", "input": [3, 96, 96], "params": 1991003, "macs": 148246067, "max_batch": None,
    ...        "seconds_per_epoch": 1.5, "images_per_s": 200.0, "fold_accuracies": [0.5, 0.6],
    ...        "mean_accuracy": 0.55, "std_accuracy": 0.05, "input_note": None}
    >>> cells(row, budget=False)
    ['nin_v2', '3×96×96', '1,991,003', '0.148', '1.5', '200', '50.0 60.0', '55.0 ± 5.0']
"""

from __future__ import annotations

import csv
from pathlib import Path

from .outputs import write_json


def headings(budget: str | None) -> list[str]:
    return (["network", "input", "params", "mult-adds (G)"] + ([f"largest batch ({budget})"] if budget else [])
            + ["s / epoch", "images / s", "accuracy per fold (%)", "mean ± std (%)"])


def cells(row: dict, budget: bool) -> list[str]:
    """A row's cells as printed: accuracies in percent with one decimal, mult-adds in G with three."""
    return ([row["label"], "×".join(map(str, row["input"])), f"{row['params']:,}", f"{row['macs'] / 1e9:.3f}"]
            + ([f"{row['max_batch']:,}" if row["max_batch"] is not None else "-"] if budget else [])
            + [f"{row['seconds_per_epoch']:.1f}", f"{row['images_per_s']:.0f}",
               " ".join(f"{100 * a:.1f}" for a in row["fold_accuracies"]),
               f"{100 * row['mean_accuracy']:.1f} ± {100 * row['std_accuracy']:.1f}"])


def title(study: dict) -> str:
    recipe = study["recipe"]
    split = f"{study['kfold']}-fold cross-validation" if study["kfold"] else f"a {recipe['val']:.0%} hold-out split"
    return (f"{len(study['networks'])} networks on {study['data']}, {split}, {recipe['epochs']} "
            f"epoch{'s' if recipe['epochs'] != 1 else ''} each, one recipe ({recipe['optimizer']}, lr {recipe['lr']:g})")


def notes(study: dict) -> list[str]:
    return [f"{row['label']} trained at {'×'.join(map(str, row['input']))}: {row['input_note']}"
            for row in study["networks"] if row["input_note"]]


def write_outputs(folder: Path, study: dict, log) -> None:
    """study.json, study.csv, study.md and study.png in `folder`, and the table on the terminal."""
    budget = study["memory"]
    write_json(folder / "study.json", study)
    _write_csv(folder / "study.csv", study)
    _write_markdown(folder / "study.md", study)
    _plot(folder / "study.png", study)
    _print_table(study, log)
    log(f"wrote {folder / 'study.md'}, study.csv, study.json and study.png" + (f" (memory budget {budget})"
                                                                                  if budget else ""))


def _write_csv(path: Path, study: dict) -> None:
    folds = max(len(row["fold_accuracies"]) for row in study["networks"])
    columns = ["network", "spec", "input", "params", "macs", "max_batch", "seconds_per_epoch", "images_per_s",
               *[f"fold_{k + 1}_accuracy" for k in range(folds)], "mean_accuracy", "std_accuracy", "run"]
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(columns)
        for row in study["networks"]:
            accuracies = row["fold_accuracies"] + [""] * (folds - len(row["fold_accuracies"]))
            writer.writerow([row["label"], row["spec"], "x".join(map(str, row["input"])), row["params"], row["macs"],
                             "" if row["max_batch"] is None else row["max_batch"], row["seconds_per_epoch"],
                             row["images_per_s"], *accuracies, row["mean_accuracy"], row["std_accuracy"], row["run"]])


def _write_markdown(path: Path, study: dict) -> None:
    budget = study["memory"]
    lines = [f"# {title(study)}", "", "| " + " | ".join(headings(budget)) + " |",
             "|" + "|".join("---" if i < 2 else "---:" for i in range(len(headings(budget)))) + "|"]
    lines += ["| " + " | ".join(cells(row, bool(budget))) + " |" for row in study["networks"]]
    lines += ["", "Params and mult-adds (per image) are `archc check`'s at each network's input; accuracy is the best "
              "validation accuracy of each fold's run; time per epoch is training alone."]
    lines += [f"- {note}" for note in notes(study)]
    lines += ["", "![accuracy against mult-adds](study.png)", ""]
    path.write_text("\n".join(lines))


def _print_table(study: dict, log) -> None:
    from rich.console import Console
    from rich.table import Table

    budget = study["memory"]
    table = Table(title=title(study), title_justify="left")
    for heading in headings(budget):
        table.add_column(heading, justify="left" if heading in ("network", "input") else "right")
    for row in study["networks"]:
        table.add_row(*cells(row, bool(budget)))
    console = Console(highlight=False, width=160)
    with console.capture() as captured:
        console.print(table)
    log(captured.get().rstrip())
    for note in notes(study):
        log(note)


def _plot(path: Path, study: dict) -> None:
    from .outputs import _pyplot

    plt = _pyplot()
    rows = study["networks"]
    figure, axes = plt.subplots(figsize=(7, 4.5))
    for row in rows:  # a legend rather than labels by the points: networks of equal cost and accuracy overlap
        axes.errorbar([row["macs"] / 1e9], [100 * row["mean_accuracy"]], yerr=[100 * row["std_accuracy"]], fmt="o",
                      capsize=4, label=f"{row['label']}: {100 * row['mean_accuracy']:.1f} ± "
                                       f"{100 * row['std_accuracy']:.1f} %")
    axes.legend(fontsize=8)
    spread = max(r["macs"] for r in rows) / max(1, min(r["macs"] for r in rows))
    if spread > 20:
        axes.set_xscale("log")
    axes.set(xlabel="mult-adds per image (G)", ylabel="validation accuracy (%): mean ± std over folds",
             title=title(study))
    axes.title.set_fontsize(9)
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
