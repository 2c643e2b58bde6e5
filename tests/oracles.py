"""torch as the oracle: what the tests compare archc with, written once."""

import contextlib

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
            elif isinstance(m, nn.LayerNorm):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
            else:  # a module's own tensors, such as ConvNeXt's layer scale (1e-6 at init: a residual of nothing)
                for tensor in m.parameters(recurse=False):
                    tensor.copy_(torch.rand(tensor.shape, generator=g) + 0.5)
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


# ------------------------------------------------------------------ the IR run by torch, directly


def torch_layer(op: str, a, shape):
    """What each archc op means, written with torch's classes directly (torchvision's where it has one),
    independently of the op specs' emitted constructors (tests/test_ops.py compares the two)."""
    import torchvision

    from archc.compiler.ops.conv import conv_padding

    c = shape[0]
    pair = lambda v: tuple(v) if isinstance(v, tuple) else (v, v)  # noqa: E731
    simple = {"relu": nn.ReLU, "relu6": nn.ReLU6, "hardswish": nn.Hardswish, "hardsigmoid": nn.Hardsigmoid,
              "sigmoid": nn.Sigmoid, "silu": nn.SiLU, "gelu": nn.GELU, "tanh": nn.Tanh, "identity": nn.Identity,
              "flatten": nn.Flatten}
    if op in simple:
        return simple[op]()
    if op == "conv":
        return nn.Conv2d(c, a.out, pair(a.k), pair(a.stride), conv_padding(a.k, a.padding, a.dilation),
                         pair(a.dilation), a.groups, a.bias)
    if op == "batchnorm":
        return (nn.BatchNorm2d if len(shape) == 3 else nn.BatchNorm1d)(c, eps=a.eps, momentum=a.momentum)
    if op == "lrn":
        return nn.LocalResponseNorm(a.size, a.alpha, a.beta, a.k)
    if op in ("maxpool", "avgpool"):
        cls = nn.MaxPool2d if op == "maxpool" else nn.AvgPool2d
        return cls(a.k, a.stride if a.stride is not None else a.k, a.padding, ceil_mode=a.ceil)
    if op in ("adaptive_avgpool", "adaptive_maxpool"):
        return (nn.AdaptiveAvgPool2d if op == "adaptive_avgpool" else nn.AdaptiveMaxPool2d)(pair(a.size))
    if op == "global_avgpool":
        return nn.AdaptiveAvgPool2d((1, 1))
    if op == "linear":
        return nn.Linear(c, a.out, a.bias)
    if op == "dropout":
        return nn.Dropout(a.p)
    if op == "stochastic_depth":
        return torchvision.ops.StochasticDepth(a.p, a.mode)
    if op == "leaky_relu":
        return nn.LeakyReLU(a.negative_slope)
    if op == "layernorm":
        if len(shape) == 1:
            return nn.LayerNorm(c, eps=a.eps)
        from torchvision.models.convnext import LayerNorm2d

        return LayerNorm2d(c, eps=a.eps)
    if op == "channel_linear":
        return _PermutedLinear(c, a.out, a.bias) if len(shape) == 3 else nn.Linear(c, a.out, a.bias)
    if op == "layer_scale":
        return _LayerScale(c, a.init)
    if op == "chunk":
        return _Chunk(a.parts, a.index)
    if op == "channel_shuffle":
        return _Shuffle(a.groups)
    raise KeyError(op)


class _PermutedLinear(nn.Linear):
    """torchvision's CNBlock: Permute to channels-last, nn.Linear, Permute back."""

    def forward(self, x):
        from torchvision.ops import Permute

        return Permute([0, 3, 1, 2])(super().forward(Permute([0, 2, 3, 1])(x)))


class _LayerScale(nn.Module):
    def __init__(self, c, init):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(c, 1, 1) * init)  # torchvision CNBlock's layer_scale

    def forward(self, x):
        return self.weight * x


class _Chunk(nn.Module):
    def __init__(self, parts, index):
        super().__init__()
        self.parts, self.index = parts, index

    def forward(self, x):
        return torch.split(x, x.shape[1] // self.parts, dim=1)[self.index]


class _Shuffle(nn.Module):
    def __init__(self, groups):
        super().__init__()
        self.groups = groups

    def forward(self, x):
        from torchvision.models.shufflenetv2 import channel_shuffle

        return channel_shuffle(x, self.groups)


@contextlib.contextmanager
def uninitialised():
    """torch's layers made without their initialisers (their tensors allocated, not filled): for a module
    whose every tensor is loaded next. The initialisers were a tenth of the differential tests' time; made on
    the meta device instead, small networks took longer."""
    classes = [nn.modules.conv._ConvNd, nn.Linear, nn.modules.batchnorm._NormBase, nn.LayerNorm]
    saved = [cls.__dict__["reset_parameters"] for cls in classes]
    try:
        for cls in classes:
            cls.reset_parameters = lambda self: None
        yield
    finally:
        for cls, method in zip(classes, saved):
            cls.reset_parameters = method


class Interpreted(nn.Module):
    """A checked graph (archc's IR) run layer by layer: a torch module per layer from `torch_layer`, placed
    at the layer's name, and the joins computed here, nothing in place. The emitted module must give
    the same outputs, bit for bit, with the same weights (tests/test_differential.py).

    One thing of the emitter's is mirrored, because bits depend on it: what it runs in place (ReLU's
    `inplace=True`, torchvision's `out += identity`: compiler/inplace.py) keeps its input's memory layout,
    where the out-of-place op may not (`a + b` of a channels-last-strided body, after ConvNeXt's permutes,
    and a contiguous shortcut is contiguous; so is ReLU of an N×C×1×1 map strided channels-last); the next
    convolution then takes another kernel and rounds otherwise. Such a layer's output is written into a
    tensor laid out like its input."""

    def __init__(self, graph, empty: bool = False):
        """`empty`: the tensors allocated but not initialised, for a caller that loads every one of them."""
        super().__init__()
        from archc.compiler.inplace import in_place_layers

        self.into_first = {name for name, index in in_place_layers(graph).items() if index == 0}
        self.steps, self.first = [], graph.first
        with uninitialised() if empty else contextlib.nullcontext():
            for layer in graph.layers():
                if layer.spec.callable_:
                    parent, _, leaf = layer.name.rpartition(".")
                    self._node(parent).add_module(leaf, torch_layer(layer.op, layer.attrs, layer.in_shapes[0]))
                self.steps.append((layer.name, layer.op, layer.inputs, layer.aux))
        if empty:  # every tensor is in the state dict, so that loading one leaves none uninitialised
            assert len(self.state_dict()) == len(list(self.parameters())) + len(list(self.buffers()))
        self.result, self.heads = graph.result, list(graph.aux.values())

    def _node(self, path: str) -> nn.Module:
        """The container at a dotted path, made (or filled in, where a placeholder stands) on the way; a new
        one registers first what the graph says registers before its siblings (layer scale, a shortcut)."""
        node, here = self, []
        for part in path.split(".") if path else []:
            here.append(part)
            if node._modules.get(part) is None:
                fresh = part not in node._modules
                node.add_module(part, nn.Module())
                if fresh:
                    prefix = ".".join(here) + "."
                    for first in self.first:
                        if first.startswith(prefix) and "." not in first[len(prefix):]:
                            node._modules[part].register_module(first[len(prefix):], None)
            node = node._modules[part]
        return node

    def values(self, x, with_aux: bool, until: str | None = None) -> dict:
        """Every tensor of the network by its name, the auxiliary heads' when `with_aux`; those up to layer
        `until` only, when one is given."""
        values = {"input": x}
        for name, op, inputs, aux in self.steps:
            if aux and not with_aux:
                continue
            args = [values[i] for i in inputs]
            if op == "add":
                values[name] = args[0] + args[1]
            elif op == "concat":
                values[name] = torch.cat(args, 1)
            elif op == "multiply":
                values[name] = args[0] * args[1]
            else:
                values[name] = self.get_submodule(name)(args[0])
            if name in self.into_first:  # empty_like keeps the input's strides, as running in place does
                values[name] = torch.empty_like(args[0]).copy_(values[name])
            if name == until:
                break
        return values

    def forward(self, x):
        values = self.values(x, self.training)
        if self.training and self.heads:
            return (values[self.result], *[values[h] for h in self.heads])
        return values[self.result]


def assert_same_network(graph, model: nn.Module, shape, seed: int = 0) -> None:
    """The emitted `model` is the checked `graph`: the same tensors under the same names (the report's
    counts), every leaf's output shape the report's, and with the same weights the outputs of the IR run
    directly, equal bit for bit in eval mode and in training mode with one seed."""
    reference = Interpreted(graph, empty=True)  # every tensor is loaded below
    assert list(model.state_dict()) == list(reference.state_dict())
    leaves = {path for path, m in model.named_modules() if not list(m.children()) and type(m) is not nn.Sequential}
    assert leaves == {l.name for l in graph.layers() if l.spec.callable_}  # no module more, none less
    reference.load_state_dict(randomise(model, seed).state_dict())
    assert sum(p.numel() for p in model.parameters()) == sum(l.param_count for l in graph.layers())
    assert sum(b.numel() for b in model.buffers()) == sum(l.buffer_count for l in graph.layers())
    seen = {}
    hooks = [m.register_forward_hook(lambda m, i, o, path=path: seen.__setitem__(path, tuple(o.shape[1:])))
             for path, m in model.named_modules() if not list(m.children())]
    x = torch.randn(2, *shape, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        model.eval(), reference.eval()
        assert torch.equal(model(x), reference(x))
        expected = {l.name: l.out_shape for l in graph.layers() if l.spec.callable_ and not l.aux}
        assert seen == expected
        for hook in hooks:
            hook.remove()
        model.train(), reference.train()
        torch.manual_seed(seed)
        ours = model(x)
        torch.manual_seed(seed)
        theirs = reference(x)
    ours, theirs = (ours if isinstance(ours, tuple) else (ours,)), (theirs if isinstance(theirs, tuple) else (theirs,))
    assert len(ours) == len(theirs) and all(torch.equal(a, b) for a, b in zip(ours, theirs))
