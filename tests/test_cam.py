"""Class activation maps: the head found in the checked graph, CAM against Σ_k w_ck f_k and Grad-CAM
against torch autograd, both on a hooked feature map of the view torchvision makes by hand; the
picture (the view, a colour bar, a caption) and the view itself, which is the one predict classifies."""

import pytest
import torch
from archc.compiler.check import build_graph
from archc.runtime.cam import CamError, cam_for_image, cam_head
from archc.runtime.cam_picture import DISPLAY, jet, normalised
from archc.runtime.infer import predict
from conftest import ZOO
from PIL import Image
from test_predict import NORMALIZE, TINY, make_checkpoint, random_image
from torchvision import transforms as T

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
# MobileNetV3's head: pooling, then linear → hardswish → dropout → linear (no CAM; Grad-CAM)
MOBILE_HEAD = TINY.replace("    dropout(0.2)\n    linear(num_classes)",
                           "    linear(12)\n    hardswish()\n    dropout(0.2)\n    linear(num_classes)")
SCALE = DISPLAY // 32  # the 32×32 view is drawn at this factor


def last(arch, op):
    """The name of the last layer doing `op` in the checked graph of the file `arch`."""
    return [layer.name for layer in build_graph(arch).layers() if layer.op == op][-1]


def view_of(path):
    """torchvision by hand: the eval view of one file (resize 36, centre crop 32) and its normalised tensor."""
    view = T.CenterCrop(32)(T.Resize(36)(Image.open(path).convert("RGB")))
    return view, T.Normalize(NORMALIZE["mean"], NORMALIZE["std"])(T.ToTensor()(view))


def hooked(model, layer, x):
    """The output of `layer` on x, by a forward hook of our own, and the logits."""
    seen = []
    hook = model.get_submodule(layer).register_forward_hook(lambda m, i, o: seen.append(o))
    with torch.no_grad():
        logits = model(x[None])[0]
    hook.remove()
    return seen[0][0], logits


def pixels(image):
    return torch.frombuffer(bytearray(image.convert("RGB").tobytes()), dtype=torch.uint8).view(image.height,
                                                                                             image.width, 3)


def test_the_map_is_the_weighted_sum_of_the_feature_channels(tmp_path):
    checkpoint, model = make_checkpoint(tmp_path)
    image = random_image(tmp_path / "photo.png", seed=5, size=(57, 41))
    result = cam_for_image(checkpoint, image, tmp_path / "cam.png", class_="dog", alpha=1.0)

    _, x = view_of(image)
    relu, linear = last(tmp_path / "tiny.arch", "relu"), model.get_submodule(last(tmp_path / "tiny.arch", "linear"))
    features, logits = hooked(model, relu, x)  # the last relu: what the pooling averages
    weight, bias = linear.weight.detach(), linear.bias.detach()
    expected = sum(weight[1, k] * features[k] for k in range(features.shape[0]))
    assert result["index"] == 1 and result["feature_layer"] == relu and result["method"] == "cam"
    assert torch.allclose(result["map"], expected, atol=1e-5)
    assert float(expected.mean() + bias[1]) == pytest.approx(float(logits[1]), abs=1e-4)  # logit = mean + bias
    assert result["probability"] == pytest.approx(float(torch.softmax(logits, 0)[1]), abs=1e-6)

    written = Image.open(tmp_path / "cam.png")
    assert written.format == "PNG" and written.width > 32 * SCALE and written.height > 32 * SCALE
    # alpha 1: the top left is the colour-mapped, upsampled, normalised map itself, at the view's drawn size
    colours = jet(normalised(expected, (32 * SCALE, 32 * SCALE)))
    assert (pixels(written)[:32 * SCALE, :32 * SCALE].int() - colours.int()).abs().max() <= 1


def test_cam_draws_the_view_predict_classifies_and_agrees_with_it(tmp_path):
    checkpoint, model = make_checkpoint(tmp_path, seed=3)
    for seed, size in ((9, (48, 64)), (10, (90, 40)), (11, (33, 120))):
        image = random_image(tmp_path / f"photo{seed}.jpg", seed=seed, size=size)
        result = cam_for_image(checkpoint, image, tmp_path / "cam.png", alpha=0.0)
        view, x = view_of(image)
        with torch.no_grad():
            direct = int(model(x[None])[0].argmax())
        assert result["index"] == direct == predict(checkpoint, [image], top=1)[0]["top"][0]["index"]
        assert result["view"].tobytes() == view.tobytes()
        # alpha 0: the top left is the view itself, each pixel drawn SCALE × SCALE
        drawn = pixels(Image.open(tmp_path / "cam.png"))[:32 * SCALE, :32 * SCALE]
        assert torch.equal(drawn[::SCALE, ::SCALE], pixels(view))


def test_the_picture_has_a_colour_bar_and_a_caption(tmp_path):
    checkpoint, _ = make_checkpoint(tmp_path, seed=1)
    image = random_image(tmp_path / "photo.png", seed=4)
    result = cam_for_image(checkpoint, image, tmp_path / "cam.png", class_="fox")
    drawn = pixels(Image.open(tmp_path / "cam.png"))
    side = 32 * SCALE
    bar = drawn[:side, side + 8 + 7]  # the middle of the colour bar, top to bottom: jet from 1 down to 0
    top, bottom = jet(torch.tensor([[1.0, 0.0]]))[0]
    assert torch.equal(bar[0], top) and torch.equal(bar[-1], bottom)
    caption = drawn[side + 8:]
    assert caption.shape[0] > 20 and (caption < 100).any() and (caption == 255).float().mean() > 0.8  # dark on white
    assert result["view_described"] == "short side resized to 36, centre crop 32x32"


def test_grad_cam_for_a_head_that_is_not_gap_and_linear_equals_autograd(tmp_path):
    checkpoint, model = make_checkpoint(tmp_path, text=MOBILE_HEAD, seed=2)
    image = random_image(tmp_path / "photo.png", seed=8, size=(50, 40))
    result = cam_for_image(checkpoint, image, tmp_path / "cam.png", class_="cat")

    _, x = view_of(image)
    grabbed = []

    def keep(module, inputs, output):
        inputs[0].retain_grad()
        grabbed.append(inputs[0])

    pool = model.get_submodule(last(tmp_path / "tiny.arch", "global_avgpool"))
    hook = pool.register_forward_hook(keep)
    logits = model(x[None])[0]
    hook.remove()
    logits[0].backward()
    features, gradient = grabbed[0][0].detach(), grabbed[0].grad[0]
    alpha = gradient.mean(dim=(1, 2))  # Selvaraju et al. 2017, eq. 1
    expected = torch.relu(sum(alpha[k] * features[k] for k in range(features.shape[0])))  # eq. 2
    assert result["method"] == "grad-cam" and result["index"] == 0
    assert expected.abs().max() > 0 and torch.allclose(result["map"], expected, atol=1e-6)
    assert result["probability"] == pytest.approx(float(torch.softmax(logits.detach(), 0)[0]), abs=1e-6)
    assert main(["cam", str(checkpoint), str(image), "-o", str(tmp_path / "cli.png")]) == 0


def test_a_nin_head_maps_the_class_channel(tmp_path):
    checkpoint, model = make_checkpoint(tmp_path, text=NIN_LIKE)
    image = random_image(tmp_path / "photo.png", seed=2, size=(40, 40))
    result = cam_for_image(checkpoint, image, tmp_path / "cam.png", class_="2")
    features, logits = hooked(model, last(tmp_path / "tiny.arch", "relu"), view_of(image)[1])
    assert result["index"] == 2 and torch.allclose(result["map"], features[2])
    assert float(features[2].mean()) == pytest.approx(float(logits[2]), abs=1e-5)


@pytest.mark.parametrize("name, variant, method, classifier", [
    ("resnet.arch", "resnet18", "cam", True), ("efficientnet.arch", "b0", "cam", True),
    ("googlenet.arch", None, "cam", True), ("inception_v3.arch", None, "cam", True), ("nin.arch", None, "cam", False),
    ("mobilenet_v3_small.arch", None, "grad-cam", False), ("mobilenet_v3_large.arch", None, "grad-cam", False),
])
def test_heads_of_the_zoo(name, variant, method, classifier):
    graph = build_graph(ZOO / name, variant=variant)
    head = cam_head(graph)
    with torch.device("meta"):  # the module paths are what is checked, not the weights
        model = archc.build(ZOO / name, variant=variant)
    assert isinstance(model.get_submodule(head.pool), torch.nn.AdaptiveAvgPool2d) and head.method == method
    assert list(graph.layer(head.pool).inputs) == [head.feature] and graph.layer(head.feature).out_shape[0] == head.channels
    if classifier:  # the network's last linear layer, fed by the pooled channels
        linear = model.get_submodule(head.linear)
        assert isinstance(linear, torch.nn.Linear) and linear.in_features == head.channels
        assert head.linear == [layer.name for layer in graph.layers() if layer.op == "linear" and not layer.aux][-1]
    else:
        pooled = graph.layer(head.pool).out_shape[0]
        assert head.linear is None and head.channels == (10 if name == "nin.arch" else pooled)


def test_heads_without_a_map_are_refused_with_the_reason(tmp_path):
    joined = "block skip(n):\n    residual:\n        linear(n)\n" + TINY.replace(
        "    global_avgpool()\n    flatten()", "    global_avgpool()\n    flatten()\n    skip(16)")
    with pytest.raises(CamError, match=r"joins branches at .* after its last global average pooling"):
        cam_head(build_graph(_write(tmp_path / "joined.arch", joined)), "joined")
    no_pool = TINY.replace("global_avgpool()", "avgpool(16)")
    checkpoint, _ = make_checkpoint(tmp_path, text=no_pool)
    image = random_image(tmp_path / "photo.png", seed=1)
    assert main(["cam", str(checkpoint), str(image), "-o", str(tmp_path / "cam.png")]) == 1
    assert not (tmp_path / "cam.png").exists()
    with pytest.raises(CamError, match="no global average pooling before its output"):
        cam_for_image(checkpoint, image, tmp_path / "cam.png")


def _write(path, text):
    path.write_text(text)
    return path


def test_cli_class_choice_and_errors(tmp_path, capsys):
    checkpoint, _ = make_checkpoint(tmp_path)
    image = random_image(tmp_path / "photo.png", seed=4)
    assert main(["cam", str(checkpoint), str(image), "-o", str(tmp_path / "fox.png"), "--class", "fox"]) == 0
    out = capsys.readouterr().out
    assert "'fox'" in out and "over the view archc predict classifies (short side resized to 36" in out
    assert main(["cam", str(checkpoint), str(image), "-o", str(tmp_path / "x.png"), "--class", "foxx"]) == 1
    assert "did you mean 'fox'?" in capsys.readouterr().err
    assert main(["cam", str(checkpoint), str(tmp_path / "none.png"), "-o", str(tmp_path / "x.png")]) == 1
    assert "none.png as an image: no such file" in capsys.readouterr().err
    assert main(["cam", str(checkpoint), str(image), "-o", str(tmp_path / "x.txt")]) == 2
    assert main(["cam", str(checkpoint), str(image), "-o", str(tmp_path / "x.png"), "--alpha", "2"]) == 1
    assert "--alpha is the heat map's opacity in [0, 1], got 2.0" in capsys.readouterr().err


def test_a_flat_map_is_drawn_flat_not_as_amplified_rounding():
    assert torch.equal(normalised(torch.tensor([[4.4889]]), (32, 24)), torch.zeros(32, 24))
    ramp = normalised(torch.tensor([[0.0, 1.0], [2.0, 3.0]]), (8, 8))
    assert float(ramp.min()) == 0.0 and float(ramp.max()) == 1.0 and float(ramp[0, 0]) < float(ramp[7, 7])
