"""The trainer's guards (issues 12 and 15): what "the last good checkpoint" promises, runs that must refuse
to start or resume, hostile configuration, the run folder's lock and temp files, Ctrl-C, and what the
log tells a newcomer (steps per epoch, the batch and warmup chosen, aux heads)."""

import os
import signal
import subprocess
import sys
import time

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

from archc.cli import main
from archc.runtime.batches import TensorBatches
from archc.runtime.config import TrainConfig
from archc.runtime.run import train
from archc.runtime.trainer import TrainingStopped
from conftest import ROOT, run_archc
from test_train import AUX, FAST, quiet, tiny_net
from test_train_folders import RGB_NET, image_tree


@pytest.mark.slow
def test_a_run_whose_first_epoch_is_not_finite_keeps_no_checkpoint(tmp_path):
    """Issue 12's reproducer: one step an epoch at lr 1e30. The step's loss is finite, the weights, the batch-norm
    statistics and the validation loss after it are not: that epoch is no "last good checkpoint"."""
    run = tmp_path / "run"
    result = run_archc("train", str(tiny_net(tmp_path)), "--input", "1x16x16", "--lr", "1e30", "--batch", "4096",
                       "--epochs", "2", "--out", str(run), timeout=300)
    assert result.returncode == 1, result.stderr
    assert "after epoch 1 the validation loss is nan and " in result.stderr
    assert "no checkpoint was written" in result.stderr and "Traceback" not in result.stderr
    assert not (run / "last.pt").exists() and not (run / "best.pt").exists()


def test_a_nan_validation_loss_stops_the_run_and_the_kept_checkpoint_is_finite(tmp_path, monkeypatch):
    honest, calls = TensorBatches.eval_batches, []

    def poisoned(self, positions, batch):  # the second validation sees NaN images
        calls.append(1)
        for images, labels in honest(self, positions, batch):
            yield (images * float("nan") if len(calls) == 2 else images), labels

    monkeypatch.setattr(TensorBatches, "eval_batches", poisoned)
    with pytest.raises(TrainingStopped, match=r"after epoch 2 the validation loss is nan: .*not saved; the last good "
                                              r"checkpoint is .*last\.pt \(epoch 1\)"):
        train(tiny_net(tmp_path), TrainConfig(epochs=3, recompute_bn="never", out=str(tmp_path / "run"), **FAST),
              log=quiet)
    kept = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert kept["epoch"] == 1 and all(torch.isfinite(t).all() for t in kept["model"].values() if t.is_floating_point())
    assert len(kept["metrics"]) == 1 and (tmp_path / "run" / "metrics.csv").read_text().count("\n") == 2


def test_resume_refuses_a_run_stopped_before_its_config_existed(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / ".config.json.tmp").write_text("{")  # killed while writing it
    assert main(["train", str(tiny_net(tmp_path)), "--out", str(run), "--resume"]) == 2
    err = capsys.readouterr().err
    assert f"{run} holds no run to resume (no config.json" in err and "without --resume" in err
    assert not (run / "config.json").exists() and not (run / "last.pt").exists()


@pytest.mark.parametrize("value", ["[" * 5000 + "]" * 5000, "{a = " * 5000 + "1" + "}" * 5000],
                         ids=["arrays", "inline-tables"])
def test_a_toml_nested_5000_deep_is_a_usage_error(tmp_path, capsys, value):
    config = tmp_path / "deep.toml"
    config.write_text(f"epochs = {value}\n")
    assert main(["train", str(tiny_net(tmp_path)), "--config", str(config)]) == 2
    assert "nested too deeply" in capsys.readouterr().err


def test_values_of_the_wrong_kind_are_not_coerced(tmp_path, capsys):
    config = tmp_path / "train.toml"
    config.write_text("epochs = true\n")
    assert main(["train", str(tiny_net(tmp_path)), "--config", str(config)]) == 2
    assert f"{config}:1: epochs: Input should be a valid integer (got True)" in capsys.readouterr().err


@pytest.mark.parametrize("where", ["file", "/proc/nope"])
def test_out_that_cannot_be_a_run_folder_is_a_usage_error(tmp_path, where, capsys):
    out = tmp_path / "taken.txt" if where == "file" else where
    if where == "file":
        out.write_text("keep me")
    assert main(["train", str(tiny_net(tmp_path)), "--input", "1x16x16", "--out", str(out)]) == 2  # no exception
    err = capsys.readouterr().err
    assert f"--out {out}: " in err
    if where == "file":
        assert "is a file, not a folder" in err and out.read_text() == "keep me"
    else:
        assert "cannot make the folder there" in err


def test_a_batch_of_one_says_what_is_wrong_with_it(tmp_path, capsys):
    assert main(["train", str(tiny_net(tmp_path)), "--input", "1x16x16", "--batch", "1",
                 "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "--batch 1: a batch needs at least 2 images per process" in err and "1437" not in err


def test_stale_temp_files_of_a_killed_write_are_removed_at_the_start(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    stale = [run / ".last.pt.k3j2x9.tmp", run / ".best.pt.abcd.tmp", run / ".metrics.csv.tmp"]
    for path in stale:
        path.write_bytes(b"half a checkpoint")
    (run / "notes.tmp").write_text("not ours")  # only archc's hidden temp files go
    train(tiny_net(tmp_path), TrainConfig(epochs=1, out=str(run), **FAST), log=quiet)
    assert not any(path.exists() for path in stale) and (run / "notes.tmp").exists()


def test_a_small_folder_gets_a_batch_that_makes_steps_and_the_log_says_so(tmp_path):
    lines = []
    summary = train(tiny_net(tmp_path, RGB_NET), TrainConfig(data=str(image_tree(tmp_path / "data", per_class=24)),
                                                             epochs=1, workers=0, out=str(tmp_path / "run")),
                    log=lines.append)
    assert summary["train_images"] == 57 and summary["batch"] == 8 and summary["steps_per_epoch"] == 7
    assert "57 training images: 7 steps an epoch at batch 8; adamw at lr 0.002" in "\n".join(lines)
    assert "warning: an epoch has 7 steps (57 training images at batch 8): too few to learn much" in lines


@pytest.mark.slow
def test_the_digits_keep_batch_128_and_one_epoch_warms_up_for_a_fifth_of_it(tmp_path):
    lines = []
    summary = train(tiny_net(tmp_path), TrainConfig(epochs=1, input="1x16x16", out=str(tmp_path / "run")),
                    log=lines.append)
    assert (summary["batch"], summary["steps_per_epoch"], summary["warmup_epochs"]) == (128, 11, 0.2)
    assert ("1437 training images: 11 steps an epoch at batch 128; adamw at lr 0.002, 0.2 epochs of warmup then "
            "cosine to 0, 1 epoch") in lines
    assert not any(line.startswith("warning:") for line in lines)
    lines.clear()
    train(tiny_net(tmp_path), TrainConfig(epochs=1, warmup=1, input="1x16x16", out=str(tmp_path / "warm")),
          log=lines.append)
    assert "warning: --warmup 1 covers the whole 1-epoch run: the learning rate only rises, and never decays" in lines


def test_the_log_names_the_aux_heads_and_their_weight(tmp_path):
    lines = []
    summary = train(tiny_net(tmp_path, AUX), TrainConfig(epochs=1, aux_weight=0.3, out=str(tmp_path / "run"), **FAST),
                    log=lines.append)
    assert summary["aux"] == {"heads": ["aux1"], "weight": 0.3}
    assert ("aux head aux1: in training their losses are added to the main head's × 0.3 (--aux-weight); "
            "validation, best.pt and eval use the main head alone") in lines


def test_the_progress_bar_shows_the_running_loss_at_every_step_on_a_cpu():
    from archc.runtime.progress import EpochProgress
    from archc.runtime.trainer import Plan

    class Bar:
        def __init__(self):
            self.shown = []

        def add_task(self, *args, **kwargs):
            return 0

        def update(self, task, completed, **fields):
            self.shown.append((completed, fields.get("loss")))

    plan = Plan(cfg=TrainConfig(), arch_file=None, network="n", title="n", params={}, input=(1, 8, 8), classes=[],
                normalize={}, eval_resize=8, arch_main="", arch_sources={}, device=torch.device("cpu"))
    bar = Bar()
    progress = EpochProgress(plan, "epoch 1/1", steps=3, bar=bar)
    for step, loss_sum in enumerate([2.0, 3.0, 3.0]):  # the epoch's summed loss after each step of 1 image
        progress.advance(step, torch.tensor(loss_sum), step + 1)
    assert bar.shown == [(1, "loss 2.0000"), (2, "loss 1.5000"), (3, "loss 1.0000")]


@pytest.mark.slow
def test_a_running_run_locks_its_folder_and_ctrl_c_says_how_to_resume(tmp_path):
    net, run = tiny_net(tmp_path), tmp_path / "run"
    # more epochs than the test can wait for, so that the run is still training when it is interrupted however
    # fast or loaded the machine is (40 finished before the SIGINT on a loaded CI machine)
    args = ["train", str(net), "--input", "1x16x16", "--batch", "32", "--epochs", "100000", "--out", str(run)]
    # SIGINT as a terminal delivers it: a suite started in the background (`pytest &` from a script) ignores
    # SIGINT, its children inherit that, and Python then installs no KeyboardInterrupt handler at all
    first = subprocess.Popen([sys.executable, "-m", "archc", *args], cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 240
        while not (run / "last.pt").exists() and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert first.poll() is None, first.communicate()
        second = run_archc("train", str(net), "--out", str(run), "--resume", timeout=120)
        assert second.returncode == 1, second.stderr
        assert f"{run}: another archc train (process {first.pid}) is training into it" in second.stderr
        os.kill(first.pid, signal.SIGINT)
        _, err = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 130, err
    epoch = torch.load(run / "last.pt", weights_only=True)["epoch"]
    assert (f"archc: interrupted; the last checkpoint is {run / 'last.pt'} (epoch {epoch} of 100000). Continue with: "
            f"archc train {net} --out {run} --resume") in err
    assert "Traceback" not in err
    resumed = run_archc("train", str(net), "--out", str(run), "--resume", "--epochs", str(epoch + 1), timeout=300)
    assert resumed.returncode == 0, resumed.stderr  # the lock went with its process
    assert f"resuming {run} after epoch {epoch} of {epoch + 1}" in resumed.stdout


@pytest.mark.parametrize("held", ["best.pt", "fold-2/last.pt", "summary.json"])
def test_a_new_run_does_not_overwrite_an_earlier_one(tmp_path, capsys, held):
    """`archc train … --out RUN` again, without --resume, retrained and overwrote RUN's checkpoints without a
    word: it is refused, and nothing in the folder changes."""
    run = tmp_path / "run"
    (run / held).parent.mkdir(parents=True)
    (run / held).write_bytes(b"an earlier run's file")
    (run / "config.json").write_text('{"epochs": 30}')
    assert main(["train", str(tiny_net(tmp_path)), "--out", str(run), "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert f"--out {run} holds a run already ({held})" in err and "--resume" in err
    assert (run / held).read_bytes() == b"an earlier run's file" and (run / "config.json").read_text() == '{"epochs": 30}'
