"""Batch-norm statistics recomputed before validation (runtime/bn_stats.py): the rule that decides,
the averages it computes (against torch's own batch statistics), and a run with MobileNetV3's
momentum 0.01 that validates at chance without it."""

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

from archc.runtime.bn_stats import needs_recompute, recompute, spread
from archc.runtime.config import TrainConfig
from archc.runtime.distributed import Dist
from archc.runtime.run import train
from test_train import quiet, tiny_net
from torch import nn

# MobileNetV3's batch norm (momentum 0.01) in a small network: 11 steps an epoch on the digits
SLOW_BN = """\
network slow_bn(num_classes = 10)
input 1 x 16 x 16

features:
    conv(16, 3, bias = false)
    batchnorm(momentum = 0.01)
    relu()
    conv(32, 3, stride = 2, bias = false)
    batchnorm(momentum = 0.01)
    relu()

head:
    global_avgpool()
    flatten()
    linear(num_classes)
"""


def test_the_rule_follows_the_slowest_layer():
    model = nn.Sequential(nn.BatchNorm2d(3, momentum=0.1), nn.BatchNorm2d(3, momentum=0.5))
    assert needs_recompute(model, 43, "auto")  # 0.9^43 = 0.0108 of the start left
    assert not needs_recompute(model, 44, "auto")  # 0.9^44 = 0.0097
    assert needs_recompute(model, 10**6, "always") and not needs_recompute(model, 1, "never")
    assert not needs_recompute(nn.Sequential(nn.Conv2d(3, 3, 1)), 1, "always")  # no batch norm at all
    assert not needs_recompute(nn.Sequential(nn.BatchNorm2d(3, momentum=None)), 1, "auto")  # averages already


def test_recomputed_statistics_are_the_averages_of_the_batches():
    g = torch.Generator().manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4, momentum=0.01), nn.Dropout(0.5), nn.ReLU())
    batches = [(torch.randn(6, 3, 8, 8, generator=g) * 3 + 1, torch.zeros(6)) for _ in range(3)]
    model.train()
    seen = recompute(model, batches, Dist(), lambda: torch.autocast("cpu", enabled=False))
    assert seen == 18 and model.training and model[1].momentum == 0.01  # restored
    with torch.no_grad():
        features = [model[0](x) for x, _ in batches]
    mean = torch.stack([f.mean((0, 2, 3)) for f in features]).mean(0)
    var = torch.stack([f.transpose(0, 1).flatten(1).var(1) for f in features]).mean(0)  # unbiased, as torch keeps
    assert torch.allclose(model[1].running_mean, mean, atol=1e-5)
    assert torch.allclose(model[1].running_var, var, rtol=1e-5)


def test_spread_keeps_every_part_of_a_sorted_split():
    positions = torch.arange(100)
    assert torch.equal(spread(positions, 200), positions)
    picked = spread(positions, 10)
    assert len(picked) == 10 and picked[0] == 0 and picked[-1] == 99 and len(set(picked.tolist())) == 10


def test_a_short_run_with_slow_batch_norm_validates_on_recomputed_statistics(tmp_path):
    """Five epochs (55 steps: 0.99^55 = 0.58 of the start left): recomputed before each validation by
    default (about 0.64 here), the moving averages with `never` (about 0.29; chance is 0.10)."""
    net = tiny_net(tmp_path, SLOW_BN)
    runs = {mode: train(net, TrainConfig(epochs=5, lr=0.01, input="1x16x16", recompute_bn=mode,
                                         out=str(tmp_path / mode)), log=quiet) for mode in ("auto", "never")}
    assert runs["auto"]["bn_recomputed_epochs"] == 5 and runs["never"]["bn_recomputed_epochs"] == 0
    assert runs["auto"]["val_accuracy"] >= 0.5 and runs["never"]["val_accuracy"] <= 0.4
    assert runs["auto"]["val_accuracy"] >= runs["never"]["val_accuracy"] + 0.2
