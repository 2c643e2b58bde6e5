"""One lowering (issue 10): the nine ways the checker, the module and the generated source used to part,
each as it was found, and the module `archc.build` returns as the generated file's classes."""

import pytest
from oracles import assert_same_network

import archc
from archc.compiler.check import build_graph
from archc.dsl.diagnostics import ArchError
from conftest import ZOO, run_archc

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

HEAD = "\nhead:\n    global_avgpool()\n    flatten()\n    linear(3)\n"


def network(tmp_path, blocks: str, body: str, params: str = "", size: str = "3 x 16 x 16"):
    path = tmp_path / "net.arch"
    path.write_text(f"{blocks}\nnetwork net({params})\ninput {size}\n\nfeatures:\n{body}{HEAD}", encoding="utf-8")
    return path


def from_source(text: str):
    """The network of a generated file, run on its own."""
    import types

    module = types.ModuleType("generated")
    exec(compile(text, "generated.py", "exec"), module.__dict__)  # noqa: S102 - archc's own output, under test
    return module.build()


def same_as_checked(path, **kwargs):
    """The generated file's network is the checked graph (tests/oracles.py), and so is archc.build's;
    returns the source."""
    graph = build_graph(path, **kwargs)
    text = archc.source(path, **kwargs)
    assert_same_network(graph, from_source(text), graph.input_shape)
    assert_same_network(graph, archc.build(path, **kwargs), graph.input_shape)
    return text


def test_1_ops_with_arguments_pass_as_values():
    """efficientnet b5…b7: `norm = batchnorm(eps = 0.001, momentum = 0.01)` is a partial in the file."""
    text = archc.source(ZOO / "efficientnet.arch", variant="b5", input="3x32x32")
    assert "norm=partial(batchnorm, eps=0.001, momentum=0.01)" in text and "from functools import partial" in text
    assert "Ref" not in text
    graph = build_graph(ZOO / "efficientnet.arch", variant="b5", input="3x32x32")
    assert_same_network(graph, from_source(text), (3, 32, 32))
    model = archc.build(ZOO / "efficientnet.arch", variant="b5", input="3x32x32")
    assert {(m.eps, m.momentum) for m in model.modules() if isinstance(m, nn.BatchNorm2d)} == {(0.001, 0.01)}


def test_2_round_is_written_with_its_helper(tmp_path):
    path = network(tmp_path, "block widen(out):\n    conv(round(out * 1.5), 3)\n    relu()\n",
                   "    widen(5)\n    widen(7)\n")
    text = same_as_checked(path)
    assert "def round_half_up(" in text and "round_half_up(out * 1.5)" in text


def test_3_a_default_may_come_before_a_parameter_without(tmp_path):
    path = network(tmp_path, "block cbr(k = 3, c, s = 1):\n    conv(c, k, stride = s)\n    relu()\n",
                   "    cbr(5, 8)\n    cbr(c = 4, s = 2)\n")
    text = same_as_checked(path)
    assert "def __init__(self, in_c, c, k=3, s=1):" in text
    assert "Cbr(3, 8, k=5)" in text and "Cbr(8, 4, s=2)" in text


def test_4_and_or_are_booleans_in_the_file_too(tmp_path):
    """`(a or c2) == 1` with a = 0, c2 = 2 is `true == 1`, true: Python's `(0 or 2) == 1` is false."""
    blocks = ("block t(a = 0, c2 = 2, s = 1):\n    if (a or c2) == 1:\n        relu()\n"
              "    let d = s == 1 and 0.5\n    if d == true:\n        sigmoid()\n")
    path = network(tmp_path, blocks, "    conv(4, 3)\n    t()\n    t(c2 = 0)\n    t(s = 2)\n")
    graph = build_graph(path)
    ops = [[l.op for l in graph.layers() if l.name.startswith(f"features.{i}.")] for i in (1, 2, 3)]
    assert ops == [["relu", "sigmoid"], ["sigmoid"], ["relu"]]
    same_as_checked(path)


def test_5_none_means_the_default_in_the_file_too(tmp_path):
    path = network(tmp_path, "block bn(e = none):\n    conv(4, 3)\n    batchnorm(eps = e)\n",
                   "    bn()\n    bn(e = 0.001)\n")
    text = same_as_checked(path)
    model = archc.build(path)
    assert [m.eps for m in model.modules() if isinstance(m, nn.BatchNorm2d)] == [1e-5, 0.001]
    assert "eps=e)" not in text.replace("eps=eps", "")


def test_6_in_h_of_a_vector_is_one_not_a_traceback(tmp_path):
    path = tmp_path / "net.arch"
    path.write_text("block fch(n):\n    linear(n * in.h)\n\nnetwork net()\ninput 3 x 8 x 8\n\n"
                    "f:\n    conv(4, 3)\n    fch(2)\n    global_avgpool()\n    flatten()\n    fch(5)\n", encoding="utf-8")
    assert not archc.check(path).ok  # fch(2) on a map: linear needs a vector
    path.write_text(path.read_text().replace("    fch(2)\n", ""), encoding="utf-8")
    result = run_archc("build", str(path))
    assert result.returncode == 0 and "Traceback" not in result.stderr
    same_as_checked(path)


def test_7_tables_in_blocks_and_joins_in_sections_build(tmp_path):
    blocks = ("block cbr(c, k = 3, s = 1):\n    conv(c, k, stride = s)\n    relu()\n\n"
              "block stage(c, reps = 2):\n    | operator | c | k | n    | s |\n"
              "    | cbr      | c | 3 | 1    | 2 |\n    | cbr      | c | 1 | reps | 1 |\n")
    body = ("    | operator | c | reps |\n    | stage    | 8 | 1    |\n    | stage    | 8 | 3    |\n"
            "    residual:\n        conv(8, 3)\n        relu()\n"
            "    concat:\n        branch: conv(4, 1)\n        branch: maxpool(3, stride = 1, padding = 1)\n"
            "    multiply:\n        global_avgpool()\n        conv(12, 1)\n        sigmoid()\n")
    path = network(tmp_path, blocks, body, size="3 x 32 x 32")
    text = same_as_checked(path)
    assert "for i in range(2, 1 + reps)" in text or "for _ in range(reps - 1)" in text or "reps" in text
    model = archc.build(path)
    assert isinstance(model.features[0].layers, nn.Sequential)
    # the residual, concat and gate standing in the section: a class each, elements 2, 3 and 4
    assert [type(model.features[i]).__name__ for i in (2, 3, 4)] == ["Features0", "Features1", "Features2"]


def test_8_a_where_on_the_repeat_column_checks_the_rows_above_the_first_rescaled_one(tmp_path):
    """The repeat counts are read ahead of the rows (cells may use `count`); that must not stop the checks
    before the row whose count the `where` changes."""
    blocks = "block c3(c):\n    conv(c, 3)\n"
    body = ("    | input      | operator | c  | n |\n"
            "    | 16² × 3    | c3       | 8  | - |\n"
            "    | 16² × 9    | c3       | 8  | - |\n"  # wrong: the row above makes 8 channels
            "    | 16² × 8    | c3       | 8  | 2 |\n")
    path = tmp_path / "net.arch"
    path.write_text(f"{blocks}\nnetwork net(depth = 2)\ninput 3 x 16 x 16\n\n"
                    f"features where n = n * depth:\n{body}{HEAD}", encoding="utf-8")
    report = archc.check(path)
    assert [(d.code, d.span.line) for d in report.diagnostics if d.severity == "error"] == [("E302", 10)]


def test_9_the_header_shows_values_as_the_file_wrote_them():
    text = archc.source(ZOO / "efficientnet.arch", variant="b5", input="3x32x32")
    assert "#   norm = batchnorm(eps = 0.001, momentum = 0.01)" in text
    assert "Ref(" not in text and "kind=" not in text


def test_the_module_is_the_files_classes_and_exports():
    model = archc.build(ZOO / "mobilenet_v3_small.arch").eval()
    assert type(model).__name__ == "MobilenetV3Small"
    assert type(model.features[1]).__name__ == "Bneck" and isinstance(model.features, nn.Sequential)
    assert type(model.features[1].squeeze_excite).__name__ == "SqueezeExcite"
    from archc.compiler.emit_torch import load_source

    standalone = load_source(archc.source(ZOO / "mobilenet_v3_small.arch")).build()
    assert [(n, type(m).__name__) for n, m in model.named_modules()] == \
        [(n, type(m).__name__) for n, m in standalone.named_modules()]
    x = torch.randn(1, 3, 224, 224)
    exported = torch.export.export(model, (x,))
    with torch.no_grad():
        assert torch.allclose(exported.module()(x), model(x), atol=1e-5)


def test_no_class_is_named_like_torch():
    from archc.compiler.naming import NN_CLASSES

    for name in ("mobilenet_v3_small.arch", "googlenet.arch", "inception_v3.arch"):
        text = archc.source(ZOO / name)
        classes = [line.split()[1].split("(")[0] for line in text.splitlines() if line.startswith("class ")]
        assert not [c for c in classes if c in NN_CLASSES or any(n.startswith(c) for n in NN_CLASSES)], classes
    assert "class Conv2dBlock(" in archc.source(ZOO / "mobilenet_v3_small.arch")


def test_what_cannot_be_written_says_where(tmp_path):
    """The one refusal left in the emitter is a located E500, never a traceback: an aux head tapping a
    tensor inside a block is refused by the checker itself (an aux head stands in a section)."""
    path = tmp_path / "net.arch"
    path.write_text("block b():\n    conv(4, 3)\n    aux a = linear(2)\n\nnetwork net()\ninput 3 x 8 x 8\n\n"
                    "f:\n    b()\n", encoding="utf-8")
    report = archc.check(path)
    assert [(d.code, d.span.line) for d in report.diagnostics if d.severity == "error"] == [("E209", 3)]
    with pytest.raises(ArchError):
        archc.source(path)
