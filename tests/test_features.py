"""Feature taps (compiler/taps.py) and the backbone `archc.build(path, features=...)` (compiler/features.py)
against torchvision's `create_feature_extractor` on the torchvision twins: the same maps, in shape and in
value, once the reference's weights are ported."""

import json

import pytest
from conftest import ZOO, run_archc

import archc
from archc.compiler.check import build_graph
from archc.compiler.features import backbone
from archc.compiler.taps import taps
from archc.dsl.diagnostics import ArchError

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")
from torchvision.models.feature_extraction import create_feature_extractor  # noqa: E402

# (file, variant, torchvision builder and its arguments, archc tap -> torchvision node)
TWINS = {
    "resnet18": ("resnet.arch", "resnet18", ("resnet18", {}),
                 {"features.0": "relu", "features.3": "layer1", "features.5": "layer2", "features.7": "layer3",
                  "features.9": "layer4"}),
    "mobilenet_v3_small": ("mobilenet_v3_small.arch", None, ("mobilenet_v3_small", {}),
                           {f"features.{i}": f"features.{i}" for i in (0, 1, 3, 8, 12)}),
    "googlenet": ("googlenet.arch", None, ("googlenet", {"aux_logits": True, "init_weights": False}),
                  {"features.0": "conv1", "features.2": "conv3", "features.5": "inception3b",
                   "features.11": "inception4e", "features.14": "inception5b"}),
    "resnet50": ("resnet.arch", "resnet50", ("resnet50", {}),
                 {"features.0": "relu", "features.4": "layer1", "features.8": "layer2", "features.14": "layer3",
                  "features.17": "layer4"}),
    "mobilenet_v3_large": ("mobilenet_v3_large.arch", None, ("mobilenet_v3_large", {}),
                           {f"features.{i}": f"features.{i}" for i in (1, 3, 6, 12, 16)}),
    "efficientnet_b0": ("efficientnet.arch", "b0", ("efficientnet_b0", {}),
                        {"features.1": "features.1", "features.3": "features.2", "features.5": "features.3",
                         "features.11": "features.5", "features.16": "features.7"}),
    "inception_v3": ("inception_v3.arch", None, ("inception_v3", {"aux_logits": True, "init_weights": False}),
                     {"stem.2": "Conv2d_2b_3x3", "stem.5": "Conv2d_4a_3x3", "grid35.2": "Mixed_5d",
                      "grid17.4": "Mixed_6e", "grid8.2": "Mixed_7c"}),
}
FAST = ["resnet18", "mobilenet_v3_small", "googlenet"]
RESNET_STAGES = {"features.0": "relu", "features.4": "layer1", "features.8": "layer2", "features.14": "layer3",
                 "features.17": "layer4"}
# The newer zoo, the smallest variant of each file, at an input small enough for CI (the last stage 1×1 at
# 32×32: a tap all the same, as torchvision's node is): name -> (file, variant, input, archc tap -> node)
SMALL = {
    "alexnet": ("alexnet.arch", None, "3x64x64",
                {"features.0": "features.1", "features.2": "features.4", "features.6": "features.11",
                 "features.7": "features.12"}),
    "vgg11": ("vgg.arch", "vgg11", "3x32x32",
              {"features.0": "features.1", "features.2": "features.4", "features.5": "features.9",
               "features.8": "features.14", "features.11": "features.19", "features.12": "features.20"}),
    "vgg11_bn": ("vgg.arch", "vgg11_bn", "3x32x32",
                 {"features.0": "features.2", "features.2": "features.6", "features.5": "features.13",
                  "features.8": "features.20", "features.11": "features.27", "features.12": "features.28"}),
    "squeezenet1_0": ("squeezenet.arch", "squeezenet1_0", "3x64x64",
                      {"features.0": "features.1", "features.4": "features.5", "features.9": "features.10",
                       "classifier.1": "classifier.2"}),
    "squeezenet1_1": ("squeezenet.arch", "squeezenet1_1", "3x64x64",
                      {"features.0": "features.1", "features.3": "features.4", "features.6": "features.7",
                       "classifier.1": "classifier.2"}),
    "densenet121": ("densenet.arch", "densenet121", "3x32x32",
                    {"features.0": "features.relu0", "features.8": "features.transition1.conv",
                     "features.22": "features.transition2.conv", "features.48": "features.transition3.conv",
                     "features.65": "features.denseblock4"}),
    "shufflenet_v2_x0_5": ("shufflenet_v2.arch", "shufflenet_v2_x0_5", "3x32x32",
                           {"features.0": "conv1", "features.1": "maxpool", "features.5": "stage2",
                            "features.13": "stage3", "features.18": "conv5"}),
    "mobilenet_v2": ("mobilenet_v2.arch", None, "3x32x32",
                     {"features.1": "features.1", "features.3": "features.3", "features.6": "features.6",
                      "features.13": "features.13", "head.0": "features.18"}),
    "mnasnet0_5": ("mnasnet.arch", "mnasnet0_5", "3x32x32",
                   {"features.1": "layers.7", "features.4": "layers.8", "features.7": "layers.9",
                    "features.12": "layers.11", "classifier.0": "layers.16"}),
    "resnext50_32x4d": ("resnext.arch", "resnext50_32x4d", "3x32x32", RESNET_STAGES),
    "wide_resnet50_2": ("wide_resnet.arch", "wide_resnet50_2", "3x32x32", RESNET_STAGES),
    **{name: ("regnet.arch", name, "3x32x32",
              {"features.0": "stem", "features.1": "trunk_output.block1", stage2: "trunk_output.block2",
               "features.10": "trunk_output.block3", stage4: "trunk_output.block4"})
       for name, stage2, stage4 in [("regnet_x_400mf", "features.3", "features.22"),
                                    ("regnet_y_400mf", "features.4", "features.16")]},
    "efficientnet_v2_s": ("efficientnet_v2.arch", "s", "3x32x32",
                          {"features.2": "features.1", "features.6": "features.2", "features.10": "features.3",
                           "features.25": "features.5", "features.40": "features.6"}),
    "convnext_tiny": ("convnext.arch", "convnext_tiny", "3x32x32",
                      {"features.3": "features.1", "features.7": "features.3", "features.17": "features.5",
                       "features.21": "features.7"}),
}


def assert_same_maps(twin: str):
    from oracles import randomise

    file, variant, (builder, kwargs), nodes = TWINS[twin]
    graph = build_graph(ZOO / file, variant=variant)
    reference = randomise(getattr(torchvision.models, builder)(**kwargs)).eval()
    assert_same_maps_as(reference, archc.build(ZOO / file, variant=variant), graph, nodes)


def assert_same_maps_small(twin: str):
    """A newer zoo network, built on the meta device then given memory, as the torchvision ports do
    (tests/test_zoo_torchvision.py): `randomise` writes every tensor of the reference, the port every one
    of the network, and VGG's 133 M weights are not initialised twice for nothing."""
    from oracles import randomise
    from test_zoo_torchvision import meta_reference

    file, variant, size, nodes = SMALL[twin]
    graph = build_graph(ZOO / file, variant=variant, input=size)
    with torch.device("meta"):
        network = archc.build(ZOO / file, variant=variant, input=size)
    reference = randomise(meta_reference(twin).to_empty(device="cpu")).eval()
    assert_same_maps_as(reference, network.to_empty(device="cpu"), graph, nodes)


def assert_same_maps_as(reference, network, graph, nodes: dict):
    # every reduction tap is mapped: the static table is torchvision's stages
    assert [t.name for t in taps(graph) if not t.output] == list(nodes)
    archc.port(network, reference)
    ours = backbone(network, graph, list(nodes)).eval()
    theirs = create_feature_extractor(reference, return_nodes={v: k for k, v in nodes.items()}).eval()
    x = torch.randn(2, *graph.input_shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a, b = ours(x), theirs(x)
    assert list(a) == list(nodes)
    by_name = {t.name: t for t in taps(graph)}
    for name in nodes:
        assert a[name].shape == b[name].shape == (2, *by_name[name].shape)
        scale = b[name].abs().max()
        assert scale > 0 and (a[name] - b[name]).abs().max() <= 1e-5 * scale, name


@pytest.mark.parametrize("twin", FAST)
def test_backbone_equals_torchvisions_feature_extractor(twin):
    assert_same_maps(twin)


@pytest.mark.slow
@pytest.mark.parametrize("twin", [t for t in TWINS if t not in FAST])
def test_backbone_equals_torchvisions_feature_extractor_slow(twin):
    assert_same_maps(twin)


# VGG's second and Wide ResNet (ResNeXt's blocks, twice as wide) are the costliest: not in CI
HEAVY = ["vgg11_bn", "wide_resnet50_2"]


@pytest.mark.slow
@pytest.mark.parametrize("twin", [t for t in SMALL if t not in HEAVY])
def test_backbone_equals_torchvisions_feature_extractor_small(twin):
    assert_same_maps_small(twin)


@pytest.mark.heavy
@pytest.mark.parametrize("twin", HEAVY)
def test_backbone_equals_torchvisions_feature_extractor_small_heavy(twin):
    assert_same_maps_small(twin)


def test_features_true_is_a_list_of_every_reduction_step_and_stops_there():
    model = archc.build(ZOO / "resnet.arch", variant="resnet18", features=True)
    assert "classifier" not in dict(model.named_children())  # the head is not run, nor held
    maps = model(torch.zeros(1, 3, 64, 64))
    assert [m.shape[1] for m in maps] == [64, 64, 128, 256, 512]
    assert [64 // m.shape[2] for m in maps] == [2, 4, 8, 16, 32]


def test_a_last_stage_the_convolutions_bring_to_1x1_is_a_tap_and_the_global_pool_is_not():
    # ResNet-18 at 32×32 (CIFAR's size): layer4 is 512×1×1, as torchvision's create_feature_extractor gives it
    model = archc.build(ZOO / "resnet.arch", variant="resnet18", input="3x32x32", features=True).eval()
    maps = model(torch.zeros(1, 3, 32, 32))
    assert [tuple(m.shape[1:]) for m in maps] == [(64, 16, 16), (64, 8, 8), (128, 4, 4), (256, 2, 2), (512, 1, 1)]
    # the head's global pool (NiN's, to 10×1×1) and ConvNeXt's layer norm after it are not
    assert [t.name for t in taps(build_graph(ZOO / "nin.arch")) if not t.output][-1] == "features.7"
    assert [t.layer for t in taps(build_graph(ZOO / "convnext.arch", input="3x32x32"))][-2:] == ["features.21.add~150"] * 2


def test_named_outputs_are_taps():
    graph = build_graph(ZOO / "googlenet.arch")
    named = {t.name: t for t in taps(graph) if t.output}
    assert (named["inception4a"].channels, named["inception4a"].reduction) == (512, 16)
    model = archc.build(ZOO / "googlenet.arch", features=["inception4a", "features.14"]).eval()
    with torch.no_grad():
        maps = model(torch.zeros(1, 3, 224, 224))
    assert {k: tuple(v.shape[1:]) for k, v in maps.items()} == {"inception4a": (512, 14, 14),
                                                                "features.14": (1024, 7, 7)}


def test_an_unknown_tap_is_a_diagnostic_with_a_did_you_mean():
    with pytest.raises(ArchError) as error:
        archc.build(ZOO / "resnet.arch", variant="resnet18", features=["features.77"])
    diagnostic = error.value.diagnostics[0]
    assert diagnostic.code == "E200" and "no feature tap 'features.77'" in diagnostic.message
    assert diagnostic.hint == "did you mean 'features.7'?"
    assert diagnostic.span.line == 10  # the network's header


def test_check_lists_the_taps_in_json_and_the_table():
    result = run_archc("check", "architectures/resnet.arch", "--variant", "resnet50", "--json")
    data = json.loads(result.stdout)
    assert [(t["name"], t["channels"], t["reduction"]) for t in data["taps"] if not t["output"]] == [
        ("features.0", 64, 2), ("features.4", 256, 4), ("features.8", 512, 8), ("features.14", 1024, 16),
        ("features.17", 2048, 32)]
    # the stem's 11×11 from -5 (jump 4), then three 3×3 convs (padding 1): 11 + 3·2·4 = 35 from -5 - 3·4 = -17
    assert data["taps"][1]["rf"] == {"size": [35, 35], "jump": [4, 4], "start": [-17, -17]}
    table = run_archc("check", "architectures/resnet.arch", "--variant", "resnet50", "--taps")
    assert "feature taps" in table.stdout and "features.14" in table.stdout
