"""The trainer on the embedded digits and on small image folders: accuracy, K-fold, the run folder,
configuration errors, faults that stop a run, and the tensor augmentation of the GPU data path."""

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

from archc.runtime.augment import augment, centre_crop, draw_crops
from archc.runtime.batches import TensorBatches
from archc.runtime.config import TrainConfig
from archc.runtime.run import train
from archc.runtime.trainer import TrainingStopped
from conftest import ZOO, run_archc

from archc.cli import main

# A small residual network: digits at 16×16 train to ≥ 97% in seconds on two cores.
TINY = """\
use "blocks/resnet.arch"

network tiny(num_classes = 10, width = 16)
input 1 x 16 x 16

features:
    conv(width, 3, bias = false)
    batchnorm()
    relu()
    basic(width)
    basic(2 * width, s = 2)

head:
    global_avgpool()
    flatten()
    linear(num_classes)
"""

FAST = {"input": "1x16x16", "batch": 32}  # the default AdamW and cosine schedule


def tiny_net(folder: Path, text: str = TINY) -> Path:
    path = folder / "tiny.arch"
    path.write_text(text)
    return path


def quiet(*_args):
    pass


def test_digits_reach_97_percent(tmp_path):
    summary = train(tiny_net(tmp_path), TrainConfig(epochs=8, out=str(tmp_path / "run"), **FAST), log=quiet)
    run = tmp_path / "run"
    assert summary["val_accuracy"] >= 0.97
    assert summary["skipped_files"] == 0 and summary["train_images"] + summary["val_images"] == 1797
    assert json.loads((run / "summary.json").read_text())["val_accuracy"] == summary["val_accuracy"]
    rows = (run / "metrics.csv").read_text().splitlines()
    assert rows[0] == "epoch,train_loss,train_accuracy,val_loss,val_accuracy,lr,seconds,images_per_s"
    assert len(rows) == 9 and float(rows[-1].split(",")[4]) == summary["final_val_accuracy"]
    for name in ("best.pt", "last.pt", "curves.png", "confusion.png", "config.json"):
        assert (run / name).is_file(), name
    assert any((run / "tensorboard").iterdir())
    confusion = torch.tensor(summary["confusion"])
    assert confusion.sum() == summary["val_images"]  # best.pt on every validation image
    assert confusion.trace() / confusion.sum() == pytest.approx(summary["val_accuracy"])


def test_kfold_summary_agrees_with_its_folds(tmp_path):
    summary = train(tiny_net(tmp_path), TrainConfig(epochs=1, kfold=3, out=str(tmp_path / "run"), **FAST), log=quiet)
    folds = summary["folds"]
    assert [f["fold"] for f in folds] == [1, 2, 3]
    scores = torch.tensor([f["val_accuracy"] for f in folds], dtype=torch.float64)
    assert summary["mean_val_accuracy"] == pytest.approx(scores.mean().item())
    assert summary["std_val_accuracy"] == pytest.approx(scores.std(unbiased=False).item())
    for fold in folds:
        written = json.loads((tmp_path / "run" / f"fold-{fold['fold']}" / "summary.json").read_text())
        assert written["val_accuracy"] == fold["val_accuracy"]
        assert sum(map(sum, written["confusion"])) in (599, 600)  # a third of 1,797 each


def test_the_kfold_table_is_printed_with_mean_and_std(tmp_path):
    lines = []
    train(tiny_net(tmp_path), TrainConfig(epochs=1, kfold=2, out=str(tmp_path / "run"), **FAST), log=lines.append)
    table = lines[-2].splitlines()
    assert table[0].startswith("2-fold cross-validation of tiny")
    assert table[1].startswith("  fold 1: ") and table[2].startswith("  fold 2: ")
    assert " ± " in table[3]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert lines[-1].startswith(f"2-fold mean best val_accuracy {summary['mean_val_accuracy']:.4f} ± "
                                f"{summary['std_val_accuracy']:.4f}, mean final val_accuracy "
                                f"{summary['final_val_accuracy']:.4f}; ")  # the fold means, named as such


def test_an_unknown_toml_key_is_an_error_with_its_line(tmp_path, capsys):
    config = tmp_path / "train.toml"
    config.write_text("epochs = 1\n\n# the learning rate\nlr_rate = 0.1\n")
    assert main(["train", str(tiny_net(tmp_path)), "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert f"{config}:4: unknown key 'lr_rate'" in err and "'lr'" in err


def test_a_toml_value_of_the_wrong_kind_names_its_line(tmp_path, capsys):
    config = tmp_path / "train.toml"
    config.write_text('epochs = 1\noptimizer = "adagrad"\n')
    assert main(["train", str(tiny_net(tmp_path)), "--config", str(config)]) == 2
    assert f"{config}:2: optimizer" in capsys.readouterr().err


def test_flags_override_the_toml_file(tmp_path):
    from archc.runtime.config import load_config, merge

    config = tmp_path / "train.toml"
    config.write_text("epochs = 7\nlr = 0.2\n[set]\nwidth = 8\n")
    cfg = merge(load_config(config), {"epochs": 2, "lr": None, "set": {"num_classes": 10}})
    assert (cfg.epochs, cfg.lr, cfg.set) == (2, 0.2, {"width": 8, "num_classes": 10})


def test_a_network_that_collapses_at_the_data_input_is_refused_before_training(tmp_path, capsys):
    # d2l's NiN needs about 67 px; the digits are 32.
    assert main(["train", str(ZOO / "nin.arch"), "--out", str(tmp_path / "run")]) == 1  # no exception
    err = capsys.readouterr().err
    assert "error[" in err and "cannot be trained at input 1×32×32" in err and not (tmp_path / "run").exists()


def test_a_fixed_class_count_that_differs_from_the_data_is_an_error(tmp_path, capsys):
    fixed = TINY.replace("network tiny(num_classes = 10, width = 16)", "network tiny(width = 16)").replace(
        "linear(num_classes)", "linear(4)")
    assert main(["train", str(tiny_net(tmp_path, fixed))]) == 1
    assert "outputs 4 values per image, but the data has 10 classes" in capsys.readouterr().err


def test_a_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    honest = TensorBatches.train_epoch

    def poisoned(self, positions, batch, epoch, seed):  # the second epoch's images are NaN
        for images, labels in honest(self, positions, batch, epoch, seed):
            yield (images * float("nan") if epoch == 1 else images), labels

    monkeypatch.setattr(TensorBatches, "train_epoch", poisoned)
    with pytest.raises(TrainingStopped, match=r"became nan in epoch 2.*last good checkpoint is .*last\.pt \(epoch 1\)"):
        train(tiny_net(tmp_path), TrainConfig(epochs=3, out=str(tmp_path / "run"), **FAST), log=quiet)
    kept = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert kept["epoch"] == 1 and all(torch.isfinite(t).all() for t in kept["model"].values())


def test_a_huge_learning_rate_exits_1_with_a_message(tmp_path):
    result = run_archc("train", str(tiny_net(tmp_path)), "--input", "1x16x16", "--lr", "1e30", "--epochs", "2",
                       "--out", str(tmp_path / "run"))
    assert result.returncode == 1, result.stderr
    assert "the training loss became" in result.stderr and "--lr" in result.stderr
    assert "Traceback" not in result.stderr


def test_gpu_augmentation_runs_on_cpu_tensors():
    images = torch.randint(0, 256, (6, 3, 20, 20), dtype=torch.uint8)
    normalize = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
    params = draw_crops(6, torch.Generator().manual_seed(0), min_scale=0.3, flip=True, jitter=0.4)
    out = augment(images, params, (16, 12), normalize)
    assert out.shape == (6, 3, 16, 12) and out.dtype == torch.float32
    mean, std = torch.tensor(normalize["mean"])[:, None, None], torch.tensor(normalize["std"])[:, None, None]
    assert ((out >= -mean / std - 1e-5) & (out <= (1 - mean) / std + 1e-5)).all()
    assert out.std() > 0.5  # not a constant image


def test_a_whole_image_crop_is_the_image_and_a_flip_mirrors_it():
    images = torch.randint(0, 256, (2, 1, 8, 8), dtype=torch.uint8)
    normalize = {"mean": [0.0], "std": [1.0]}
    whole = torch.tensor([[1, 1, 0, 0, 1, 1, 1, 1], [1, 1, 0, 0, -1, 1, 1, 1]], dtype=torch.float32)
    out = augment(images, whole, (8, 8), normalize)
    assert torch.allclose(out[0], images[0] / 255, atol=1e-6)
    assert torch.allclose(out[1], images[1].flip(-1) / 255, atol=1e-6)
    assert torch.equal(centre_crop(images, (4, 4), normalize), images[:, :, 2:6, 2:6] / 255)


def test_crops_are_drawn_for_the_global_batch_so_processes_share_them():
    images = torch.randint(0, 256, (12, 1, 10, 10), dtype=torch.uint8)
    labels = torch.arange(12)
    kwargs = {"min_scale": 0.5, "flip": True, "jitter": 0.0}
    from archc.runtime.batches import Shard

    whole = list(TensorBatches(images, labels, (8, 8), {"mean": [0], "std": [1]}, **kwargs).train_epoch(
        torch.arange(12), 6, epoch=3, seed=1))
    halves = [list(TensorBatches(images, labels, (8, 8), {"mean": [0], "std": [1]}, shard=Shard(r, 2),
                                 **kwargs).train_epoch(torch.arange(12), 6, epoch=3, seed=1)) for r in (0, 1)]
    for (x, y), (x0, y0), (x1, y1) in zip(whole, *halves):
        assert torch.equal(torch.cat([x0, x1]), x) and torch.equal(torch.cat([y0, y1]), y)


def test_out_of_memory_ends_with_the_checkers_largest_batch(tmp_path, monkeypatch):
    import archc

    def exhausted(self, positions, batch, epoch, seed):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        yield

    free = 3 * 2**20  # what the GPU would have left: 3 MiB
    monkeypatch.setattr(TensorBatches, "train_epoch", exhausted)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (free, 80 * 2**30))
    net = tiny_net(tmp_path)
    expected = archc.check(net, input=(1, 16, 16), num_classes=10, memory=free).max_batch
    assert 1 < expected < 32
    with pytest.raises(TrainingStopped, match=rf"out of memory at a batch of 32 per GPU; .* up to {expected} fits "
                                              rf"the 3 MiB free now .*try --batch {expected}"):
        train(net, TrainConfig(epochs=1, out=str(tmp_path / "run"), **FAST), log=quiet)


AUX = """\
block head(n):
    global_avgpool()
    flatten()
    linear(n)

network g(num_classes = 10, aux = true)
input 1 x 16 x 16

features:
    conv(16, 3)
    relu()
    aux aux1 = head(num_classes) if aux
    conv(16, 3)
    relu()

classifier:
    global_avgpool()
    flatten()
    linear(num_classes)
"""


def test_auxiliary_heads_add_their_weighted_loss(tmp_path):
    net = tiny_net(tmp_path, AUX)
    losses = {}
    for weight in (0.0, 1.0):
        summary = train(net, TrainConfig(epochs=1, aux_weight=weight, out=str(tmp_path / f"w{weight}"), **FAST),
                        log=quiet)
        row = (tmp_path / f"w{weight}" / "metrics.csv").read_text().splitlines()[1].split(",")
        losses[weight] = (float(row[1]), float(row[3]), summary["val_accuracy"])
    # with weight 1 the training loss adds the aux head's own cross-entropy (a shallow head: well above 0.5)
    assert losses[1.0][0] > losses[0.0][0] + 0.5
    assert all(0 < v < 5 for v in (losses[0.0][1], losses[1.0][1]))  # eval runs the main head alone
