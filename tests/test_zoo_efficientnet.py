"""The EfficientNet zoo file (Table 1 of Tan & Le 2019, B0 … B7 by compound scaling) against torchvision's
efficientnet_b0 … efficientnet_b7: the acceptance figures and torchinfo's at each variant's own resolution,
every conv/bn/linear layer's shape in forward order, the logits after porting torchvision's weights position
by position, the stochastic-depth probabilities, and the batch-norm and dropout settings."""

import json
import math

import pytest

import archc
from conftest import ZOO, run_archc
from oracles import archc_layers, assert_ports, hooked_layers, randomise

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")
torchinfo = pytest.importorskip("torchinfo")
from torch import nn  # noqa: E402

FILE = ZOO / "efficientnet.arch"
# variant -> (resolution, params, MACs at 1000 classes, batch 1, 3×res×res). The resolutions are those of
# torchvision's weights (their transforms' crop size); B2's is 288, where the paper says 260.
FIGURES = {
    "b0": (224, 5_288_548, 385_867_108),
    "b1": (240, 7_794_184, 686_880_040),
    "b2": (288, 9_109_994, 1_087_613_434),
    "b3": (300, 12_233_232, 1_827_249_768),
    "b4": (380, 19_341_616, 4_393_926_264),
    "b5": (456, 30_389_784, 10_266_598_808),
    "b6": (528, 43_040_704, 19_067_871_568),
    "b7": (600, 66_347_960, 37_746_269_112),
}


def reference(variant: str) -> nn.Module:
    return getattr(torchvision.models, f"efficientnet_{variant}")()


@pytest.mark.parametrize("variant", FIGURES)
def test_figures_equal_the_acceptance_figures(variant):
    res, params, macs = FIGURES[variant]
    report = archc.check(FILE, variant=variant)
    assert report.ok, report.diagnostics
    assert report.input == [3, res, res]
    assert report.output_shape == [1000]
    assert (report.params, report.macs) == (params, macs)
    stats = torchinfo.summary(reference(variant), input_size=(1, 3, res, res), verbose=0, mode="eval")
    assert (stats.total_params, stats.total_mult_adds) == (params, macs)


@pytest.mark.parametrize("variant", FIGURES)
def test_cli_json_gives_the_figures(variant):
    res, params, macs = FIGURES[variant]
    result = run_archc("check", "architectures/efficientnet.arch", "--variant", variant, "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert (data["params"], data["macs"], data["input"]) == (params, macs, [3, res, res])


def test_defaults_are_b0_and_the_table_holds():
    default, b0 = archc.check(FILE), archc.check(FILE, variant="b0")
    assert (default.params, default.macs) == (b0.params, b0.macs) == FIGURES["b0"][1:]
    assert not default.diagnostics  # the resolution cells hold at the defaults, so they are checked


def test_block_counts_follow_torchvisions_depth_scaling():
    """ceil(#Layers × depth) MBConv blocks (16 at B0, 55 at B7), each with one SE gate, and a skip where
    torchvision has one."""
    for variant in FIGURES:
        report = archc.check(FILE, variant=variant)
        with torch.device("meta"):
            mbconvs = [m for m in reference(variant).modules() if isinstance(m, torchvision.models.efficientnet.MBConv)]
        assert sum(l.op == "multiply" for l in report.layers) == len(mbconvs), variant
        assert sum(l.op == "add" for l in report.layers) == sum(m.use_res_connect for m in mbconvs), variant


def test_every_layer_shape_and_params_match_torchvision_in_order():
    report = archc.check(FILE, variant="b0", input="3x64x64")
    ours = archc_layers(report)
    theirs = hooked_layers(reference("b0"), torch.zeros(1, 3, 64, 64))
    # stem 2, the MBConv1 6, fifteen MBConv6 8 each (expand, depthwise, SE, project), head conv 2, linear 1
    assert len(ours) == len(theirs) == 131
    assert ours == theirs


@pytest.mark.parametrize("variant", ["b0", "b1"])
def test_ported_torchvision_weights_give_the_same_logits(variant):
    ref = randomise(reference(variant), seed=3).eval()
    model = archc.build(FILE, variant=variant, input="3x64x64")
    assert_ports(model, ref, torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1)))


@pytest.mark.parametrize("variant", ["b0", "b1"])
def test_stochastic_depth_probabilities_equal_torchvisions(variant):
    """torchvision gives every MBConv a StochasticDepth(0.2 · i / blocks, "row") but applies it only on the
    skip connection; archc makes the layer only where there is a skip and p > 0 (not the first block)."""
    with torch.device("meta"):
        ref = reference(variant)
    mbconvs = [m for m in ref.modules() if isinstance(m, torchvision.models.efficientnet.MBConv)]
    assert [m.stochastic_depth.p for m in mbconvs] == [0.2 * i / len(mbconvs) for i in range(len(mbconvs))]
    theirs = [(m.stochastic_depth.p, m.stochastic_depth.mode) for m in mbconvs
              if m.use_res_connect and m.stochastic_depth.p > 0]
    model = archc.build(FILE, variant=variant, input="3x32x32")
    # the generated file defines its own StochasticDepth (it imports only torch), and writes p short:
    # 0.0375 where torchvision computes 0.2 * 3 / 16 = 0.037500000000000006
    ours = [(m.p, m.mode) for m in model.modules() if type(m).__name__ == "StochasticDepth"]
    assert [mode for _p, mode in ours] == [mode for _p, mode in theirs]
    assert all(math.isclose(a, b, rel_tol=1e-15) for (a, _), (b, _) in zip(ours, theirs, strict=True))
    assert len(ours) == {"b0": 9, "b1": 16}[variant]


@pytest.mark.parametrize("variant", ["b0", "b5"])
def test_batchnorm_and_dropout_settings_equal_torchvisions(variant):
    """B0 … B4 use BatchNorm2d's defaults, B5 … B7 eps 0.001 and momentum 0.01; dropout grows with the variant."""
    with torch.device("meta"):
        ref = reference(variant)
        model = archc.build(FILE, variant=variant, input="3x32x32")

    def settings(m):
        return ([(b.eps, b.momentum) for b in m.modules() if isinstance(b, nn.BatchNorm2d)],
                [d.p for d in m.modules() if isinstance(d, nn.Dropout)])

    assert settings(model) == settings(ref)
