"""In-place activations and residual adds (compiler/inplace.py): built only where nothing else
reads the overwritten value, and then the same outputs and gradients, bit for bit, as out of place;
at least where torchvision builds them."""

import pytest
import torch
import torchvision
from archc.compiler.check import build_graph
from archc.compiler.emit_source import emit
from archc.compiler.emit_torch import load_source
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

block post(out):
    residual:
        conv(out, 3)
        relu()

block post_projected(out):
    residual:
        conv(out, 3)
        relu()
    shortcut:
        conv(out, 1)

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
    post(8)
    post_projected(8)

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
    acts = [(layer.op, chosen.get(layer.name)) for layer in graph.layers() if layer.op in ("relu", "sigmoid", "add")]
    assert acts == [
        ("relu", None),  # the network's input: the caller's tensor
        ("relu", 0),  # a conv's output, read by this relu alone
        ("sigmoid", None),  # no in-place form
        ("relu", None),  # sigmoid keeps its output for its backward
        ("relu", None),  # identity hands on the tensor it was given
        ("relu", None),  # pre_act: the block's input, which the residual's add reads too
        ("add", 0),  # into the body's output (a conv's)
        ("relu", 0),  # after the add
        ("relu", 0),  # post: the body's relu
        ("add", None),  # the body ends in a relu (kept for its backward), the shortcut is the block's input
        ("relu", 0),  # post_projected: the body's relu
        ("add", 1),  # into the shortcut's conv output: b + a is a + b, bit for bit
        ("relu", 0),  # after the last linear: the network's output is the relu's, not the linear's
    ]
    model = archc.build(path)
    assert sum(isinstance(m, nn.ReLU) and m.inplace for m in model.modules()) == 5
    x = torch.randn(2, 3, 16, 16)
    assert torch.equal(randomise(model, seed=0).eval()(x), _out_of_place(graph, model).eval()(x))


def _out_of_place(graph, model: nn.Module) -> nn.Module:
    """The same network written with nothing in place (activations' inplace off, adds as a + b), with
    the weights of `model`."""
    copied = load_source(emit(graph, in_place=False)).build()
    assert not any(getattr(m, "inplace", False) for m in copied.modules())
    copied.load_state_dict(model.state_dict())
    return copied.train(model.training)


NETWORKS = [("mobilenet_v3_small.arch", None, 96), ("resnet.arch", "resnet18", 64), ("efficientnet.arch", "b0", 64),
            ("googlenet.arch", None, 224), ("nin.arch", None, 224)]


@pytest.mark.parametrize(("name", "variant", "side"), NETWORKS, ids=[n for n, *_ in NETWORKS])
def test_in_place_trains_bit_for_bit_as_out_of_place(name, variant, side):
    """Training mode, forward and backward: the same outputs (aux heads too) and every gradient equal."""
    graph = build_graph(ZOO / name, variant=variant, input=f"3x{side}x{side}")
    model = randomise(archc.build(ZOO / name, variant=variant, input=f"3x{side}x{side}"), seed=3).train()
    assert any(getattr(m, "inplace", False) for m in model.modules())
    assert ("+= identity" in emit(graph)) == (name not in ("googlenet.arch", "nin.arch"))
    reference = _out_of_place(graph, model)
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
