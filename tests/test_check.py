"""archc check against the oracles: torchvision's models measured by torchinfo 1.8."""

import json
import os
import subprocess
import sys

import pytest

import archc
from archc.compiler.check import UsageError, parse_memory
from conftest import ROOT, ZOO, run_archc
from oracles import archc_layers, hooked_layers

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")
torchinfo = pytest.importorskip("torchinfo")
from torch import nn  # noqa: E402


def torchinfo_stats(model, input_size):
    summary = torchinfo.summary(model, input_size=input_size, verbose=0, mode="eval")
    return summary


def nin_d2l(num_classes=10):
    """Seed 002's network, written by hand in torch."""

    def block(i, o, k, s, p):
        return nn.Sequential(nn.Conv2d(i, o, k, s, p), nn.ReLU(), nn.Conv2d(o, o, 1), nn.ReLU(), nn.Conv2d(o, o, 1), nn.ReLU())

    return nn.Sequential(block(1, 96, 11, 4, 0), nn.MaxPool2d(3, 2), block(96, 256, 5, 1, 2), nn.MaxPool2d(3, 2),
                         block(256, 384, 3, 1, 1), nn.MaxPool2d(3, 2), nn.Dropout(0.5),
                         block(384, num_classes, 3, 1, 1), nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten())


def test_mobilenet_v3_small_matches_torchvision_and_torchinfo():
    report = archc.check(ZOO / "mobilenet_v3_small.arch")
    assert report.ok, report.diagnostics
    stats = torchinfo_stats(torchvision.models.mobilenet_v3_small(), (1, 3, 224, 224))
    assert report.params == stats.total_params == 2542856
    assert report.macs == stats.total_mult_adds == 56527424
    assert report.output_shape == [1000]


def test_seed_001_figure_at_42_classes():
    report = archc.check(ZOO / "mobilenet_v3_small.arch", num_classes=42)
    assert report.params == 1560906
    model = torchvision.models.mobilenet_v3_small(num_classes=42)
    assert report.params == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("batch", [1, 32])
def test_memory_equals_torchinfo(batch):
    report = archc.check(ZOO / "mobilenet_v3_small.arch", batch=batch)
    stats = torchinfo_stats(torchvision.models.mobilenet_v3_small(), (batch, 3, 224, 224))
    mb = lambda b: round(b / 1e6, 2)  # noqa: E731
    assert report.memory.input_mb == mb(stats.total_input)
    assert report.memory.forward_backward_mb == mb(stats.total_output_bytes)
    assert report.memory.params_mb == mb(stats.total_param_bytes)
    assert report.memory.total_mb == mb(stats.total_input + stats.total_output_bytes + stats.total_param_bytes)
    assert report.macs == stats.total_mult_adds
    if batch == 32:  # the acceptance figures of the issue
        assert (report.memory.input_mb, report.memory.forward_backward_mb, report.memory.params_mb,
                report.memory.total_mb) == (19.27, 724.59, 10.17, 754.03)


def test_nin_equals_torchinfo_on_seed_002_network():
    report = archc.check(ZOO / "nin.arch")
    assert report.ok
    stats = torchinfo_stats(nin_d2l(), (1, 1, 224, 224))
    assert report.params == stats.total_params
    assert report.macs == stats.total_mult_adds
    assert report.output_shape == [10]


def test_every_layer_shape_and_params_match_torchvision_in_order():
    report = archc.check(ZOO / "mobilenet_v3_small.arch")
    assert archc_layers(report) == hooked_layers(torchvision.models.mobilenet_v3_small(), torch.zeros(1, 3, 224, 224))


def test_other_inputs_follow_torch():
    report = archc.check(ZOO / "mobilenet_v3_small.arch", input="3x160x192", batch=2)
    stats = torchinfo_stats(torchvision.models.mobilenet_v3_small(), (2, 3, 160, 192))
    assert report.macs == stats.total_mult_adds
    assert any(d.code == "N001" for d in report.diagnostics)  # size columns describe 224×224


def test_max_batch_is_the_largest_that_fits():
    budget = parse_memory("6GiB")
    report = archc.check(ZOO / "mobilenet_v3_small.arch", memory="6GiB")
    n = report.max_batch
    assert n > 0

    def total_bytes(batch):
        r = archc.check(ZOO / "mobilenet_v3_small.arch", batch=batch)
        return r.memory.total_mb * 1e6

    assert total_bytes(n) <= budget + 1e4  # the MB figures are rounded to 10 kB
    assert total_bytes(n + 1) > budget - 1e4


@pytest.mark.parametrize("text,expected", [("6GiB", 6 * 2**30), ("6G", 6 * 2**30), ("6GB", 6 * 10**9),
                                           ("512MiB", 512 * 2**20), ("1024B", 1024)])
def test_memory_sizes(text, expected):
    assert parse_memory(text) == expected


def test_bad_memory_size_is_a_usage_error():
    with pytest.raises(UsageError):
        parse_memory("lots")
    result = run_archc("check", "architectures/nin.arch", "--memory", "lots")
    assert result.returncode == 2 and "Traceback" not in result.stderr


def test_check_json_has_the_documented_fields():
    result = run_archc("check", "architectures/mobilenet_v3_small.arch", "--json", "--batch", "32", "--memory", "6GiB",
                       "--set", "num_classes=42")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    for key in ("network", "variant", "input", "batch", "output_shape", "params", "trainable_params", "macs", "memory",
                "max_batch", "layers", "diagnostics"):
        assert key in data
    assert data["params"] == 1560906 and data["input"] == [3, 224, 224] and data["batch"] == 32
    assert set(data["memory"]) == {"input_mb", "forward_backward_mb", "params_mb", "total_mb"}
    assert {"name", "op", "line", "output_shape", "params", "macs"} <= set(data["layers"][0])
    assert isinstance(data["max_batch"], int)


def test_check_never_imports_torch():
    code = ("import sys; sys.modules['torch'] = None\n"  # any `import torch` now fails
            "from archc.cli import main\n"
            f"code = main(['check', r'{ZOO / 'mobilenet_v3_small.arch'}', '--json'])\n"
            "assert 'torch' not in [m for m in sys.modules if sys.modules[m] is not None]\n"
            "raise SystemExit(code)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["params"] == 2542856


def test_unknown_parameter_is_a_usage_error():
    result = run_archc("check", "architectures/nin.arch", "--set", "num_clases=3")
    assert result.returncode == 2
    assert "num_classes" in result.stderr and "Traceback" not in result.stderr


def test_set_accepts_names_and_booleans():
    text = (ZOO / "nin.arch").read_text().replace("network nin(num_classes = 10, dropout = 0.5)",
                                                  "network nin(num_classes = 10, dropout = 0.5, act = relu, deep = false)")
    text += "\nextra:\n    act()\n    if deep:\n        relu6()\n"
    report = archc.check(ZOO / "nin.arch", text=text, act="gelu", deep=True, num_classes=3)
    assert report.ok and report.parameters["act"] == "gelu" and report.parameters["deep"] is True
    assert [l.op for l in report.layers if l.name.startswith("extra.")] == ["gelu", "relu6"]  # and they act
    plain = archc.check(ZOO / "nin.arch", text=text, num_classes=3)
    assert [l.op for l in plain.layers if l.name.startswith("extra.")] == ["relu"]


def test_the_graph_ir_is_a_networkx_dag_in_build_order():
    import networkx

    from archc.compiler.check import build_graph

    graph = build_graph(ZOO / "mobilenet_v3_small.arch")
    g = graph.nx()
    assert networkx.is_directed_acyclic_graph(g)
    assert set(g.nodes) == {"input", *graph.order}
    position = {name: i for i, name in enumerate(graph.order)}
    assert all(position.get(a, -1) < position[b] for a, b in g.edges)  # build order is topological
    adds = [n for n in graph.order if graph.layer(n).op == "add"]
    assert len(adds) == 6 and all(g.in_degree(n) == 2 for n in adds)  # the six residual bnecks of Table 2
    gates = [n for n in graph.order if graph.layer(n).op == "multiply"]
    assert len(gates) == 9  # nine rows with SE ✓


@pytest.mark.parametrize("disabled", [None, "some_plugin"])
def test_the_command_line_skips_pydantics_plugin_scan_only_when_every_plugin_is_off(tmp_path, disabled):
    """archc's command line disables pydantic's plugins, and stands in for the loader that would import
    importlib.metadata to read that setting (archc/cli.py): op arguments are still validated; a user
    who disables only some plugins gets pydantic's own loader."""
    net = tmp_path / "net.arch"
    net.write_text("network t()\ninput 3 x 8 x 8\nfeatures:\n    conv(out = -1, k = 3)\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "PYDANTIC_DISABLE_PLUGINS"}
    if disabled:
        env["PYDANTIC_DISABLE_PLUGINS"] = disabled
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "archc", "check", str(net)], cwd=ROOT,
                            capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 1
    assert "error[E209]: conv: 'out' input should be greater than 0 (got -1)" in result.stderr
    imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}
    assert ("importlib.metadata" in imported) == (disabled is not None)
