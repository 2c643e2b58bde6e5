"""Class activation maps: the head found in the checked graph, the map against Σ_k w_ck f_k computed
by hand on a hooked feature map, and the PNG written at the image's size."""

import pytest
import torch
from archc.compiler.check import build_graph
from archc.runtime.cam import (
    CamError,
    cam_for_image,
    cam_head,
    image_input,
    jet,
    normalised,
)
from conftest import ZOO
from PIL import Image
from test_predict import TINY, make_checkpoint, random_image

import archc
from archc.cli import main

NIN_LIKE = """
network tinynin(num_classes = 3)
input 3 x 32 x 32

features:
    conv(8, 3, stride = 2)
    relu()
    conv(num_classes, 1)
    relu()

classifier:
    global_avgpool()
    flatten()
"""


def last(arch, op):
    """The name of the last layer doing `op` in the checked graph of the file `arch`."""
    return [layer.name for layer in build_graph(arch).layers() if layer.op == op][-1]


def hooked(model, layer, x):
    """The output of `layer` on x, by a forward hook of our own, and the logits."""
    seen = []
    hook = model.get_submodule(layer).register_forward_hook(lambda m, i, o: seen.append(o))
    with torch.no_grad():
        logits = model(x[None])[0]
    hook.remove()
    return seen[0][0], logits


def test_the_map_is_the_weighted_sum_of_the_feature_channels(tmp_path):
    checkpoint, model = make_checkpoint(tmp_path)
    image = random_image(tmp_path / "photo.png", seed=5, size=(57, 41))
    result = cam_for_image(checkpoint, image, tmp_path / "cam.png", class_="dog", alpha=1.0)

    _, x = image_input(image, {"input": [3, 32, 32], "eval_resize": 36, "normalize": {"mean": [0.5, 0.4, 0.3],
                                                                                     "std": [0.25, 0.2, 0.3]}})
    relu, linear = last(tmp_path / "tiny.arch", "relu"), model.get_submodule(last(tmp_path / "tiny.arch", "linear"))
    features, logits = hooked(model, relu, x)  # the last relu: what the pooling averages
    weight, bias = linear.weight.detach(), linear.bias.detach()
    expected = sum(weight[1, k] * features[k] for k in range(features.shape[0]))
    assert result["index"] == 1 and result["feature_layer"] == relu
    assert torch.allclose(result["map"], expected, atol=1e-5)
    assert float(expected.mean() + bias[1]) == pytest.approx(float(logits[1]), abs=1e-4)  # logit = mean + bias
    assert result["probability"] == pytest.approx(float(torch.softmax(logits, 0)[1]), abs=1e-6)

    written = Image.open(tmp_path / "cam.png")
    assert written.size == (57, 41) and written.format == "PNG"
    # alpha 1: the picture is the colour-mapped, upsampled, normalised map itself
    colours = jet(normalised(expected, (41, 57)))
    pixels = torch.frombuffer(bytearray(written.convert("RGB").tobytes()), dtype=torch.uint8).view(41, 57, 3)
    assert (pixels.int() - colours.int()).abs().max() <= 1


def test_default_class_is_the_predicted_one_and_the_overlay_blends(tmp_path):
    checkpoint, model = make_checkpoint(tmp_path, seed=3)
    image = random_image(tmp_path / "photo.jpg", seed=9, size=(48, 64))
    result = cam_for_image(checkpoint, image, tmp_path / "cam.png", alpha=0.0)
    _, x = image_input(image, {"input": [3, 32, 32], "eval_resize": 36, "normalize": {"mean": [0.5, 0.4, 0.3],
                                                                                     "std": [0.25, 0.2, 0.3]}})
    assert result["index"] == int(hooked(model, last(tmp_path / "tiny.arch", "relu"), x)[1].argmax())
    assert Image.open(tmp_path / "cam.png").tobytes() == Image.open(image).convert("RGB").tobytes()


def test_a_nin_head_maps_the_class_channel(tmp_path):
    checkpoint, model = make_checkpoint(tmp_path, text=NIN_LIKE)
    image = random_image(tmp_path / "photo.png", seed=2, size=(40, 40))
    result = cam_for_image(checkpoint, image, tmp_path / "cam.png", class_="2")
    _, x = image_input(image, {"input": [3, 32, 32], "eval_resize": 36, "normalize": {"mean": [0.5, 0.4, 0.3],
                                                                                     "std": [0.25, 0.2, 0.3]}})
    features, logits = hooked(model, last(tmp_path / "tiny.arch", "relu"), x)
    assert result["index"] == 2 and torch.allclose(result["map"], features[2])
    assert float(features[2].mean()) == pytest.approx(float(logits[2]), abs=1e-5)


@pytest.mark.parametrize("name, variant, classifier", [
    ("resnet.arch", "resnet18", True), ("efficientnet.arch", "b0", True), ("googlenet.arch", None, True),
    ("inception_v3.arch", None, True), ("nin.arch", None, False),
])
def test_heads_of_the_zoo(name, variant, classifier):
    graph = build_graph(ZOO / name, variant=variant)
    head = cam_head(graph)
    model = archc.build(ZOO / name, variant=variant)
    assert isinstance(model.get_submodule(head.pool), torch.nn.AdaptiveAvgPool2d)
    assert list(graph.layer(head.pool).inputs) == [head.feature] and graph.layer(head.feature).out_shape[0] == head.channels
    if classifier:  # the network's last linear layer, fed by the pooled channels
        linear = model.get_submodule(head.linear)
        assert isinstance(linear, torch.nn.Linear) and linear.in_features == head.channels
        assert head.linear == [layer.name for layer in graph.layers() if layer.op == "linear" and not layer.aux][-1]
    else:
        assert head.linear is None and head.channels == 10


def test_heads_without_a_map_are_refused_with_the_reason(tmp_path):
    with pytest.raises(CamError, match=r"linear ← dropout ← hardswish: 'hardswish' at classifier\.\S+ is in the way"):
        cam_head(build_graph(ZOO / "mobilenet_v3_small.arch"), "mobilenet_v3_small")
    no_pool = TINY.replace("global_avgpool()", "avgpool(16)")
    checkpoint, _ = make_checkpoint(tmp_path, text=no_pool)
    image = random_image(tmp_path / "photo.png", seed=1)
    assert main(["cam", str(checkpoint), str(image), "-o", str(tmp_path / "cam.png")]) == 1
    assert not (tmp_path / "cam.png").exists()


def test_cli_class_choice_and_errors(tmp_path, capsys):
    checkpoint, _ = make_checkpoint(tmp_path)
    image = random_image(tmp_path / "photo.png", seed=4)
    assert main(["cam", str(checkpoint), str(image), "-o", str(tmp_path / "fox.png"), "--class", "fox"]) == 0
    assert "'fox'" in capsys.readouterr().out and Image.open(tmp_path / "fox.png").size == (44, 38)
    assert main(["cam", str(checkpoint), str(image), "-o", str(tmp_path / "x.png"), "--class", "foxx"]) == 1
    assert "did you mean 'fox'?" in capsys.readouterr().err
    assert main(["cam", str(checkpoint), str(tmp_path / "none.png"), "-o", str(tmp_path / "x.png")]) == 1
    assert "no such image" in capsys.readouterr().err
    assert main(["cam", str(checkpoint), str(image), "-o", str(tmp_path / "x.txt")]) == 2


def test_a_flat_map_is_drawn_flat_not_as_amplified_rounding():
    assert torch.equal(normalised(torch.tensor([[4.4889]]), (32, 24)), torch.zeros(32, 24))
    ramp = normalised(torch.tensor([[0.0, 1.0], [2.0, 3.0]]), (8, 8))
    assert float(ramp.min()) == 0.0 and float(ramp.max()) == 1.0 and float(ramp[0, 0]) < float(ramp[7, 7])
