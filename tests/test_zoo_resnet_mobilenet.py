"""The ResNet (Table 1 of He et al. 2015) and MobileNetV3-Large (Table 1 of Howard et al. 2019) zoo files
against torchvision: the acceptance figures, torchinfo's figures, every conv/bn/linear layer's shape in
forward order, and the logits after porting torchvision's weights position by position."""

import copy
import json

import pytest

import archc
from conftest import ZOO, run_archc
from oracles import archc_layers, assert_ports, hooked_layers, randomise

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")
torchinfo = pytest.importorskip("torchinfo")
from torch import nn  # noqa: E402

# (file, variant) -> (torchvision constructor, params, MACs at 1000 classes, batch 1, 3×224×224)
FIGURES = {
    ("mobilenet_v3_large.arch", None): ("mobilenet_v3_large", 5_483_032, 216_621_520),
    ("resnet.arch", "resnet18"): ("resnet18", 11_689_512, 1_814_083_944),
    ("resnet.arch", "resnet34"): ("resnet34", 21_797_672, 3_663_779_432),
    ("resnet.arch", "resnet50"): ("resnet50", 25_557_032, 4_089_238_376),
    ("resnet.arch", "resnet101"): ("resnet101", 44_549_160, 7_801_511_784),
    ("resnet.arch", "resnet152"): ("resnet152", 60_192_808, 11_513_779_048),
}
CASES = [pytest.param((name, variant), id=variant or name.removesuffix(".arch")) for name, variant in FIGURES]


@pytest.fixture(scope="module", params=CASES)
def case(request):
    """(file, variant, the torchvision model). Module scope: pytest groups the tests by case, so each
    torchvision model (60M parameters for resnet152) is constructed once; tests that change its
    weights work on a copy."""
    name, variant = request.param
    return name, variant, getattr(torchvision.models, FIGURES[name, variant][0])()


def test_figures_equal_the_acceptance_figures_and_torchinfo(case):
    name, variant, reference = case
    _, params, macs = FIGURES[name, variant]
    report = archc.check(ZOO / name, variant=variant)
    assert report.ok, report.diagnostics
    assert report.output_shape == [1000]
    stats = torchinfo.summary(reference, input_size=(1, 3, 224, 224), verbose=0, mode="eval")
    assert report.params == stats.total_params == params
    assert report.macs == stats.total_mult_adds == macs


def test_cli_json_gives_the_figures(case):
    name, variant, _ = case
    _, params, macs = FIGURES[name, variant]
    result = run_archc("check", f"architectures/{name}", *(["--variant", variant] if variant else []), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert (data["params"], data["macs"]) == (params, macs)


def test_every_layer_shape_and_params_match_torchvision_in_order(case):
    name, variant, reference = case
    # 3×112×112 keeps resnet152 quick on a CPU; every stage still has a map larger than 1×1.
    report = archc.check(ZOO / name, variant=variant, input="3x112x112")
    ours = archc_layers(report)
    theirs = hooked_layers(reference, torch.zeros(1, 3, 112, 112))
    assert ours == theirs


def tame_residual_branches(model: nn.Module) -> nn.Module:
    """Scale down the last batch norm of each ResNet residual branch: with `randomise`'s statistics the
    branches add up over 50 blocks to logits of 1e12 in resnet152; scaled by 0.2 they stay near 1e2."""
    from torchvision.models.resnet import BasicBlock, Bottleneck

    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (BasicBlock, Bottleneck)):
                last = m.bn3 if isinstance(m, Bottleneck) else m.bn2
                last.weight.mul_(0.2)
                last.bias.mul_(0.2)
    return model


def test_ported_torchvision_weights_give_the_same_logits(case):
    name, variant, reference = case
    # 3×64×64 and batch 2 keep resnet152 quick on a CPU (the last stage runs at 2×2).
    ref = tame_residual_branches(randomise(copy.deepcopy(reference), seed=3)).eval()
    model = archc.build(ZOO / name, variant=variant, input="3x64x64")
    assert_ports(model, ref, torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1)))


def test_resnet_defaults_are_resnet18():
    default, r18 = archc.check(ZOO / "resnet.arch"), archc.check(ZOO / "resnet.arch", variant="resnet18")
    assert (default.params, default.macs) == (r18.params, r18.macs) == FIGURES["resnet.arch", "resnet18"][1:]
    assert not default.diagnostics  # the size cells hold at the defaults, so they are checked


@pytest.mark.parametrize("variant,blocks", [("resnet18", 8), ("resnet34", 16), ("resnet50", 16), ("resnet101", 33),
                                            ("resnet152", 50)])
def test_every_resnet_block_adds_its_shortcut(variant, blocks):
    """Table 1's repeat counts give the blocks, and each block is residual (an add, then ReLU)."""
    report = archc.check(ZOO / "resnet.arch", variant=variant)
    assert sum(l.op == "add" for l in report.layers) == blocks
    with torch.device("meta"):  # the structure only: no weights are allocated
        model = getattr(torchvision.models, variant)()
    assert blocks == sum(len(getattr(model, f"layer{i}")) for i in range(1, 5))
