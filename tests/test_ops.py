"""Each op spec against torch: the constructor the emitted source writes for it (from its one
declaration, compiler/ops/) builds the module torch's own class would with the op's meaning, with
the same output shape, parameters and buffers in the same order, the same outputs, an error where
torch errs, and torchinfo's mult-adds for that layer."""

import pytest
import torchinfo
from hypothesis import given, settings
from hypothesis import strategies as st

from archc.compiler.emit_classes import op_ctor
from archc.compiler.emit_values import Context, Values
from archc.compiler.graph import Graph, Layer
from archc.compiler.ops import OPS, ShapeError
from archc.compiler.ops.conv import conv_padding

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

pairs = st.one_of(st.integers(1, 4), st.tuples(st.integers(1, 4), st.integers(1, 4)))


def attrs_for(name, draw, c):
    if name == "conv":
        groups = draw(st.sampled_from([g for g in (1, 2, 3) if c % g == 0]))
        return dict(out=groups * draw(st.integers(1, 4)), k=draw(pairs), stride=draw(pairs),
                    padding=draw(st.one_of(st.none(), st.integers(0, 2), st.just("valid"))),
                    dilation=draw(st.integers(1, 2)), groups=groups, bias=draw(st.booleans()))
    if name in ("maxpool", "avgpool"):
        k = draw(st.integers(1, 4))
        return dict(k=k, stride=draw(st.one_of(st.none(), st.integers(1, 3))), padding=draw(st.integers(0, k // 2)),
                    ceil=draw(st.booleans()))
    if name in ("adaptive_avgpool", "adaptive_maxpool"):
        return dict(size=draw(pairs))
    if name == "batchnorm":
        return dict(eps=draw(st.sampled_from([1e-5, 1e-3])), momentum=draw(st.sampled_from([0.1, 0.01])))
    if name == "lrn":
        return dict(size=draw(st.integers(1, 5)))
    if name == "dropout":
        return dict(p=draw(st.sampled_from([0.0, 0.2, 0.5])))
    if name == "stochastic_depth":
        return dict(p=draw(st.sampled_from([0.0, 0.2])), mode=draw(st.sampled_from(["row", "batch"])))
    if name == "leaky_relu":
        return dict(negative_slope=draw(st.sampled_from([0.01, 0.2])))
    if name == "linear":
        return dict(out=draw(st.integers(1, 5)), bias=draw(st.booleans()))
    return {}


def oracle(name, a, shape):
    """What each op means, written with torch's classes directly (torchvision's where it has one)."""
    import torchvision

    c = shape[0]
    pair = lambda v: tuple(v) if isinstance(v, tuple) else (v, v)  # noqa: E731
    if name == "conv":
        return nn.Conv2d(c, a.out, pair(a.k), pair(a.stride), conv_padding(a.k, a.padding, a.dilation),
                         pair(a.dilation), a.groups, a.bias)
    if name == "batchnorm":
        return (nn.BatchNorm2d if len(shape) == 3 else nn.BatchNorm1d)(c, eps=a.eps, momentum=a.momentum)
    if name == "lrn":
        return nn.LocalResponseNorm(a.size, a.alpha, a.beta, a.k)
    if name in ("maxpool", "avgpool"):
        cls = nn.MaxPool2d if name == "maxpool" else nn.AvgPool2d
        return cls(a.k, a.stride if a.stride is not None else a.k, a.padding, ceil_mode=a.ceil)
    if name in ("adaptive_avgpool", "adaptive_maxpool"):
        return (nn.AdaptiveAvgPool2d if name == "adaptive_avgpool" else nn.AdaptiveMaxPool2d)(pair(a.size))
    if name == "global_avgpool":
        return nn.AdaptiveAvgPool2d((1, 1))
    if name == "linear":
        return nn.Linear(c, a.out, a.bias)
    if name == "dropout":
        return nn.Dropout(a.p)
    if name == "stochastic_depth":
        return torchvision.ops.StochasticDepth(a.p, a.mode)
    if name == "identity":
        return nn.Identity()
    if name == "flatten":
        return nn.Flatten()
    torch_names = {"relu": nn.ReLU, "relu6": nn.ReLU6, "hardswish": nn.Hardswish, "hardsigmoid": nn.Hardsigmoid,
                   "sigmoid": nn.Sigmoid, "silu": nn.SiLU, "gelu": nn.GELU, "tanh": nn.Tanh}
    if name == "leaky_relu":
        return nn.LeakyReLU(a.negative_slope)
    return torch_names[name]()


def emitted(name, attrs, shape, in_place: bool):
    """The module from the constructor the source emitter writes for one such layer."""
    op = OPS[name]
    layer = Layer(name="x", op=name, attrs=attrs, inputs=("input",), in_shapes=(shape,), out_shape=shape,
                  params={}, buffers={}, macs=0)
    values = Values(Graph(input_shape=shape), {})

    class Emission:
        pass

    emission = Emission()
    emission.values, emission.in_place = values, {"x": 0} if in_place else {}
    ctor = op_ctor(Context([{"#": 0}], values), [layer], {}, None if not op.channels else _lit(shape[0]), emission)
    namespace = {"nn": nn, "torch": torch, "conv_padding": conv_padding}
    if op.module == "StochasticDepth":
        namespace["StochasticDepth"] = _stochastic_depth_class()
    return eval(str(ctor), namespace), str(ctor)  # noqa: S307 - archc's own output, under test


def _lit(value):
    from archc.compiler.pyexpr import Lit

    return Lit(value)


def _stochastic_depth_class():
    """The StochasticDepth class a generated file defines (it imports only torch)."""
    import archc
    from archc.compiler.emit_torch import load_source

    text = archc.source(archc.zoo_path("efficientnet.arch"), input="3x32x32")
    return load_source(text).StochasticDepth


MODULE_OPS = sorted(n for n, op in OPS.items() if op.callable_)


@settings(max_examples=400, deadline=None)
@given(data=st.data(), name=st.sampled_from(MODULE_OPS), c=st.integers(1, 6), h=st.integers(1, 12),
       w=st.integers(1, 12), vector=st.booleans())
def test_emitted_constructor_is_the_op(data, name, c, h, w, vector):
    op = OPS[name]
    vector_ops = ("linear", "batchnorm", "dropout", "relu", "identity", "flatten")
    shape = (c * h * w,) if (vector and name in vector_ops) or name == "linear" else (c, h, w)
    attrs = op.Attrs(**attrs_for(name, data.draw, c))
    try:
        out = op.infer(attrs, [shape])
    except ShapeError:
        out = None
    in_place = op.in_place and data.draw(st.booleans())
    module, text = emitted(name, attrs, shape, in_place)
    reference = oracle(name, attrs, shape)
    assert type(module).__name__ == type(reference).__name__, text
    assert getattr(module, "inplace", False) == in_place, text
    module.eval(), reference.eval()
    assert list(op.param_shapes(attrs, [shape]).items()) == [(k, tuple(p.shape)) for k, p in module.named_parameters()]
    assert list(op.buffer_shapes(attrs, [shape]).items()) == [(k, tuple(b.shape)) for k, b in module.named_buffers()]
    reference.load_state_dict(module.state_dict())
    x = torch.randn(2, *shape)
    try:
        with torch.no_grad():
            y, expected = module(x.clone()), reference(x.clone())
        actual = tuple(y.shape[1:]) if y.numel() else None
    except RuntimeError:
        actual, y, expected = None, None, None
    assert out == actual, text
    if y is not None:
        assert torch.equal(y, expected), text
        summary = torchinfo.summary(reference, input_data=x, verbose=0, mode="eval")
        assert summary.total_mult_adds == 2 * op.macs(attrs, [shape], out), text


def test_joins_are_forward_expressions_not_modules():
    for name in ("add", "concat", "multiply"):
        assert OPS[name].module is None and OPS[name].join and not OPS[name].callable_
