"""In-place activations (compiler/inplace.py): built only where nothing else reads the overwritten
value, and then the same outputs and gradients, bit for bit, as out of place; at least where
torchvision builds them."""

import copy

import pytest
import torch
import torchvision
from archc.compiler.check import build_graph
from archc.compiler.inplace import in_place_layers
from conftest import ZOO
from oracles import randomise
from torch import nn

import archc

PROBE = """\
block pre_act(out):
    residual:
        relu()
        conv(out, 3)
    relu()

network probe(num_classes = 10)
input 3 x 16 x 16

features:
    relu()
    conv(8, 3)
    relu()
    sigmoid()
    relu()
    identity()
    relu()
    pre_act(8)

head:
    global_avgpool()
    flatten()
    linear(num_classes)
    relu()
"""


def test_in_place_only_where_nothing_else_reads_the_value(tmp_path):
    path = tmp_path / "probe.arch"
    path.write_text(PROBE)
    graph = build_graph(path)
    chosen = in_place_layers(graph)
    acts = [(layer.op, layer.name in chosen) for layer in graph.layers() if layer.op in ("relu", "sigmoid")]
    assert acts == [
        ("relu", False),  # the network's input: the caller's tensor
        ("relu", True),  # a conv's output, read by this relu alone
        ("sigmoid", False),  # no in-place form
        ("relu", False),  # sigmoid keeps its output for its backward
        ("relu", False),  # identity hands on the tensor it was given
        ("relu", False),  # the block's input, which the residual's add reads too
        ("relu", True),  # after the add
        ("relu", True),  # after the last linear: the network's output is the relu's, not the linear's
    ]
    model = archc.build(path)
    assert sum(isinstance(m, nn.ReLU) and m.inplace for m in model.modules()) == 3


NETWORKS = [("mobilenet_v3_small.arch", None, 96), ("resnet.arch", "resnet18", 64), ("efficientnet.arch", "b0", 64),
            ("googlenet.arch", None, 224), ("nin.arch", None, 224)]


@pytest.mark.parametrize(("name", "variant", "side"), NETWORKS, ids=[n for n, *_ in NETWORKS])
def test_in_place_trains_bit_for_bit_as_out_of_place(name, variant, side):
    """Training mode, forward and backward: the same outputs (aux heads too) and every gradient equal."""
    model = randomise(archc.build(ZOO / name, variant=variant, input=f"3x{side}x{side}"), seed=3).train()
    assert any(getattr(m, "inplace", False) for m in model.modules())
    reference = copy.deepcopy(model)
    for module in reference.modules():
        if hasattr(module, "inplace"):
            module.inplace = False
    x = torch.randn(2, 3, side, side, generator=torch.Generator().manual_seed(0))
    results = []
    for net in (model, reference):
        torch.manual_seed(1)  # the same stochastic-depth and dropout draws
        out = net(x)
        outs = out if isinstance(out, tuple) else (out,)
        sum((o * torch.linspace(-1, 1, o.numel()).view_as(o)).sum() for o in outs).backward()
        results.append(([o.detach() for o in outs], [p.grad for p in net.parameters()]))
    (outs_a, grads_a), (outs_b, grads_b) = results
    assert all(torch.equal(a, b) for a, b in zip(outs_a, outs_b))
    assert len(grads_a) == len(grads_b) and all(torch.equal(a, b) for a, b in zip(grads_a, grads_b))


@pytest.mark.parametrize(("name", "variant", "reference"), [
    ("mobilenet_v3_large.arch", None, torchvision.models.mobilenet_v3_large),
    ("resnet.arch", "resnet50", torchvision.models.resnet50),
    ("efficientnet.arch", "b0", torchvision.models.efficientnet_b0)])
def test_at_least_torchvisions_in_place_activations(name, variant, reference):
    """Per activation type, as many in-place modules as torchvision builds, or more (torchvision
    leaves squeeze-excitation's out of place, and ResNet's blocks share one ReLU module). Dropout,
    which torchvision's MobileNetV3 head runs in place, stays out of place here: not an activation."""
    def count(model):
        kinds = {}
        for module in model.modules():
            if getattr(module, "inplace", False) and not isinstance(module, nn.Dropout):
                kinds[type(module).__name__] = kinds.get(type(module).__name__, 0) + 1
        return kinds

    ours, theirs = count(archc.build(ZOO / name, variant=variant)), count(reference())
    assert theirs and all(ours.get(kind, 0) >= n for kind, n in theirs.items()), (ours, theirs)
