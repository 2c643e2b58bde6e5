"""Seed 000's NiN_v1 and NiN_v2 (3 classes, 3×224×224): archc's figures equal the seed's and
torchinfo's, its layers are those of the seed's torchinfo summaries, and ported weights give the
logits of plain torch Sequentials written from those summaries."""

import pytest

import archc
from conftest import ZOO

torch = pytest.importorskip("torch")
torchinfo = pytest.importorskip("torchinfo")
from torch import nn  # noqa: E402

from oracles import assert_ports, randomise  # noqa: E402

BATCH = 32
TORCH_TO_OP = {"Conv2d": "conv", "ReLU": "relu", "MaxPool2d": "maxpool", "AvgPool2d": "avgpool",
               "Dropout": "dropout", "AdaptiveAvgPool2d": "global_avgpool", "Flatten": "flatten"}


def nin_v1(num_classes=3):
    """NiN_v1 as the seed's summary prints it: one Sequential of 24 layers. The pools' kernels and
    ceil mode are not printed; 3×3/2 in ceil mode gives the printed 112 and 56."""
    return nn.Sequential(
        nn.Conv2d(3, 192, 5, padding=2), nn.ReLU(), nn.Conv2d(192, 160, 1), nn.ReLU(),
        nn.Conv2d(160, 96, 1), nn.ReLU(), nn.MaxPool2d(3, 2, ceil_mode=True), nn.Dropout(),
        nn.Conv2d(96, 192, 5, padding=2), nn.ReLU(), nn.Conv2d(192, 192, 1), nn.ReLU(),
        nn.Conv2d(192, 192, 1), nn.ReLU(), nn.AvgPool2d(3, 2, ceil_mode=True), nn.Dropout(),
        nn.Conv2d(192, 192, 3, padding=1), nn.ReLU(), nn.Conv2d(192, 192, 1), nn.ReLU(),
        nn.Conv2d(192, num_classes, 1), nn.ReLU(), nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten())


def nin_v2(num_classes=3):
    """NiN_v2 as the seed's summary prints it: four 3-conv blocks (Sequentials 2-1, 2-4, 2-7, 2-10)
    with Dropout and a pool between them."""
    def block(i, o, k, s, p):
        return nn.Sequential(nn.Conv2d(i, o, k, s, p), nn.ReLU(), nn.Conv2d(o, o, 1), nn.ReLU(),
                             nn.Conv2d(o, o, 1), nn.ReLU())

    return nn.Sequential(
        block(3, 96, 11, 4, 2), nn.Dropout(), nn.MaxPool2d(3, 2),
        block(96, 256, 5, 1, 2), nn.Dropout(), nn.MaxPool2d(3, 2),
        block(256, 384, 3, 1, 1), nn.Dropout(), nn.AvgPool2d(3, 2, padding=1),
        block(384, num_classes, 3, 1, 1), nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten())


# The seed's summaries, leaf layers in order: depth-idx, type, output shape, params. None where the
# seed's text prints nothing (NiN_v2's summary lost most of its shapes and some types).
SEED_V1 = """\
2-1 Conv2d 32,192,224,224 14,592
2-2 ReLU 32,192,224,224 -
2-3 Conv2d 32,160,224,224 30,880
2-4 ReLU 32,160,224,224 -
2-5 Conv2d 32,96,224,224 15,456
2-6 ReLU 32,96,224,224 -
2-7 MaxPool2d 32,96,112,112 -
2-8 Dropout 32,96,112,112 -
2-9 Conv2d 32,192,112,112 460,992
2-10 ReLU 32,192,112,112 -
2-11 Conv2d 32,192,112,112 37,056
2-12 ReLU 32,192,112,112 -
2-13 Conv2d 32,192,112,112 37,056
2-14 ReLU 32,192,112,112 -
2-15 AvgPool2d 32,192,56,56 -
2-16 Dropout 32,192,56,56 -
2-17 Conv2d 32,192,56,56 331,968
2-18 ReLU 32,192,56,56 -
2-19 Conv2d 32,192,56,56 37,056
2-20 ReLU 32,192,56,56 -
2-21 Conv2d 32,3,56,56 579
2-22 ReLU 32,3,56,56 -
2-23 AdaptiveAvgPool2d ? -
2-24 Flatten 32,3 -
"""
SEED_V2 = """\
3-1 ? ? 34,944
3-3 Conv2d ? 9,312
3-5 Conv2d ? 9,312
2-2 Dropout ? -
2-3 MaxPool2d ? -
3-7 ? ? 614,656
3-9 ? ? 65,792
3-11 ? ? 65,792
2-5 Dropout ? -
2-6 MaxPool2d ? -
3-13 Conv2d ? 885,120
3-14 ReLU 32,384,13,13 -
3-15 Conv2d 32,384,13,13 147,840
3-17 Conv2d 32,384,13,13 147,840
2-8 Dropout ? -
2-9 AvgPool2d ? -
3-19 ? ? 10,371
3-21 Conv2d ? 12
3-23 ? ? 12
2-11 AdaptiveAvgPool2d ? -
2-12 Flatten 32,3 -
"""
# NiN_v2's leaves in order, by depth-idx: Sequentials 2-1, 2-4, 2-7, 2-10 hold six layers each.
V2_LEAVES = [f"3-{i}" for i in range(1, 7)] + ["2-2", "2-3"] + [f"3-{i}" for i in range(7, 13)] + ["2-5", "2-6"] \
    + [f"3-{i}" for i in range(13, 19)] + ["2-8", "2-9"] + [f"3-{i}" for i in range(19, 25)] + ["2-11", "2-12"]


def parse_seed(text):
    rows = {}
    for line in text.splitlines():
        idx, kind, shape, params = line.split()
        rows[idx] = (None if kind == "?" else kind,
                     None if shape == "?" else [int(v) for v in shape.split(",")],
                     0 if params == "-" else None if params == "?" else int(params.replace(",", "")))
    return rows


NETS = {
    "nin_v1.arch": dict(reference=nin_v1, params=965_635, macs=349_713_373_184,
                        seed=parse_seed(SEED_V1), leaves=[f"2-{i}" for i in range(1, 25)]),
    "nin_v2.arch": dict(reference=nin_v2, params=1_991_003, macs=28_995_734_880,
                        seed=parse_seed(SEED_V2), leaves=V2_LEAVES),
}


def torchinfo_summary(model):
    """torchinfo at batch 1: its mult-adds are linear in the batch (at the seed's batch 32 they are 32
    times these), and batch 32 costs NiN_v1 a 4 GB, 15 s forward pass on a CPU."""
    return torchinfo.summary(model, input_size=(1, 3, 224, 224), mode="eval", verbose=0, device="cpu")


@pytest.mark.parametrize("name", sorted(NETS))
def test_figures_equal_the_seed_and_torchinfo(name):
    net = NETS[name]
    report = archc.check(ZOO / name, batch=BATCH)
    assert report.diagnostics == []
    assert report.input == [3, 224, 224] and report.output_shape == [3]
    assert (report.params, report.macs) == (net["params"], net["macs"])
    stats = torchinfo_summary(net["reference"]())
    assert (stats.total_params, stats.total_mult_adds * BATCH) == (report.params, report.macs)
    # torchinfo's leaf layers, one by one
    leaves = [l for l in stats.summary_list if not l.children]
    assert [(TORCH_TO_OP[l.class_name], l.output_size[1:], l.num_params) for l in leaves] == \
        [(l.op, l.output_shape, l.params) for l in report.layers]


def test_seed_rounded_figures():
    v1, v2 = (archc.check(ZOO / name, batch=BATCH) for name in ("nin_v1.arch", "nin_v2.arch"))
    # the seed's last table: "965k mult-add 349G", "1,991k mult-add 29G"
    assert (v1.params // 1000, v1.macs // 10**9) == (965, 349)
    assert (round(v2.params / 1000), round(v2.macs / 10**9)) == (1991, 29)
    # the seed's batch formula for NiN_v2, 32*((6144-7.96-Input size)/416.31), quotes torchinfo's memory lines
    assert (v2.memory.params_mb, v2.memory.input_mb, v2.memory.forward_backward_mb) == (7.96, 19.27, 416.31)


@pytest.mark.parametrize("name", sorted(NETS))
def test_layers_equal_the_seed_summary(name):
    net = NETS[name]
    report = archc.check(ZOO / name, batch=BATCH)
    assert len(report.layers) == len(net["leaves"])
    seen = 0
    for idx, layer in zip(net["leaves"], report.layers):
        if idx not in net["seed"]:
            continue
        kind, shape, params = net["seed"][idx]
        seen += 1
        if kind is not None:
            assert layer.op == TORCH_TO_OP[kind], idx
        if shape is not None:
            assert [BATCH, *layer.output_shape] == shape, idx
        if params is not None:
            assert layer.params == params, idx
    assert seen == len(net["seed"])


@pytest.mark.parametrize("name", sorted(NETS))
def test_ported_weights_give_the_same_logits(name):
    reference = randomise(NETS[name]["reference"]()).eval()
    model = archc.build(ZOO / name)
    expected, actual = assert_ports(model, reference, torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(3)))
    assert expected.shape == actual.shape == (2, 3)
