"""The zoo's torchvision classification CNNs, each family's file against torchvision 0.29: params and
torchinfo's mult-adds for every variant at the resolution of its weights (torchvision's models built on the
meta device, so that even RegNetY-128GF's 644 M parameters cost no memory), the batch-norm and dropout
settings of every variant, and the eval logits after porting torchvision's weights position by position — in
Python and with `archc port --from torchvision:NAME` — for a small variant of each family (the largest under
the slow marker). That the built module is the checked IR, for every variant, is tests/test_differential.py's
`test_every_zoo_variant_builds_the_checked_network`; what is particular to a family is in
tests/test_zoo_<family>.py."""

import math
import re

import pytest
from conftest import ZOO
from oracles import assert_ports, randomise

import archc
from archc.cli import main

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")
torchinfo = pytest.importorskip("torchinfo")
from torch import nn

# (file, variant) -> (torchvision builder, resolution of its DEFAULT weights, params, MACs), 1000 classes,
# batch 1: torchinfo 1.8's figures on torchvision 0.29, and archc check's
FIGURES = {
    ("alexnet.arch", None): ("alexnet", 224, 61_100_840, 714_682_664),
    ("vgg.arch", "vgg11"): ("vgg11", 224, 132_863_336, 7_616_525_288),
    ("vgg.arch", "vgg13"): ("vgg13", 224, 133_047_848, 11_320_718_312),
    ("vgg.arch", "vgg16"): ("vgg16", 224, 138_357_544, 15_483_821_032),
    ("vgg.arch", "vgg19"): ("vgg19", 224, 143_667_240, 19_646_923_752),
    ("vgg.arch", "vgg11_bn"): ("vgg11_bn", 224, 132_868_840, 7_616_530_792),
    ("vgg.arch", "vgg13_bn"): ("vgg13_bn", 224, 133_053_736, 11_320_724_200),
    ("vgg.arch", "vgg16_bn"): ("vgg16_bn", 224, 138_365_992, 15_483_829_480),
    ("vgg.arch", "vgg19_bn"): ("vgg19_bn", 224, 143_678_248, 19_646_934_760),
    ("squeezenet.arch", "squeezenet1_0"): ("squeezenet1_0", 224, 1_248_424, 823_270_824),
    ("squeezenet.arch", "squeezenet1_1"): ("squeezenet1_1", 224, 1_235_496, 351_741_288),
    ("densenet.arch", "densenet121"): ("densenet121", 224, 7_978_856, 2_834_246_312),
    ("densenet.arch", "densenet161"): ("densenet161", 224, 28_681_000, 7_728_128_008),
    ("densenet.arch", "densenet169"): ("densenet169", 224, 14_149_480, 3_360_002_728),
    ("densenet.arch", "densenet201"): ("densenet201", 224, 20_013_928, 4_291_595_944),
    ("mobilenet_v2.arch", None): ("mobilenet_v2", 224, 3_504_872, 300_809_384),
    ("mnasnet.arch", "mnasnet0_5"): ("mnasnet0_5", 224, 2_218_512, 104_477_592),
    ("mnasnet.arch", "mnasnet0_75"): ("mnasnet0_75", 224, 3_170_208, 215_523_912),
    ("mnasnet.arch", "mnasnet1_0"): ("mnasnet1_0", 224, 4_383_312, 314_454_792),
    ("mnasnet.arch", "mnasnet1_3"): ("mnasnet1_3", 224, 6_282_256, 526_412_248),
    ("resnext.arch", "resnext50_32x4d"): ("resnext50_32x4d", 224, 25_028_904, 4_230_549_096),
    ("resnext.arch", "resnext101_32x8d"): ("resnext101_32x8d", 224, 88_791_336, 16_414_219_368),
    ("resnext.arch", "resnext101_64x4d"): ("resnext101_64x4d", 224, 83_455_272, 15_460_473_960),
    ("wide_resnet.arch", "wide_resnet50_2"): ("wide_resnet50_2", 224, 68_883_240, 11_398_090_344),
    ("wide_resnet.arch", "wide_resnet101_2"): ("wide_resnet101_2", 224, 126_886_696, 22_753_189_480),
    ("efficientnet_v2.arch", "s"): ("efficientnet_v2_s", 384, 21_458_488, 8_365_807_216),
    ("efficientnet_v2.arch", "m"): ("efficientnet_v2_m", 480, 54_139_356, 24_582_821_236),
    ("efficientnet_v2.arch", "l"): ("efficientnet_v2_l", 480, 118_515_272, 56_080_332_136),
    ("regnet.arch", "regnet_x_400mf"): ("regnet_x_400mf", 224, 5_495_976, 413_851_464),
    ("regnet.arch", "regnet_x_800mf"): ("regnet_x_800mf", 224, 7_259_656, 799_738_024),
    ("regnet.arch", "regnet_x_1_6gf"): ("regnet_x_1_6gf", 224, 9_190_136, 1_602_894_296),
    ("regnet.arch", "regnet_x_3_2gf"): ("regnet_x_3_2gf", 224, 15_296_552, 3_176_685_512),
    ("regnet.arch", "regnet_x_8gf"): ("regnet_x_8gf", 224, 39_572_648, 7_995_223_880),
    ("regnet.arch", "regnet_x_16gf"): ("regnet_x_16gf", 224, 54_278_536, 15_940_867_624),
    ("regnet.arch", "regnet_x_32gf"): ("regnet_x_32gf", 224, 107_811_560, 31_736_092_808),
    ("regnet.arch", "regnet_y_400mf"): ("regnet_y_400mf", 224, 4_344_144, 401_876_208),
    ("regnet.arch", "regnet_y_800mf"): ("regnet_y_800mf", 224, 6_432_512, 833_893_280),
    ("regnet.arch", "regnet_y_1_6gf"): ("regnet_y_1_6gf", 224, 11_202_430, 1_612_139_998),
    ("regnet.arch", "regnet_y_3_2gf"): ("regnet_y_3_2gf", 224, 19_436_338, 3_176_562_322),
    ("regnet.arch", "regnet_y_8gf"): ("regnet_y_8gf", 224, 39_381_472, 8_473_174_144),
    ("regnet.arch", "regnet_y_16gf"): ("regnet_y_16gf", 224, 83_590_140, 15_911_656_860),
    ("regnet.arch", "regnet_y_32gf"): ("regnet_y_32gf", 224, 145_046_770, 32_279_741_650),
    ("regnet.arch", "regnet_y_128gf"): ("regnet_y_128gf", 384, 644_812_894, 374_570_502_142),
    ("shufflenet_v2.arch", "shufflenet_v2_x0_5"): ("shufflenet_v2_x0_5", 224, 1_366_792, 40_485_400),
    ("shufflenet_v2.arch", "shufflenet_v2_x1_0"): ("shufflenet_v2_x1_0", 224, 2_278_604, 144_925_172),
    ("shufflenet_v2.arch", "shufflenet_v2_x1_5"): ("shufflenet_v2_x1_5", 224, 3_503_624, 295_783_832),
    ("shufflenet_v2.arch", "shufflenet_v2_x2_0"): ("shufflenet_v2_x2_0", 224, 7_393_996, 583_288_180),
    ("convnext.arch", "convnext_tiny"): ("convnext_tiny", 224, 28_589_128, 322_371_592),
    ("convnext.arch", "convnext_small"): ("convnext_small", 224, 50_223_688, 411_391_240),
    ("convnext.arch", "convnext_base"): ("convnext_base", 224, 88_591_464, 646_530_408),
    ("convnext.arch", "convnext_large"): ("convnext_large", 224, 197_767_336, 1_263_822_376),
}
FILES = sorted({name for name, _ in FIGURES})

# (file, variant, input) ported in CI, a small variant of each family (both SqueezeNets, RegNetX and Y) ...
PORTED = [("alexnet.arch", None, "3x64x64"), ("vgg.arch", "vgg11_bn", "3x32x32"),
          ("squeezenet.arch", "squeezenet1_0", "3x64x64"), ("squeezenet.arch", "squeezenet1_1", "3x64x64"),
          ("densenet.arch", "densenet121", "3x32x32"), ("mobilenet_v2.arch", None, "3x32x32"),
          ("mnasnet.arch", "mnasnet0_5", "3x32x32"), ("resnext.arch", "resnext50_32x4d", "3x32x32"),
          ("wide_resnet.arch", "wide_resnet50_2", "3x32x32"), ("efficientnet_v2.arch", "s", "3x32x32"),
          ("regnet.arch", "regnet_x_400mf", "3x32x32"), ("regnet.arch", "regnet_y_400mf", "3x32x32"),
          ("shufflenet_v2.arch", "shufflenet_v2_x0_5", "3x32x32"), ("convnext.arch", "convnext_tiny", "3x32x32")]
# ... and the largest of each family, slow (RegNetY-128GF alone holds 644 M parameters)
SLOW = [("vgg.arch", "vgg19_bn", "3x32x32"), ("densenet.arch", "densenet161", "3x32x32"),
        ("densenet.arch", "densenet201", "3x32x32"), ("mnasnet.arch", "mnasnet1_3", "3x32x32"),
        ("resnext.arch", "resnext101_32x8d", "3x32x32"), ("wide_resnet.arch", "wide_resnet101_2", "3x32x32"),
        ("efficientnet_v2.arch", "l", "3x32x32"), ("regnet.arch", "regnet_x_32gf", "3x32x32"),
        ("regnet.arch", "regnet_y_128gf", "3x32x32"), ("shufflenet_v2.arch", "shufflenet_v2_x2_0", "3x32x32"),
        ("convnext.arch", "convnext_large", "3x32x32")]


def ids(cases):
    return [f"{name.removesuffix('.arch')}:{variant}" for name, variant, *_ in cases]


def meta_reference(builder: str) -> nn.Module:
    """torchvision's model `builder` on the meta device: its structure and tensor shapes, no memory. RegNet's
    builders compute their widths with torch tensors, which must hold data: that step runs on the CPU."""
    from torchvision.models.regnet import BlockParams

    widths = BlockParams.from_init_params.__func__

    def on_cpu(cls, *args, **kwargs):
        with torch.device("cpu"):
            return widths(cls, *args, **kwargs)

    BlockParams.from_init_params = classmethod(on_cpu)
    try:
        with torch.device("meta"):
            return torchvision.models.get_model(builder)
    finally:
        BlockParams.from_init_params = classmethod(widths)


def torchinfo_figures(model: nn.Module, side: int, device: str = "meta") -> tuple[int, int]:
    stats = torchinfo.summary(model, input_size=(1, 3, side, side), verbose=0, mode="eval", device=device)
    return stats.total_params, stats.total_mult_adds


def test_torchinfo_counts_the_same_on_the_meta_device_as_on_the_cpu():
    """The figures are torchinfo's on meta models: on the CPU, with real weights, it counts the same."""
    for builder in ("squeezenet1_1", "regnet_y_400mf"):
        model = meta_reference(builder)
        assert next(model.parameters()).is_meta
        assert torchinfo_figures(model, 224) == torchinfo_figures(torchvision.models.get_model(builder), 224, "cpu")


@pytest.mark.parametrize(("name", "variant"), list(FIGURES), ids=ids(FIGURES))
def test_figures_equal_torchinfo_on_torchvision(name, variant):
    builder, side, params, macs = FIGURES[name, variant]
    assert torchvision.models.get_model_weights(builder).DEFAULT.transforms().crop_size == [side]
    report = archc.check(ZOO / name, variant=variant)
    assert report.ok, [d.message for d in report.diagnostics]
    assert (report.input, report.output_shape) == ([3, side, side], [1000])
    assert (report.params, report.macs) == (params, macs)
    assert torchinfo_figures(meta_reference(builder), side) == (params, macs)


def test_every_variant_is_listed():
    for name in FILES:
        variants = re.findall(r"^variant (\w+)", (ZOO / name).read_text(encoding="utf-8"), re.MULTILINE) or [None]
        assert sorted(variants, key=str) == sorted((v for n, v in FIGURES if n == name), key=str), name


@pytest.mark.parametrize("name", FILES)
def test_the_size_cells_hold_and_are_checked_at_the_defaults(name):
    """At its defaults a file is the network as printed: its size and figure cells are checked (no N001)."""
    report = archc.check(ZOO / name)
    assert report.ok and not report.diagnostics, [d.message for d in report.diagnostics]


def settings(model: nn.Module) -> list[tuple]:
    """What eval logits do not show: each batch norm's momentum (and eps) and each dropout's p, in order."""
    return [("BatchNorm2d", m.eps, m.momentum) if isinstance(m, nn.BatchNorm2d) else ("Dropout", m.p)
            for m in model.modules() if isinstance(m, (nn.BatchNorm2d, nn.Dropout))]


@pytest.mark.parametrize(("name", "variant"), list(FIGURES), ids=ids(FIGURES))
def test_batchnorm_and_dropout_settings_equal_torchvisions(name, variant):
    """Equal to a float's rounding: the generated file writes MnasNet's momentum 1 - 0.9997 as the literal
    0.000299999999999967, 1.3e-16 of it away (compiler/pyexpr.py's short_float)."""
    with torch.device("meta"):
        model = archc.build(ZOO / name, variant=variant, input="3x64x64")
    ours, theirs = settings(model), settings(meta_reference(FIGURES[name, variant][0]))
    assert [kind for kind, *_ in ours] == [kind for kind, *_ in theirs]
    assert all(math.isclose(a, b, rel_tol=1e-15) for mine, its in zip(ours, theirs) for a, b in zip(mine[1:], its[1:]))


def depth_rates(model: nn.Module) -> list[tuple[str, float]]:
    """Each stochastic depth's mode and p, in order (torchvision.ops' class, or the one archc's file writes)."""
    return [(m.mode, m.p) for m in model.modules() if type(m).__name__ == "StochasticDepth"]


@pytest.mark.parametrize("variant", [v for n, v in FIGURES if n == "convnext.arch"])
def test_convnext_stochastic_depth_grows_over_the_blocks_as_torchvisions(variant):
    """Every ConvNeXt block is residual, so every rate is used: torchvision's are 0 … sd over all blocks, archc
    builds the same but for the first (p = 0 is the identity, which it leaves out)."""
    with torch.device("meta"):
        ours = depth_rates(archc.build(ZOO / "convnext.arch", variant=variant, input="3x64x64"))
    theirs = depth_rates(meta_reference(variant))
    assert theirs[0] == ("row", 0.0) and [mode for mode, _ in ours] == ["row"] * len(ours)
    assert len(ours) == len(theirs) - 1 and all(math.isclose(a, b, rel_tol=1e-12) for (_, a), (_, b) in zip(ours, theirs[1:]))


def assert_ported(name: str, variant: str | None, size: str) -> None:
    """torchvision's model with seeded weights, ported into the file's network position by position, gives the
    same eval logits on a seeded batch of 2. Both are built on the meta device, then given memory: every tensor
    is then written, by `randomise` or by the port."""
    shape = tuple(int(s) for s in size.split("x"))
    with torch.device("meta"):
        model = archc.build(ZOO / name, variant=variant, input=size)
    reference = randomise(meta_reference(FIGURES[name, variant][0]).to_empty(device="cpu"), seed=3)
    assert_ports(model.to_empty(device="cpu"), reference, torch.randn(2, *shape, generator=torch.Generator().manual_seed(1)))


@pytest.mark.parametrize(("name", "variant", "size"),
                         PORTED + [pytest.param(*case, marks=pytest.mark.heavy) for case in SLOW], ids=ids(PORTED + SLOW))
def test_ported_torchvision_weights_give_the_same_logits(name, variant, size):
    assert_ported(name, variant, size)


# one small variant per family through the command's code (`archc port` as a process of its own:
# tests/test_emit.py::test_port_and_export_commands; each process here spent 3 s importing torch again)
CLI_PORTED = [case for case in PORTED if case[1] not in ("squeezenet1_1", "regnet_x_400mf")]


@pytest.mark.parametrize(("name", "variant", "size"), CLI_PORTED, ids=ids(CLI_PORTED))
def test_archc_port_from_torchvision_agrees(name, variant, size, tmp_path, capsys):
    builder = FIGURES[name, variant][0]
    chosen = ["--variant", variant] if variant else []
    code = main(["port", str(ZOO / name), *chosen, "--input", size, "--from", f"torchvision:{builder}",
                 "-o", str(tmp_path / "w.pt")])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert f"eval logits agree with torchvision's {builder}" in out
    state = torch.load(tmp_path / "w.pt", weights_only=True)
    assert [tuple(t.shape) for t in state.values()] == \
        [tuple(t.shape) for t in meta_reference(builder).state_dict().values()]
