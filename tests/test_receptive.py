"""Receptive fields (compiler/receptive.py) against torch: the support of the input gradient of one central
output element, with every weight positive, batch norm the identity and max pools replaced by average pools
of the same geometry, is the computed field clipped to the input — for the output of every table row and
block of every zoo network, joins (residual adds, concats, SE gates) included."""

import pytest
from conftest import ZOO, run_archc
from oracles import Interpreted

import archc
from archc.compiler.check import build_graph
from archc.compiler.ops.base import IRREGULAR
from archc.compiler.receptive import receptive_fields

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

# (file, variant, input): every zoo network, at an input small enough for a CPU to backpropagate in float64
# through a batch of probes, yet large enough that most fields are clipped on one side only
FAST = [("nin.arch", None, "1x96x96"), ("mobilenet_v3_small.arch", None, "3x64x64"), ("resnet.arch", "resnet18", "3x64x64"),
        ("nin_v2.arch", None, "3x96x96")]
SLOW = [("googlenet.arch", None, "3x64x64"), ("mobilenet_v3_large.arch", None, "3x96x96"), ("resnet.arch", "resnet50", "3x96x96"),
        ("resnet.arch", "resnet34", "3x64x64"), ("efficientnet.arch", "b0", "3x96x96"),
        ("efficientnet.arch", "b3", "3x64x64"),
        ("inception_v3.arch", None, "3x139x139"), ("nin_v1.arch", None, "3x64x64"),
        # the newer zoo, the smallest variant of each file (Wide ResNet's, ResNeXt's blocks twice as wide, under
        # heavy); the largest networks at 32×32 (CI's time)
        ("alexnet.arch", None, "3x64x64"), ("vgg.arch", "vgg11", "3x32x32"), ("squeezenet.arch", "squeezenet1_1", "3x64x64"),
        ("densenet.arch", "densenet121", "3x32x32"), ("shufflenet_v2.arch", "shufflenet_v2_x0_5", "3x64x64"),
        ("mobilenet_v2.arch", None, "3x64x64"), ("mnasnet.arch", "mnasnet0_5", "3x64x64"),
        ("resnext.arch", "resnext50_32x4d", "3x32x32"), ("regnet.arch", "regnet_x_400mf", "3x64x64"), ("regnet.arch", "regnet_y_400mf", "3x64x64"),
        ("efficientnet_v2.arch", "s", "3x32x32"), ("convnext.arch", "convnext_tiny", "3x32x32")]
# and at 64×64, where fewer fields cover the whole input, with the other VGG and SqueezeNet, and AlexNet at
# its own size (its 6×6 pool then an identity, with a field), and the deepest ResNets and EfficientNet (ResNet-50's
# and B3's blocks, more of them: 43 s of CI's CPU): minutes here, not in CI
HEAVY = [("resnet.arch", "resnet101", "3x64x64"), ("resnet.arch", "resnet152", "3x64x64"),
         ("efficientnet.arch", "b7", "3x64x64"), ("alexnet.arch", None, "3x224x224"), ("vgg.arch", "vgg11_bn", "3x64x64"),
         ("squeezenet.arch", "squeezenet1_0", "3x64x64"), ("densenet.arch", "densenet121", "3x64x64"),
         ("resnext.arch", "resnext50_32x4d", "3x64x64"), ("wide_resnet.arch", "wide_resnet50_2", "3x64x64"),
         ("efficientnet_v2.arch", "s", "3x64x64"), ("convnext.arch", "convnext_tiny", "3x64x64")]


class Probed(Interpreted):
    """The IR run by torch layer by layer, returning every layer's output (joins included)."""

    def forward(self, x, until=None):
        return self.values(x, with_aux=False, until=until)


def positive(model: nn.Module) -> nn.Module:
    """Weights 1/fan-in (every output an average of its inputs: the values neither vanish nor saturate a
    hard sigmoid), no biases, batch norm the identity, max pools averaging over the same windows. A layer
    norm (ConvNeXt's, over the channels at each position: it moves no field) is made the identity too: the
    equal weights send back the same gradient to every channel, which its normalisation cancels. A ReLU6 is
    a ReLU: MobileNetV2's residual adds double the values, which pass 6 by its fourth stage."""
    with torch.no_grad():
        for name, m in list(model.named_modules()):
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.weight.fill_(1.0 / m.weight[0].numel())
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                m.weight.fill_(1.0), m.bias.zero_(), m.running_mean.zero_(), m.running_var.fill_(1.0)
            elif isinstance(m, nn.LayerNorm):  # torchvision's LayerNorm2d too
                _replace(model, name, nn.Identity())
            elif isinstance(m, nn.ReLU6):
                _replace(model, name, nn.ReLU())
            elif isinstance(m, nn.MaxPool2d):
                _replace(model, name, nn.AvgPool2d(m.kernel_size, m.stride, m.padding, ceil_mode=m.ceil_mode))
            elif isinstance(m, nn.AdaptiveMaxPool2d):
                _replace(model, name, nn.AdaptiveAvgPool2d(m.output_size))
            else:  # a module's own weights (ConvNeXt's layer scale)
                for tensor in m.parameters(recurse=False):
                    tensor.fill_(1.0)
    return model


def _replace(model, name, module):
    parent, _, leaf = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, leaf, module)


def probes(graph) -> list[str]:
    """The output of every section entry (a table row, or one repeat of it), the first layers, and up to
    ten joins (residual adds, concats, SE gates) spread over the network."""
    layers = graph.layers()
    maps = {l.name for l in layers if len(l.out_shape) == 3 and not l.aux} - without_a_field(graph)
    names = []
    for element in graph.elements:
        last = [l.name for l in layers if l.name == element.path or l.name.startswith(element.path + ".")]
        if last and last[-1] in maps:
            names.append(last[-1])
    joins = [l.name for l in layers if l.op in ("add", "concat", "multiply") and l.name in maps]
    names += [l.name for l in layers[:6] if l.name in maps] + joins[::max(1, len(joins) // 10)]
    order = [l.name for l in layers]
    return sorted(set(names), key=order.index)


def without_a_field(graph) -> set[str]:
    """The layers at or after a window no stride describes: an adaptive pool whose output does not divide
    its input (AlexNet's and VGG's 6×6 and 7×7 pools, given a smaller map at a small input), where
    receptive_fields says None."""
    beyond = set()
    for layer in graph.layers():
        if layer.spec.window(layer) == IRREGULAR or beyond.intersection(layer.inputs):
            beyond.add(layer.name)
    return beyond


def support(graph, names: list[str]) -> dict[str, tuple]:
    """For each layer, the bounding box ((top, left), (bottom, right)) of the input pixels on which its
    central output element (summed over channels) depends: one backward for a batch of up to 16 layers (in
    the network's order, so a batch runs the network only as far as its last layer), a sample a layer. Only
    the input asks for a gradient: the weights' would be a third of the work, unused."""
    with torch.device("meta"):  # positive() writes every weight: VGG's 133 M are not drawn first
        model = Probed(graph).double()
    model = positive(model.to_empty(device="cpu").eval()).requires_grad_(False)
    found = {}
    for chunk in range(0, len(names), 16):
        group = names[chunk:chunk + 16]
        x = torch.full((len(group), *graph.input_shape), 0.5, dtype=torch.float64, requires_grad=True)
        values = model(x, until=group[-1])
        total = 0
        for b, name in enumerate(group):
            _, h, w = graph.layer(name).out_shape
            total = total + values[name][b, :, h // 2, w // 2].sum()
        total.backward()
        for b, name in enumerate(group):
            rows = torch.nonzero(x.grad[b].abs().sum(0).sum(1)).flatten()
            cols = torch.nonzero(x.grad[b].abs().sum(0).sum(0)).flatten()
            found[name] = ((int(rows[0]), int(cols[0])), (int(rows[-1]), int(cols[-1])))
    return found


def assert_fields_are_the_gradient_support(file, variant, size):
    graph = build_graph(ZOO / file, variant=variant, input=size)
    fields = receptive_fields(graph)
    names = probes(graph)
    assert len(names) >= 5
    assert all(fields[name] is None for name in without_a_field(graph))
    measured = support(graph, names)
    for name in names:
        _, h, w = graph.layer(name).out_shape
        field = fields[name]
        assert field is not None, name
        assert field.clipped((h // 2, w // 2)) == measured[name], (name, field)


@pytest.mark.parametrize(("file", "variant", "size"), FAST)
def test_fields_are_the_gradient_support(file, variant, size):
    assert_fields_are_the_gradient_support(file, variant, size)


@pytest.mark.slow
@pytest.mark.parametrize(("file", "variant", "size"), SLOW)
def test_fields_are_the_gradient_support_slow(file, variant, size):
    assert_fields_are_the_gradient_support(file, variant, size)


@pytest.mark.heavy
@pytest.mark.parametrize(("file", "variant", "size"), HEAVY)
def test_fields_are_the_gradient_support_heavy(file, variant, size):
    assert_fields_are_the_gradient_support(file, variant, size)


def test_the_formulas_on_a_small_network():
    # by hand (Araujo et al. eq. 2): a 3×3/1 pad 1, then a 3×3/2 pad 0 dilated 2, then a 2×2/2 pool
    text = ("network small()\ninput 1 x 32 x 32\n\nlayers:\n    conv(4, 3)\n    conv(4, 3, stride = 2, padding = 0, "
            "dilation = 2)\n    maxpool(2)\n    global_avgpool()\n")
    graph = build_graph(ZOO / "small.arch", text=text)
    fields = receptive_fields(graph)
    sizes = lambda f: (f.size, f.jump, f.start)  # noqa: E731
    assert sizes(fields["layers.0"]) == ((3, 3), (1, 1), (-1, -1))
    assert sizes(fields["layers.1"]) == ((7, 7), (2, 2), (-1, -1))  # 3 + 2·(3 - 1)·1; 32 → 14
    assert sizes(fields["layers.2"]) == ((9, 9), (4, 4), (-1, -1))  # 7 + (2 - 1)·2; 14 → 7
    assert sizes(fields["layers.3"]) == ((9 + 6 * 4,) * 2, (28, 28), (-1, -1))  # the 7×7 map, whole
    # the last output of layers.1 starts at -1 + 13·2 = 25 and ends at 31: every pixel is reached
    assert (fields["layers.1"].first, fields["layers.1"].last) == ((0, 0), (31, 31))


def test_an_se_gate_joins_the_whole_map_to_every_field():
    graph = build_graph(ZOO / "mobilenet_v3_small.arch")
    fields = receptive_fields(graph)
    first_gate = next(l for l in graph.layers() if l.op == "multiply")
    assert fields[first_gate.inputs[0]].size == (7, 7) and fields[first_gate.name].covers((224, 224))


def test_check_reports_fields_per_layer_and_row_in_json_and_the_table():
    import json

    result = run_archc("check", "architectures/resnet.arch", "--variant", "resnet50", "--rf", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    stem_pool = next(l for l in data["layers"] if l["name"] == "features.1")
    assert stem_pool["rf"] == {"size": [11, 11], "jump": [4, 4], "start": [-5, -5]}
    rows = {r["line"]: r for r in data["rows"]}
    maps = [r for r in rows.values() if len(r["output_shape"]) == 3 and r["output_shape"][1] > 1]
    last_conv_row = max(maps, key=lambda r: r["line"])  # the last 7×7 stage: ResNet's stride 32
    assert last_conv_row["rf"]["jump"] == [32, 32]
    table = run_archc("check", "architectures/resnet.arch", "--variant", "resnet50", "--rf")
    assert "RF (jump)" in table.stdout and "11×11 (4)" in table.stdout


def test_report_rf_equals_the_module():
    report = archc.check(ZOO / "nin.arch")
    fields = receptive_fields(build_graph(ZOO / "nin.arch"))
    for layer in report.layers:
        field = fields[layer.name]
        if field is not None:
            assert (layer.rf.size, layer.rf.jump, layer.rf.start) == (list(field.size), list(field.jump),
                                                                       list(field.start))
