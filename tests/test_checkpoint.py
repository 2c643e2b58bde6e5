"""Checkpoints: plain data that `torch.load(weights_only=True)` reads, the network rebuilt from the
.arch sources they carry, atomic writes, and refusal of what is not an archc checkpoint."""

import pytest

torch = pytest.importorskip("torch")

from archc.runtime.checkpoint import (
    CheckpointError,
    arch_sources,
    build_from_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from archc.runtime.config import TrainConfig
from archc.runtime.data import digits_pool, load_image
from archc.runtime.run import train
from test_train import FAST, quiet

import archc

# A network split over files: its own block library beside it, and one block from archc's library.
BLOCKS = """\
block cbr(out "#out", s = 1):
    conv(out, 3, stride = s, bias = false)
    batchnorm()
    relu()
"""
NET = """\
use "blocks/mine.arch"
use "blocks/resnet.arch"

network split(num_classes = 10, width = 8)
input 1 x 16 x 16

features:
    cbr(width)
    basic(2 * width, s = 2)

head:
    global_avgpool()
    flatten()
    linear(num_classes)
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("ckpt")
    (root / "nets" / "blocks").mkdir(parents=True)
    (root / "nets" / "blocks" / "mine.arch").write_text(BLOCKS)
    (root / "nets" / "split.arch").write_text(NET)
    train(root / "nets" / "split.arch", TrainConfig(epochs=1, out=str(root / "run"), **FAST), log=quiet)
    return root


def test_checkpoints_load_with_weights_only(trained):
    for name in ("best.pt", "last.pt"):
        payload = torch.load(trained / "run" / name, weights_only=True)
        assert payload["format"] == "archc-checkpoint" and payload["version"] == 1
        assert payload["network"] == "split" and payload["input"] == [1, 16, 16] and payload["epoch"] == 1
        assert payload["classes"] == [str(d) for d in range(10)] and payload["eval_resize"] == 16
        assert set(payload["arch_sources"]) == {"split.arch", "blocks/mine.arch"}  # not archc's own resnet blocks
        assert payload["params"] == {"num_classes": 10}
    assert torch.load(trained / "run" / "last.pt", weights_only=True)["optimizer"] is not None


def test_the_rebuilt_network_gives_the_trained_logits(trained):
    ckpt = load_checkpoint(trained / "run" / "best.pt")
    model, same = build_from_checkpoint(ckpt)
    assert same is ckpt and not model.training
    reference = archc.build(trained / "nets" / "split.arch", input=(1, 16, 16), num_classes=10)
    reference.load_state_dict(ckpt["model"])
    x = torch.randn(5, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected, actual = reference.eval()(x), model(x)
    assert expected.abs().max() > 0.1 and torch.equal(expected, actual)


def test_load_image_prepares_a_file_as_validation_does(trained, tmp_path):
    from PIL import Image

    ckpt = load_checkpoint(trained / "run" / "best.pt")
    digit = digits_pool((16, 16)).images[7, 0]
    Image.fromarray(digit.numpy()).save(tmp_path / "seven.png")
    x = load_image(tmp_path / "seven.png", ckpt)
    mean, std = ckpt["normalize"]["mean"][0], ckpt["normalize"]["std"][0]
    assert x.shape == (1, 16, 16) and torch.allclose(x[0], (digit / 255 - mean) / std, atol=1e-6)


def test_a_file_that_is_not_an_archc_checkpoint_is_refused(tmp_path):
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(CheckpointError, match="not an archc checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a readable checkpoint: it is not a file torch.save wrote"):
        load_checkpoint(tmp_path / "text.pt")
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")


@pytest.mark.parametrize("name", ["../evil.arch", "/etc/evil.arch", "a/../../evil.arch"])
def test_source_names_outside_the_folder_are_refused(trained, name):
    ckpt = load_checkpoint(trained / "run" / "best.pt")
    ckpt["arch_sources"] = {**ckpt["arch_sources"], name: "network x()\n"}
    with pytest.raises(CheckpointError, match="outside its folder"):
        build_from_checkpoint(ckpt)


def test_a_failed_save_leaves_the_previous_checkpoint_whole(tmp_path):
    path = tmp_path / "last.pt"
    save_checkpoint(path, {"epoch": 1})
    with pytest.raises(Exception):  # noqa: B017 - whatever pickling raises, the old file must survive
        save_checkpoint(path, {"epoch": 2, "bad": lambda: None})
    assert torch.load(path, weights_only=True)["epoch"] == 1  # (not a whole checkpoint: load_checkpoint refuses it)
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temp file left behind


def test_sources_are_named_relative_to_their_common_folder(tmp_path):
    (tmp_path / "shared").mkdir()
    (tmp_path / "nets").mkdir()
    (tmp_path / "shared" / "mine.arch").write_text(BLOCKS)
    (tmp_path / "nets" / "split.arch").write_text(NET.replace('"blocks/mine.arch"', '"../shared/mine.arch"'))
    main, sources = arch_sources(tmp_path / "nets" / "split.arch")
    assert main == "nets/split.arch" and set(sources) == {"nets/split.arch", "shared/mine.arch"}
