"""Each op spec against the torch module it builds: the same output shape, the
same parameters and buffers in the same order, and an error where torch errs."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from archc.compiler.ops import OPS, ShapeError

torch = pytest.importorskip("torch")

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
    return {}


MODULE_OPS = sorted(n for n, op in OPS.items() if op.callable_)


@settings(max_examples=400, deadline=None)
@given(data=st.data(), name=st.sampled_from(MODULE_OPS), c=st.integers(1, 6), h=st.integers(1, 12),
       w=st.integers(1, 12), vector=st.booleans())
def test_op_spec_equals_its_torch_module(data, name, c, h, w, vector):
    op = OPS[name]
    shape = (c * h * w,) if vector and name in ("linear", "batchnorm", "dropout", "relu", "identity", "flatten") \
        else (c, h, w)
    if name == "linear":
        shape, attrs = (c * h,), op.Attrs(out=data.draw(st.integers(1, 5)), bias=data.draw(st.booleans()))
    else:
        attrs = op.Attrs(**attrs_for(name, data.draw, c))
    try:
        out = op.infer(attrs, [shape])
    except ShapeError:
        out = None
    module = op.torch_module(attrs, [shape]).eval()
    x = torch.zeros(2, *shape)
    try:
        with torch.no_grad():
            y = module(x)
        actual = tuple(y.shape[1:]) if y.numel() else None
    except RuntimeError:
        actual = None
    assert out == actual
    assert list(op.param_shapes(attrs, [shape]).items()) == [(k, tuple(p.shape)) for k, p in module.named_parameters()]
    assert list(op.buffer_shapes(attrs, [shape]).items()) == [(k, tuple(b.shape)) for k, b in module.named_buffers()]


def test_merge_ops_have_no_module():
    for name in ("add", "concat", "multiply"):
        with pytest.raises(NotImplementedError):
            OPS[name].torch_module(OPS[name].Attrs(), [(1, 1, 1)])
