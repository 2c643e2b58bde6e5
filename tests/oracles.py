"""torch as the oracle: what the tests compare archc with, written once."""

import torch
from torch import nn

# archc's op names for the torch layers that hold parameters
KINDS = {"conv": nn.Conv2d, "batchnorm": nn.BatchNorm2d, "linear": nn.Linear}


def randomise(model: nn.Module, seed: int = 0) -> nn.Module:
    """Seeded weights and BN statistics far from their init, so that logits are O(1) and differ per input."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
            elif isinstance(m, (nn.Conv2d, nn.Linear)):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (2 / fan_in) ** 0.5)
                if m.bias is not None:
                    m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
    return model


def hooked_layers(model: nn.Module, x: torch.Tensor, train: bool = False) -> list[tuple[str, tuple, int]]:
    """(kind, output shape without batch, params) of every conv/bn/linear layer, in forward order."""
    seen = []
    hooks = [m.register_forward_hook(lambda m, i, o: seen.append((type(m).__name__, tuple(o.shape[1:]),
                                                                   sum(p.numel() for p in m.parameters()))))
             for m in model.modules() if isinstance(m, tuple(KINDS.values()))]
    model.train(train)
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return seen


def archc_layers(report, aux: bool = True) -> list[tuple[str, tuple, int]]:
    """The same triples from an archc report (aux=False: the layers that run in eval mode)."""
    return [(KINDS[l.op].__name__, tuple(l.output_shape), l.params) for l in report.layers
            if l.op in KINDS and (aux or not l.aux)]


def assert_ports(model: nn.Module, reference: nn.Module, x: torch.Tensor):
    """Port `reference` into `model` position by position: every tensor lines up (count and shapes, in
    registration order) and the eval logits on `x` agree. Returns (reference's, model's) logits."""
    import archc

    model.eval(), reference.eval()
    theirs = reference.state_dict()
    assert len(archc.port(model, reference)) == len(theirs)
    assert [tuple(t.shape) for t in model.state_dict().values()] == [tuple(t.shape) for t in theirs.values()]
    with torch.no_grad():
        expected, actual = reference(x), model(x)
    assert_same_logits(expected, actual)
    return expected, actual


def assert_same_logits(expected: torch.Tensor, actual: torch.Tensor) -> None:
    """Equal to 1e-4 of the logits' scale, and the comparison means something."""
    scale = expected.abs().max()
    assert scale > 0.1  # logits this small would agree whatever the weights
    assert (expected - actual).abs().max() <= 1e-4 * scale
    assert not torch.allclose(expected[0], expected[1])  # and they depend on the input
