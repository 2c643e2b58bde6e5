"""GoogLeNet (Table 1 of Szegedy et al. 2014) and Inception v3 (Table 1 of Szegedy et al. 2015) zoo files
against torchvision's googlenet and inception_v3 (init_weights=False, aux heads on and off): the acceptance
figures, torchinfo's figures, seed 000's "Inception" figures, every conv/bn/linear layer's shape in forward
order, and the logits — eval and training mode, auxiliary heads included — after porting torchvision's
weights position by position."""

import copy
import json

import pytest

import archc
from conftest import ZOO, run_archc
from oracles import archc_layers, assert_ports, assert_same_logits, hooked_layers, randomise

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")
torchinfo = pytest.importorskip("torchinfo")
from torch import nn  # noqa: E402

# file -> (torchvision constructor, default input side, params with aux, params without, MACs), 1000 classes,
# batch 1, eval mode (auxiliary heads count in the params, not in the MACs, as torchinfo counts them)
FIGURES = {
    "googlenet.arch": ("googlenet", 224, 13_004_888, 6_624_904, 1_498_391_752),
    "inception_v3.arch": ("inception_v3", 299, 27_161_264, 23_834_568, 5_713_251_528),
}
# a reduced input for the per-layer shapes and the eval logits (inception_v3's smallest is 75×75)
SMALL = {"googlenet.arch": 112, "inception_v3.arch": 75}
CASES = [pytest.param((name, aux), id=f"{name.removesuffix('.arch')}-{'aux' if aux else 'noaux'}")
         for name in FIGURES for aux in (True, False)]


def reference(name: str, aux: bool = True, **kwargs) -> nn.Module:
    return getattr(torchvision.models, FIGURES[name][0])(aux_logits=aux, init_weights=False, **kwargs)


@pytest.fixture(scope="module", params=CASES)
def case(request):
    """(file, aux, the torchvision model), each built once."""
    name, aux = request.param
    return name, aux, reference(name, aux)


def test_figures_equal_the_acceptance_figures_and_torchinfo(case):
    name, aux, ref = case
    _, side, with_aux, without_aux, macs = FIGURES[name]
    report = archc.check(ZOO / name, aux=aux)
    assert report.ok, report.diagnostics
    assert report.input == [3, side, side]
    assert report.output_shape == [1000]
    stats = torchinfo.summary(ref, input_size=(1, 3, side, side), verbose=0, mode="eval")
    assert report.params == stats.total_params == (with_aux if aux else without_aux)
    assert report.macs == stats.total_mult_adds == macs
    assert sum(p.numel() for p in ref.parameters()) == report.params


@pytest.mark.parametrize("name", FIGURES)
def test_the_paper_cells_are_checked_at_the_defaults(name):
    """The size cells (and GoogLeNet's params/ops cells) hold and are checked: no note N001."""
    report = archc.check(ZOO / name)
    assert report.ok and not report.diagnostics, report.diagnostics


@pytest.mark.parametrize("name", FIGURES)
def test_cli_json_gives_the_figures(name):
    _, _, with_aux, without_aux, macs = FIGURES[name]
    for aux, params in (("true", with_aux), ("false", without_aux)):
        result = run_archc("check", f"architectures/{name}", "--set", f"aux={aux}", "--json")
        assert result.returncode == 0, result.stderr
        data = json.loads(result.stdout)
        assert (data["params"], data["macs"]) == (params, macs)


def test_googlenet_paper_figures_are_checked_to_the_papers_rounding(tmp_path):
    """The conv 3×3 row's 360M and the linear row's 1M are checked: a wrong figure is E305 on its cell."""
    source = (ZOO / "googlenet.arch").read_text()
    assert "| 360M |" in source and "| 1M  |" in source
    broken = tmp_path / "googlenet.arch"
    broken.write_text(source.replace('use "blocks/inception.arch"', f'use "{ZOO / "blocks/inception.arch"}"')
                      .replace("| 360M |", "| 350M |"))
    report = archc.check(broken)
    assert [d.code for d in report.diagnostics if d.severity == "error"][:1] == ["E305"]


def test_seed_000_inception():
    """Seed 000's "Inception": torchvision's inception_v3 with 3 classes and the auxiliary head, summarised
    by torchinfo at 3×224×224 and batch 32."""
    report = archc.check(ZOO / "inception_v3.arch", input="3x224x224", batch=32, num_classes=3)
    assert report.ok, report.diagnostics
    assert report.output_shape == [3]
    assert report.params == 24_351_718
    assert round(report.macs / 1e9, 2) == 90.75
    assert report.memory.input_mb == 19.27
    assert report.memory.forward_backward_mb == 2379.95
    # torchinfo agrees at batch 1 (MACs scale with the batch)
    stats = torchinfo.summary(reference("inception_v3.arch", num_classes=3), input_size=(1, 3, 224, 224),
                              verbose=0, mode="eval")
    assert stats.total_params == report.params
    assert stats.total_mult_adds * 32 == report.macs


def test_every_layer_shape_and_params_match_torchvision_in_order(case):
    name, aux, ref = case
    side = SMALL[name]
    report = archc.check(ZOO / name, input=f"3x{side}x{side}", aux=aux)
    assert report.ok, report.diagnostics
    # eval mode: torchvision runs no auxiliary head
    ours = archc_layers(report, aux=False)
    assert ours == hooked_layers(ref, torch.zeros(1, 3, side, side))
    assert any(l.aux for l in report.layers) == aux


def test_auxiliary_head_layers_match_torchvision():
    """In training mode torchvision runs the heads where they branch off; archc lists them where they are
    registered. The same layers, as sets, at the default input."""
    for name in FIGURES:
        side = FIGURES[name][1]
        report = archc.check(ZOO / name)
        ours = archc_layers(report)
        theirs = hooked_layers(reference(name), torch.zeros(2, 3, side, side), train=True)
        assert sorted(ours) == sorted(theirs)


def _no_dropout(model: nn.Module) -> nn.Module:
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.p = 0.0
    return model


def test_ported_torchvision_weights_give_the_same_eval_logits(case):
    name, aux, ref = case
    side = SMALL[name]
    ref = randomise(copy.deepcopy(ref), seed=3).eval()
    model = archc.build(ZOO / name, input=f"3x{side}x{side}", aux=aux)
    assert_ports(model, ref, torch.randn(2, 3, side, side, generator=torch.Generator().manual_seed(1)))


@pytest.mark.parametrize("name", FIGURES)
def test_ported_weights_give_the_same_training_outputs(name):
    """Training mode with the auxiliary heads: archc returns (logits, aux…) in declaration order, torchvision
    GoogLeNetOutputs(logits, aux_logits2, aux_logits1) and InceptionOutputs(logits, aux_logits). Dropout is
    set to 0 on both so that the outputs are deterministic; batch norm uses the batch's statistics."""
    side = FIGURES[name][1] if name == "inception_v3.arch" else SMALL[name]  # inception_v3's head needs 299
    ref = _no_dropout(randomise(reference(name), seed=5)).train()
    model = _no_dropout(archc.build(ZOO / name, input=f"3x{side}x{side}")).train()
    archc.port(model, ref)
    x = torch.randn(2, 3, side, side, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected, actual = ref(x), model(x)
    if name == "googlenet.arch":
        expected = (expected.logits, expected.aux_logits1, expected.aux_logits2)
    else:
        expected = (expected.logits, expected.aux_logits)
    assert isinstance(actual, tuple) and len(actual) == len(expected)
    for e, a in zip(expected, actual):
        assert e.shape == a.shape == (2, 1000)
        assert_same_logits(e, a)


@pytest.mark.parametrize("name", FIGURES)
def test_without_aux_training_gives_the_logits_alone(name):
    side = SMALL[name]
    model = archc.build(ZOO / name, input=f"3x{side}x{side}", aux=False, num_classes=5).train()
    out = model(torch.randn(2, 3, side, side))
    assert isinstance(out, torch.Tensor) and out.shape == (2, 5)


def test_googlenet_aux_heads_register_between_inception5b_and_the_classifier():
    """As torchvision registers aux1 and aux2: after inception5b, before the classifier."""
    names = [l.name for l in archc.check(ZOO / "googlenet.arch").layers]
    last_feature = max(i for i, n in enumerate(names) if n.startswith("features."))
    first_aux = min(i for i, n in enumerate(names) if n.startswith("aux"))
    first_classifier = min(i for i, n in enumerate(names) if n.startswith("classifier."))
    assert last_feature < first_aux < first_classifier
