"""`archc study`: seed 000's comparison in one command, its figures checked against `archc check` and each run's
summary.json; resumable after a kill; runs in parallel processes and as Ray tasks (on the CPU here)."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import pytest

torch = pytest.importorskip("torch")
Image = pytest.importorskip("PIL.Image")

import archc
from archc.cli import main
from conftest import ROOT, ZOO, run_archc
from test_train_folders import RGB_NET, image_tree

FACES = {"cloth_mask": (30, 60, 200), "face_no_mask": (200, 40, 30), "face_with_mask": (40, 180, 60),
         "surgical_mask": (200, 200, 40)}  # seed 000's four classes, one colour each


def faces(root, per_class=5):
    """A small synthetic stand-in for seed 000's photos: noisy JPEGs of mixed sizes, a folder per class."""
    g = torch.Generator().manual_seed(0)
    for c, (name, rgb) in enumerate(FACES.items()):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            noise = torch.randint(-40, 41, (40 + 5 * i, 48 + 3 * c, 3), generator=g)
            pixels = (torch.tensor(rgb) + noise).clamp(0, 255).to(torch.uint8).numpy()
            Image.fromarray(pixels).save(root / name / f"{i}.jpg")
    return root


@pytest.mark.slow
def test_the_seed_000_study_writes_the_comparison_that_check_and_the_runs_give(tmp_path):
    """Seed 000's workflow end to end: its photos resized once and split, then K-fold training of NiN v1, NiN v2
    and Inception v3 on the training part, compared in one table."""
    photos, out = faces(tmp_path / "faces", per_class=6), tmp_path / "study"
    resized = run_archc("data", "resize", str(photos), "--max-side", "48", "-o", str(tmp_path / "small"))
    assert resized.returncode == 0, resized.stderr
    assert resized.stdout.startswith("resized 22 images to at most 48 px into ") and "2 already small enough" in resized.stdout
    split = run_archc("data", "split", str(tmp_path / "small"), str(tmp_path / "split"), "--val", "0.2")
    assert split.returncode == 0, split.stderr
    assert "total                20        4" in split.stdout and "copied 24 images of 4 classes" in split.stdout
    data = tmp_path / "split" / "train"
    assert max(max(Image.open(p).size) for p in data.glob("*/*.jpg")) == 48
    specs = [str(ZOO / f"{name}.arch") for name in ("nin_v1", "nin_v2", "inception_v3")]
    result = run_archc("study", *specs, "--data", str(data), "--kfold", "5", "--epochs", "1", "--input", "3x32x32",
                       "--memory", "6GiB", "--workers", "0", "--out", str(out), timeout=900)
    assert result.returncode == 0, result.stderr
    study = json.loads((out / "study.json").read_text())
    rows = {row["label"]: row for row in study["networks"]}
    assert list(rows) == ["nin_v1", "nin_v2", "inception_v3"]
    assert rows["nin_v1"]["input"] == rows["nin_v2"]["input"] == [3, 32, 32]
    assert rows["inception_v3"]["input"] == [3, 75, 75]  # the smallest square input it takes; the study says so
    assert "inception_v3 trained at 3×75×75: at 3×32×32: " in result.stdout and "smallest square input" in result.stdout
    for spec, row in zip(specs, rows.values()):
        report = archc.check(spec, input=tuple(row["input"]), memory="6GiB", num_classes=4)
        assert (row["params"], row["macs"], row["max_batch"]) == (report.params, report.macs, report.max_batch)
        summary = json.loads((out / row["label"] / "summary.json").read_text())
        assert row["fold_accuracies"] == [f["val_accuracy"] for f in summary["folds"]]
        for k, accuracy in enumerate(row["fold_accuracies"], 1):
            assert json.loads((out / row["label"] / f"fold-{k}" / "summary.json").read_text())["val_accuracy"] == accuracy
        assert row["mean_accuracy"] == pytest.approx(summary["mean_val_accuracy"])
        assert row["std_accuracy"] == pytest.approx(summary["std_val_accuracy"])
        assert row["seconds_per_epoch"] == summary["seconds_per_epoch"] > 0
    with (out / "study.csv").open() as table:
        written = list(csv.DictReader(table))
    assert [(r["network"], int(r["params"]), int(r["macs"]), float(r["fold_5_accuracy"])) for r in written] == [
        (row["label"], row["params"], row["macs"], row["fold_accuracies"][4]) for row in rows.values()]
    markdown = (out / "study.md").read_text()
    assert "| inception_v3 | 3×75×75 | 24,354,536 | 0.202 |" in markdown and "largest batch (6GiB)" in markdown
    assert (out / "study.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "mean ± std (%)" in result.stdout  # the table on the terminal


def tiny_specs(tmp_path, count=2):
    """RGB networks that train in seconds: the tiny residual net at two widths."""
    specs = []
    for k, width in enumerate((8, 16)[:count]):
        path = tmp_path / f"tiny{k}.arch"
        path.write_text(RGB_NET.replace("width = 16)", f"width = {width})"))
        specs.append(str(path))
    return specs


RECIPE = ["--epochs", "3", "--batch", "8", "--workers", "0", "--input", "3x16x16"]
ONE_EPOCH = [*RECIPE[2:], "--epochs", "1"]


@pytest.mark.slow
def test_a_killed_study_skips_finished_runs_and_resumes_the_interrupted_one(tmp_path):
    specs, data, out = tiny_specs(tmp_path), image_tree(tmp_path / "data", per_class=12), tmp_path / "study"
    args = [sys.executable, "-m", "archc", "study", *specs, "--data", str(data), "--kfold", "2", *RECIPE,
            "--out", str(out)]
    process = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    target = out / "tiny1" / "fold-1" / "last.pt"  # the second network's first epoch
    deadline = time.monotonic() + 300
    while not target.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    first = (out / "tiny0" / "summary.json").read_text()
    epoch = torch.load(target, weights_only=True)["epoch"]
    assert epoch < 3 and not (out / "tiny1" / "summary.json").exists()

    again = run_archc("study", *specs, "--data", str(data), "--kfold", "2", *RECIPE, "--out", str(out), timeout=600)
    assert again.returncode == 0, again.stderr
    assert f"tiny0: finished before ({out / 'tiny0'}): kept" in again.stdout
    assert f"tiny1: resuming into {out / 'tiny1'}" in again.stdout
    assert f"resuming {out / 'tiny1' / 'fold-1'} after epoch {epoch} of 3" in again.stdout
    assert (out / "tiny0" / "summary.json").read_text() == first  # not trained again
    rows = json.loads((out / "study.json").read_text())["networks"]
    assert [len(row["fold_accuracies"]) for row in rows] == [2, 2]

    changed = run_archc("study", *specs, "--data", str(data), "--kfold", "2", *RECIPE, "--lr", "0.01",
                        "--out", str(out))
    assert changed.returncode == 2 and "holds another study (it differs in recipe)" in changed.stderr


@pytest.mark.slow
def test_parallel_runs_go_in_processes_of_their_own(tmp_path):
    specs, data, out = tiny_specs(tmp_path), image_tree(tmp_path / "data"), tmp_path / "study"
    result = run_archc("study", *specs, "--data", str(data), *ONE_EPOCH, "--parallel", "2", "--out", str(out),
                       timeout=600)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("in a process of its own (OMP_NUM_THREADS=") == 2
    for row in json.loads((out / "study.json").read_text())["networks"]:
        summary = json.loads((out / row["label"] / "summary.json").read_text())
        assert row["fold_accuracies"] == [summary["val_accuracy"]] and summary["epochs"] == 1
        assert "best val_accuracy" in (out / row["label"] / "train.log").read_text()


@pytest.mark.slow
def test_ray_runs_each_network_as_a_task(tmp_path):
    pytest.importorskip("ray")
    specs, data, out = tiny_specs(tmp_path), image_tree(tmp_path / "data"), tmp_path / "study"
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    result = run_archc("study", *specs, "--data", str(data), *ONE_EPOCH, "--ray", "local", "--out", str(out),
                       timeout=600, env=env)
    assert result.returncode == 0, result.stderr
    assert "submitted 2 runs to Ray at local (one CPU each)" in result.stdout
    assert result.stdout.count("finished (Ray)") == 2
    for row in json.loads((out / "study.json").read_text())["networks"]:
        assert row["fold_accuracies"] == [json.loads((out / row["label"] / "summary.json").read_text())["val_accuracy"]]


def test_a_study_refuses_what_belongs_to_one_network(tmp_path, capsys):
    # in this process: three more processes were 6 s of CPU importing torch to print a usage error
    assert main(["study", str(ZOO / "nin_v1.arch"), "--init", "torchvision:resnet18"]) == 2
    assert "fine-tune each with archc train" in capsys.readouterr().err
    assert main(["study", str(ZOO / "nin_v1.arch"), str(tmp_path / "nope.arch")]) == 2
    assert f"no such file: {tmp_path / 'nope.arch'}" in capsys.readouterr().err
    assert main(["study", str(ZOO / "nin_v1.arch"), str(ZOO / "nin_v2.arch"), "--set", "widht=2"]) == 2
    assert "--set: no network here has the parameter widht" in capsys.readouterr().err
