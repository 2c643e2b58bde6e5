"""The in-memory emitter: static = runtime for every zoo network, weights ported
from torchvision give the same logits, and the modules trace and compile."""

import pytest

import archc
from archc.compiler.check import build_graph
from conftest import ZOO, small_input
from oracles import assert_ports, randomise

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")
from torch import nn  # noqa: E402

ZOO_FILES = sorted(p.name for p in ZOO.glob("*.arch"))
REFERENCES = {"mobilenet_v3_small.arch": lambda: torchvision.models.mobilenet_v3_small()}


@pytest.mark.parametrize("name", ZOO_FILES)
def test_static_equals_runtime(name):
    report = archc.check(ZOO / name)
    model = archc.build(ZOO / name).eval()
    assert sum(p.numel() for p in model.parameters()) == report.params
    assert sum(b.numel() for b in model.buffers()) == report.buffers
    seen = {}
    for path, module in model.named_modules():
        if not list(module.children()):
            module.register_forward_hook(lambda m, i, o, path=path: seen.__setitem__(path, tuple(o.shape[1:])))
    with torch.no_grad():
        out = model(torch.zeros(2, *report.input))
    assert list(out.shape[1:]) == report.output_shape
    # every layer that runs in eval mode (aux heads run in training only)
    expected = {l.name: tuple(l.output_shape) for l in report.layers if "~" not in l.name and not l.aux}
    assert seen == expected


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_ported_torchvision_weights_give_the_same_logits(name):
    torch.manual_seed(0)
    reference = randomise(REFERENCES[name]()).eval()
    model = archc.build(ZOO / name)
    x = torch.randn(4, *archc.check(ZOO / name).input, generator=torch.Generator().manual_seed(1))
    assert_ports(model, reference, x)


def test_port_names_the_first_tensor_that_does_not_fit():
    model = archc.build(ZOO / "mobilenet_v3_small.arch", num_classes=42)
    with pytest.raises(ValueError, match=r"classifier\.2\.linear\.weight \(42, 1024\).*classifier\.3\.weight \(1000, 1024\)"):
        archc.port(model, torchvision.models.mobilenet_v3_small())


def nin_d2l():
    def block(i, o, k, s, p):
        return nn.Sequential(nn.Conv2d(i, o, k, s, p), nn.ReLU(), nn.Conv2d(o, o, 1), nn.ReLU(), nn.Conv2d(o, o, 1), nn.ReLU())

    return nn.Sequential(block(1, 96, 11, 4, 0), nn.MaxPool2d(3, 2), block(96, 256, 5, 1, 2), nn.MaxPool2d(3, 2),
                         block(256, 384, 3, 1, 1), nn.MaxPool2d(3, 2), nn.Dropout(0.5),
                         block(384, 10, 3, 1, 1), nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten())


def test_nin_equals_seed_002_network_with_its_weights():
    reference = randomise(nin_d2l()).eval()
    model = archc.build(ZOO / "nin.arch").eval()
    archc.port(model, reference)
    x = torch.randn(2, 1, 224, 224, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert torch.allclose(model(x), reference(x), atol=1e-5, rtol=1e-4)


# A graph break comes from a module's code, not from how many of it a network has: these four files' constructs
# are their siblings' (EfficientNet-B0's MBConv, SE and stochastic depth; ResNeXt's bottleneck; MobileNetV3-Small's
# and MobileNetV2's inverted residuals), and dynamo took 26 s of CI's CPU over them; they run under heavy.
COMPILE_HEAVY = {"efficientnet_v2.arch", "wide_resnet.arch", "mobilenet_v3_large.arch", "mnasnet.arch"}


@pytest.mark.filterwarnings("ignore:`torch.jit.trace")
@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.heavy) if n in COMPILE_HEAVY else n
                                  for n in ZOO_FILES])
def test_compiles_without_graph_breaks_and_traces(name):
    torch._dynamo.reset()
    model = archc.build(ZOO / name, input=small_input(name)).eval()
    x = torch.randn(2, *archc.check(ZOO / name, input=small_input(name)).input)
    with torch.no_grad():
        expected = model(x)
        compiled = torch.compile(model, fullgraph=True, backend="eager")  # fullgraph: a graph break is an error
        assert torch.allclose(compiled(x), expected)
        traced = torch.jit.trace(model, x)
        assert torch.allclose(traced(x), expected)


def test_aux_heads_run_in_training_only():
    text = """\
block head(n):
    global_avgpool()
    flatten()
    linear(n)

network g(num_classes = 4, aux = true)
input 3 x 16 x 16

features:
    conv(8, 3)
    aux aux1 = head(num_classes) if aux
    conv(8, 3)

classifier:
    global_avgpool()
    flatten()
    linear(num_classes)
"""
    from archc.compiler.emit_torch import build_module

    net = build_module(build_graph(ZOO / "g.arch", text=text))
    x = torch.randn(2, 3, 16, 16)
    logits, aux1 = net.train()(x)
    assert logits.shape == aux1.shape == (2, 4)
    assert net.eval()(x).shape == (2, 4)
    no_aux = build_module(build_graph(ZOO / "g.arch", text=text, aux=False))
    assert no_aux.train()(x).shape == (2, 4)


def test_onnx_export_runs_in_onnxruntime_and_agrees(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from archc.compiler.export import export_onnx

    model = randomise(archc.build(ZOO / "mobilenet_v3_small.arch")).eval()
    export_onnx(model, (3, 224, 224), tmp_path / "m.onnx")
    session = ort.InferenceSession(str(tmp_path / "m.onnx"))
    x = torch.randn(3, 3, 224, 224, generator=torch.Generator().manual_seed(3))  # a batch size not exported
    (y,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        expected = model(x)
    assert (torch.from_numpy(y) - expected).abs().max() <= 1e-4 * expected.abs().max()


def test_port_and_compare_against_a_torchvision_builder():
    from archc.compiler.export import port_and_compare, torchvision_reference

    torch.manual_seed(0)
    reference = randomise(torchvision_reference("mobilenet_v3_small"))
    difference = port_and_compare(archc.build(ZOO / "mobilenet_v3_small.arch"), reference, (3, 224, 224))
    assert difference <= 1e-4
    with pytest.raises(ValueError, match="no model 'mobilenet_v9'"):
        torchvision_reference("mobilenet_v9")


def test_port_and_export_commands(tmp_path):
    from conftest import run_archc

    out = tmp_path / "mb.pt"
    result = run_archc("port", "architectures/mobilenet_v3_small.arch", "--from", "torchvision:mobilenet_v3_small",
                       "-o", str(out), timeout=300)
    assert result.returncode == 0, result.stderr
    assert "agree" in result.stdout
    state = torch.load(out, weights_only=True)
    assert list(state) == list(archc.build(ZOO / "mobilenet_v3_small.arch").state_dict())
    again = run_archc("port", "architectures/mobilenet_v3_small.arch", "--from", str(out), "-o", str(tmp_path / "b.pt"))
    assert again.returncode == 0, again.stderr
    wrong = run_archc("port", "architectures/mobilenet_v3_small.arch", "--set", "num_classes=42", "--from",
                      "torchvision:mobilenet_v3_small", "-o", str(tmp_path / "c.pt"), timeout=300)
    assert wrong.returncode == 1 and "classifier.2.linear.weight (42, 1024)" in wrong.stderr
    assert run_archc("port", "architectures/nin.arch", "--from", "nowhere.pt", "-o", "x.pt").returncode == 2
    pytest.importorskip("onnxscript")
    exported = run_archc("export", "architectures/nin.arch", "--onnx", str(tmp_path / "nin.onnx"), timeout=300)
    assert exported.returncode == 0, exported.stderr
    assert (tmp_path / "nin.onnx").stat().st_size > 1_000_000  # the weights are in it
