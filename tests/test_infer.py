"""Hypothesis: for random stacks of convs, pools, norms, linear layers and blocks,
the statically inferred shapes and parameter counts equal what torch computes on
an equivalent plain torch.nn stack built here."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import archc
from conftest import ZOO

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

BLOCKS = """
block res(out, s = 1):
    residual:
        conv(out, 3, stride = s, bias = false)
        batchnorm()
        relu()
        conv(out, 3, bias = false)
        batchnorm()
    shortcut if s != 1 or in.c != out:
        conv(out, 1, stride = s, bias = false)
        batchnorm()
    relu()

block mix(a, b):
    concat:
        branch: conv(a, 1)
        branch:
            conv(b, 1)
            conv(b, 3, padding = 1)
        branch: maxpool(3, stride = 1, padding = 1)

block gate(squeeze):
    multiply:
        global_avgpool()
        conv(squeeze, 1)
        relu()
        conv(in.c, 1)
        sigmoid()
"""


class Res(nn.Module):
    def __init__(self, cin, out, s):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(cin, out, 3, s, 1, bias=False), nn.BatchNorm2d(out), nn.ReLU(),
                                  nn.Conv2d(out, out, 3, 1, 1, bias=False), nn.BatchNorm2d(out))
        self.short = (nn.Sequential(nn.Conv2d(cin, out, 1, s, bias=False), nn.BatchNorm2d(out))
                      if s != 1 or cin != out else nn.Identity())

    def forward(self, x):
        return torch.relu(self.body(x) + self.short(x))


class Mix(nn.Module):
    def __init__(self, cin, a, b):
        super().__init__()
        self.b1 = nn.Conv2d(cin, a, 1)
        self.b2 = nn.Sequential(nn.Conv2d(cin, b, 1), nn.Conv2d(b, b, 3, padding=1))
        self.b3 = nn.MaxPool2d(3, 1, 1)

    def forward(self, x):
        return torch.cat([self.b1(x), self.b2(x), self.b3(x)], 1)


class Gate(nn.Module):
    def __init__(self, c, squeeze):
        super().__init__()
        self.f = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(c, squeeze, 1), nn.ReLU(), nn.Conv2d(squeeze, c, 1),
                               nn.Sigmoid())

    def forward(self, x):
        return x * self.f(x)


@st.composite
def layer(draw):
    kind = draw(st.sampled_from(["conv", "conv", "maxpool", "avgpool", "bn", "act", "res", "mix", "gate", "dw"]))
    if kind == "conv":
        return ("conv", draw(st.integers(1, 12)), draw(st.sampled_from([1, 2, 3, 5])), draw(st.integers(1, 3)),
                draw(st.integers(0, 2)), draw(st.booleans()))
    if kind in ("maxpool", "avgpool"):
        k = draw(st.integers(1, 4))
        return (kind, k, draw(st.integers(1, 3)), draw(st.integers(0, k // 2)), draw(st.booleans()))
    if kind == "res":
        return ("res", draw(st.integers(1, 8)), draw(st.integers(1, 2)))
    if kind == "mix":
        return ("mix", draw(st.integers(1, 6)), draw(st.integers(1, 6)))
    if kind == "gate":
        return ("gate", draw(st.integers(1, 4)))
    if kind == "dw":
        return ("dw", draw(st.sampled_from([3, 5])), draw(st.integers(1, 2)))
    if kind == "act":
        return ("act", draw(st.sampled_from(["relu", "relu6", "hardswish", "hardsigmoid", "sigmoid", "silu", "gelu",
                                              "tanh", "leaky_relu"])))
    return ("bn",)


def build(layers, head, cin):
    """(.arch statements, torch module)."""
    lines, mods, c = [], [], cin
    for spec in layers:
        kind = spec[0]
        if kind == "conv":
            _, out, k, s, p, bias = spec
            lines.append(f"conv({out}, {k}, stride = {s}, padding = {p}, bias = {str(bias).lower()})")
            mods.append(nn.Conv2d(c, out, k, s, p, bias=bias))
            c = out
        elif kind in ("maxpool", "avgpool"):
            _, k, s, p, ceil = spec
            lines.append(f"{kind}({k}, stride = {s}, padding = {p}, ceil = {str(ceil).lower()})")
            cls = nn.MaxPool2d if kind == "maxpool" else nn.AvgPool2d
            mods.append(cls(k, s, p, ceil_mode=ceil))
        elif kind == "bn":
            lines.append("batchnorm()")
            mods.append(nn.BatchNorm2d(c))
        elif kind == "act":
            lines.append(f"{spec[1]}()")
            mods.append({"relu": nn.ReLU, "relu6": nn.ReLU6, "hardswish": nn.Hardswish, "hardsigmoid": nn.Hardsigmoid,
                         "sigmoid": nn.Sigmoid, "silu": nn.SiLU, "gelu": nn.GELU, "tanh": nn.Tanh,
                         "leaky_relu": nn.LeakyReLU}[spec[1]]())
        elif kind == "res":
            lines.append(f"res({spec[1]}, s = {spec[2]})")
            mods.append(Res(c, spec[1], spec[2]))
            c = spec[1]
        elif kind == "mix":
            lines.append(f"mix({spec[1]}, {spec[2]})")
            mods.append(Mix(c, spec[1], spec[2]))
            c = spec[1] + spec[2] + c
        elif kind == "gate":
            lines.append(f"gate({spec[1]})")
            mods.append(Gate(c, spec[1]))
        elif kind == "dw":
            lines.append(f"conv(in_c, {spec[1]}, stride = {spec[2]}, groups = in_c, bias = false)".replace("in_c", str(c)))
            mods.append(nn.Conv2d(c, c, spec[1], spec[2], (spec[1] - 1) // 2, groups=c, bias=False))
    if head:
        lines += ["global_avgpool()", "flatten()", f"linear({head})"]
        mods += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, head)]
    return lines, nn.Sequential(*mods)


def source(lines, cin, h, w):
    body = "\n".join("    " + line for line in lines)
    return f"{BLOCKS}\nnetwork random()\ninput {cin} x {h} x {w}\n\nlayers:\n{body}\n"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layers=st.lists(layer(), min_size=1, max_size=6), cin=st.integers(1, 4), h=st.integers(6, 40),
       w=st.integers(6, 40), head=st.sampled_from([0, 0, 7]))
def test_inferred_shapes_and_params_equal_torch(layers, cin, h, w, head):
    lines, model = build(layers, head, cin)
    report = archc.check(ZOO / "random.arch", text=source(lines, cin, h, w))
    model.eval()
    try:
        with torch.no_grad():
            out = model(torch.zeros(2, cin, h, w))
        torch_error = None if all(d > 0 for d in out.shape) else "empty"
    except RuntimeError as error:
        torch_error = str(error)
    errors = [d for d in report.diagnostics if d.severity == "error"]
    if torch_error is not None:
        assert errors, f"torch failed ({torch_error}) but archc accepted:\n" + "\n".join(lines)
        assert all(d.code in ("E301", "E304", "E303") and d.span.line > 0 for d in errors)
        return
    assert not errors, [d.message for d in errors]
    assert report.output_shape == list(out.shape[1:])
    assert report.params == sum(p.numel() for p in model.parameters())
    assert report.buffers == sum(b.numel() for b in model.buffers())


@settings(max_examples=25, deadline=None)
@given(layers=st.lists(layer(), min_size=1, max_size=5), cin=st.integers(1, 3), size=st.integers(16, 32))
def test_per_layer_shapes_equal_forward_hooks(layers, cin, size):
    lines, model = build([spec for spec in layers if spec[0] in ("conv", "bn", "act", "dw")], 0, cin)
    if not lines:
        return
    report = archc.check(ZOO / "random.arch", text=source(lines, cin, size, size))
    if not report.ok:
        return  # a collapsing stack is covered above
    seen = []
    for m in model:
        m.register_forward_hook(lambda m, i, o: seen.append(tuple(o.shape[1:])))
    with torch.no_grad():
        model(torch.zeros(1, cin, size, size))
    assert [tuple(l.output_shape) for l in report.layers] == seen
