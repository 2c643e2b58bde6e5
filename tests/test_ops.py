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
from oracles import torch_layer

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
    if name in ("linear", "channel_linear"):
        return dict(out=draw(st.integers(1, 5)), bias=draw(st.booleans()))
    if name == "layernorm":
        return dict(eps=draw(st.sampled_from([1e-5, 1e-6])))
    if name == "layer_scale":
        return dict(init=draw(st.sampled_from([1e-6, 0.5])), first=draw(st.booleans()))
    if name == "chunk":  # equal parts only (torch.chunk makes a last part smaller: archc refuses that, E300)
        parts = draw(st.sampled_from([p for p in (1, 2, 3, 4) if c % p == 0]))
        return dict(parts=parts, index=draw(st.integers(0, parts - 1)))
    if name == "channel_shuffle":
        return dict(groups=draw(st.sampled_from([1, 2, 3])))
    return {}


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
    return eval(str(ctor), defined_classes()), str(ctor)  # noqa: S307 - archc's own output, under test


def _lit(value):
    from archc.compiler.pyexpr import Lit

    return Lit(value)


def defined_classes() -> dict:
    """What a generated file defines besides torch: the helpers and the ops' own classes (Op.defines)."""
    from archc.compiler.emit_source import DEFINED

    namespace = {"nn": nn, "torch": torch, "conv_padding": conv_padding}
    for source in DEFINED.values():
        exec(source, namespace)  # noqa: S102 - archc's own classes, under test
    return namespace


MODULE_OPS = sorted(n for n, op in OPS.items() if op.callable_)
# ops whose class the file defines (it imports only torch): compared with torch's meaning by what they compute
OWN_CLASSES = {n for n, op in OPS.items() if op.defines}


@settings(max_examples=400, deadline=None)
@given(data=st.data(), name=st.sampled_from(MODULE_OPS), c=st.integers(1, 6), h=st.integers(1, 12),
       w=st.integers(1, 12), vector=st.booleans())
def test_emitted_constructor_is_the_op(data, name, c, h, w, vector):
    op = OPS[name]
    vector_ops = ("linear", "batchnorm", "dropout", "relu", "identity", "flatten", "layernorm", "channel_linear")
    shape = (c * h * w,) if (vector and name in vector_ops) or name == "linear" else (c, h, w)
    attrs = op.Attrs(**attrs_for(name, data.draw, c))
    try:
        out = op.infer(attrs, [shape])
    except ShapeError:
        out = None
    in_place = op.in_place and data.draw(st.booleans())
    module, text = emitted(name, attrs, shape, in_place)
    reference = torch_layer(name, attrs, shape)
    if name not in OWN_CLASSES:  # the file's own classes are compared by what they hold and compute
        assert type(module) is type(reference), text
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
    except (RuntimeError, IndexError):  # torch refuses it (IndexError: more chunks asked for than there are)
        actual, y, expected = None, None, None
    assert out == actual, text
    if y is not None:
        assert torch.equal(y, expected), text
        # layer scale is priced as torchvision's CNBlock holds it: a parameter of the block, which torchinfo's
        # total leaves out (tests/test_lowering.py compares a whole CNBlock), not a layer of its own
        if name != "layer_scale":
            summary = torchinfo.summary(reference, input_data=x, verbose=0, mode="eval")
            assert summary.total_mult_adds == 2 * op.macs(attrs, [shape], out), text


def test_joins_are_forward_expressions_not_modules():
    for name in ("add", "concat", "multiply"):
        assert OPS[name].module is None and OPS[name].join and not OPS[name].callable_
