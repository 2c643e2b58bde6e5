"""Fine-tuning: --init from reference weights (matched by position, as archc port matches them), --freeze by
section and row with frozen batch norms kept in eval, --lr-head; and compiler/weights.py, the one matching."""

import json

import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")
Image = pytest.importorskip("PIL.Image")

import archc
from archc.cli import main
from archc.compiler.weights import WeightMismatch, refit_pairs, strict_pairs
from archc.runtime.config import ConfigError, TrainConfig
from archc.runtime.data import digits_pool
from archc.runtime.finetune import InitError, freeze, head_groups, parse_pattern, read_source
from archc.runtime.run import train
from conftest import ZOO, run_archc
from test_train import TINY, quiet, tiny_net
from test_train_folders import image_tree


def seeded_resnet18(seed=0):
    torch.manual_seed(seed)
    return torchvision.models.resnet18()


def test_the_matching_is_ports_and_says_what_no_longer_fits():
    model = archc.build(ZOO / "resnet.arch", variant="resnet18", num_classes=3)
    reference = seeded_resnet18().state_dict()
    with pytest.raises(WeightMismatch, match=r"classifier.2.weight \(3, 512\) does not fit the reference's fc.weight"):
        strict_pairs(model.state_dict(), reference)
    matching = refit_pairs(model.state_dict(), reference)
    assert [p.key for p in matching.misfits] == ["classifier.2.weight", "classifier.2.bias"]
    assert len(matching.loaded) == len(reference) - 2
    same_classes = archc.build(ZOO / "resnet.arch", variant="resnet18")
    assert strict_pairs(same_classes.state_dict(), reference) == archc.port(same_classes, seeded_resnet18())
    with pytest.raises(WeightMismatch, match="the model has 122 tensors, the reference 320"):
        refit_pairs(model.state_dict(), torchvision.models.resnet50().state_dict())


@pytest.mark.slow
def test_init_from_a_torchvision_state_dict_lists_the_classifier_and_freeze_keeps_the_trunk(tmp_path):
    """A torchvision ResNet-18 state dict (1000 classes) into archc's ResNet-18 on 3 classes, the features frozen:
    exactly the classifier's two tensors are re-initialised, and every frozen tensor, batch-norm statistics
    included, is the reference's, bit for bit, after an epoch of training."""
    reference = seeded_resnet18().state_dict()
    weights = tmp_path / "resnet18.pt"
    torch.save(reference, weights)
    data = image_tree(tmp_path / "data")
    run = tmp_path / "run"
    result = run_archc("train", str(ZOO / "resnet.arch"), "--variant", "resnet18", "--data", str(data), "--input",
                       "3x32x32", "--epochs", "1", "--workers", "0", "--init", str(weights), "--freeze", "features",
                       "--out", str(run), timeout=300)
    assert result.returncode == 0, result.stderr
    summary = json.loads((run / "summary.json").read_text())
    assert summary["init"] == {"source": str(weights), "loaded": 120,
                               "reinitialised": ["classifier.2.weight", "classifier.2.bias"]}
    assert f"--init {weights}: 120 tensors loaded by position; 2 no longer fit" in result.stdout
    assert "classifier.2.weight (3, 512), the reference has fc.weight (1000, 512)" in result.stdout
    assert summary["freeze"] == {"patterns": ["features"], "tensors": 120}
    trained = torch.load(run / "last.pt", weights_only=True)["model"]
    for (key, value), (_, expected) in zip(trained.items(), reference.items()):
        if key.startswith("features."):
            assert torch.equal(value, expected), key
    assert trained["features.0.batchnorm.num_batches_tracked"] == reference["bn1.num_batches_tracked"]


def test_torchvision_weights_come_from_the_local_hub_cache_only(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    url = torchvision.models.ResNet18_Weights.DEFAULT.url
    cached = tmp_path / "torch" / "hub" / "checkpoints" / url.rsplit("/", 1)[1]
    with pytest.raises(InitError) as absent:
        read_source("torchvision:resnet18")
    assert url in str(absent.value) and str(cached) in str(absent.value) and "downloads nothing" in str(absent.value)
    reference = seeded_resnet18().state_dict()
    cached.parent.mkdir(parents=True)
    torch.save(reference, cached)
    read = read_source("torchvision:resnet18").state
    assert list(read) == list(reference) and all(torch.equal(read[k], reference[k]) for k in reference)
    with pytest.raises(ConfigError, match="torchvision has no model 'resnet19'"):
        read_source("torchvision:resnet19")


def test_safetensors_timm_style_and_archc_checkpoints_are_read_in_registration_order(tmp_path):
    from safetensors.torch import save_file

    from archc.runtime.finetune import load_init

    reference = {k: v for k, v in seeded_resnet18().state_dict().items()}
    save_file(reference, tmp_path / "resnet18.safetensors")  # the format sorts them by name
    torch.save({"state_dict": reference, "epoch": 3}, tmp_path / "timm.pth")  # as timm's train.py saves
    for name in ("resnet18.safetensors", "timm.pth"):
        read = read_source(str(tmp_path / name)).state
        assert list(read) == list(reference) and all(torch.equal(read[k], reference[k]) for k in reference), name
    model = archc.build(ZOO / "resnet.arch", variant="resnet18", num_classes=3)
    save_file(reference, tmp_path / "weights.safetensors")  # named after no model: the order is lost
    with pytest.raises(InitError, match="cannot be matched by position"):
        load_init(model, read_source(str(tmp_path / "weights.safetensors")).state, "weights.safetensors")
    own = {k: v.clone() + 1 for k, v in model.state_dict().items()}
    save_file(own, tmp_path / "own.safetensors")  # the network's own names: matched by name
    assert load_init(model, read_source(str(tmp_path / "own.safetensors")).state, "own").reinitialised == []
    assert all(torch.equal(model.state_dict()[k], own[k]) for k in own)
    (tmp_path / "notes.pt").write_text("not a state dict")
    with pytest.raises(InitError, match="is not a readable state dict"):
        read_source(str(tmp_path / "notes.pt"))
    torch.save({"epoch": 3}, tmp_path / "empty.pt")
    with pytest.raises(InitError, match="holds no state dict"):
        read_source(str(tmp_path / "empty.pt"))


def test_freeze_patterns_name_sections_rows_and_paths(tmp_path):
    model = archc.build(tiny_net(tmp_path), input=(1, 16, 16))
    assert parse_pattern("features[-2:]") == ("features", slice(-2, None))
    assert parse_pattern("features[3]") == ("features", slice(3, 4))
    rows = freeze(model, ["features[:3]"])  # conv, batchnorm, relu: not the two basic blocks
    assert rows.names == ["features.0.weight", "features.1.weight", "features.1.bias", "features.1.running_mean",
                          "features.1.running_var", "features.1.num_batches_tracked"]
    assert len(rows.norms) == 1 and model.get_submodule("features.3").conv_bn_0.conv.weight.requires_grad
    with pytest.raises(ConfigError, match=r"no part 'feature' \(its sections: features, head"):
        freeze(model, ["feature"])
    with pytest.raises(ConfigError, match=r"selects none of the 5 rows of features"):
        freeze(model, ["features[7:]"])
    with pytest.raises(ConfigError, match="nothing would train"):
        freeze(model, ["features", "head"])


def test_lr_head_gives_the_reinitialised_tensors_their_own_rate(tmp_path):
    model = archc.build(tiny_net(tmp_path), input=(1, 16, 16))
    groups = head_groups([{"params": [p for p in model.parameters() if p.ndim > 1], "weight_decay": 0.05},
                          {"params": [p for p in model.parameters() if p.ndim <= 1], "weight_decay": 0.0}],
                         model, ["head.2.weight", "head.2.bias"], 10.0)
    assert [(len(g["params"]), g.get("lr_scale", 1.0), g["weight_decay"]) for g in groups] == [
        (6, 1.0, 0.05), (1, 10.0, 0.05), (12, 1.0, 0.0), (1, 10.0, 0.0)]  # 6 convs, 6 batch norms
    assert groups[1]["params"][0] is model.get_submodule("head.2").weight
    assert main(["train", str(tiny_net(tmp_path)), "--lr-head", "10"]) == 2


def digit_folders(root, classes, per_class):
    """The embedded digits of `classes` as grey 16×16 PNGs in one folder per class."""
    pool = digits_pool((16, 16))
    for label in classes:
        folder = root / str(label)
        folder.mkdir(parents=True)
        chosen = (pool.labels == label).nonzero().flatten()[:per_class]
        for i in chosen.tolist():
            Image.fromarray(pool.images[i, 0].numpy()).save(folder / f"{i}.png")
    return root


@pytest.mark.slow
def test_fine_tuning_a_frozen_pretrained_trunk_beats_training_from_scratch(tmp_path):
    """Pre-trained on the ten digits (96% in 4 epochs), then an epoch on five of them as an image folder: the
    frozen trunk and a new head reach about 0.72 where the whole network from scratch reaches about 0.4."""
    net = tiny_net(tmp_path)
    recipe = {"input": "1x16x16", "workers": 0, "batch": 8, "lr": 0.01}  # 20 steps on the 160 training images
    train(net, TrainConfig(epochs=4, out=str(tmp_path / "digits"), **{**recipe, "batch": 32}), log=quiet)
    pretrained = tmp_path / "digits" / "best.pt"
    subset = digit_folders(tmp_path / "five", range(5, 10), per_class=40)
    lines = []
    tuned = train(net, TrainConfig(data=str(subset), epochs=1, init=str(pretrained), freeze=["features"], lr_head=10.0,
                                   out=str(tmp_path / "tuned"), **recipe), log=lines.append)
    scratch = train(net, TrainConfig(data=str(subset), epochs=1, out=str(tmp_path / "scratch"), **recipe), log=quiet)
    assert tuned["init"]["reinitialised"] == ["head.2.weight", "head.2.bias"]  # 10 classes then, 5 now
    assert tuned["val_accuracy"] >= scratch["val_accuracy"] + 0.15, (tuned["val_accuracy"], scratch["val_accuracy"])
    before = torch.load(pretrained, weights_only=True)["model"]
    after = torch.load(tmp_path / "tuned" / "last.pt", weights_only=True)["model"]
    frozen = [k for k in before if k.startswith("features.")]
    assert len(frozen) == 36 and all(torch.equal(before[k], after[k]) for k in frozen)
    assert not torch.equal(after["head.2.bias"], torch.zeros(5))  # the head did train
    assert any("--lr-head 10: the 2 re-initialised tensors train at 10 × the learning rate" in line for line in lines)
    assert any("inputs normalised as that run's were (mean [0.3052]" in line for line in lines)  # the digits'
