"""The source emitter: for every zoo network the file `archc build` writes, run on its own with
`build(num_classes=7)`, is the module `archc.build(..., num_classes=7)` returns (same state_dict keys in
order, same outputs for the same weights, in eval and in training), it passes py_compile and ruff, runs with torch alone, compiles without
graph breaks, and no name or text from a .arch file can put code into it."""

import ast as pyast
import py_compile
import subprocess
import sys
import types

import pytest
import torch
from archc.compiler.check import build_graph
from archc.compiler.emit_carried import MAX_CHAIN
from archc.compiler.naming import MODULE_ATTRIBUTES
from archc.dsl.diagnostics import ArchError
from conftest import ROOT, ZOO, run_archc, small_input
from oracles import assert_same_network, randomise, uninitialised
from torch import nn

import archc

CASES = [(f.name, None) for f in sorted(ZOO.glob("*.arch"))] + [
    ("resnet.arch", "resnet50"), ("efficientnet.arch", "b1"), ("googlenet.arch", None)]


def load(text: str, name: str = "generated"):
    module = types.ModuleType(name)
    exec(compile(text, f"{name}.py", "exec"), module.__dict__)  # noqa: S102 - archc's own output, under test
    return module


@pytest.mark.parametrize(("name", "variant"), CASES, ids=[f"{n}:{v}" for n, v in CASES])
def test_generated_source_is_the_in_memory_module(name, variant, tmp_path):
    """The file written at the network's own number of classes, built for 7, is the module archc builds
    for 7 (which is the file written for 7, built as it is): so every value that follows from num_classes
    is an expression of build()'s argument, and nothing else changes with it."""
    path, size = ZOO / name, small_input(name)
    memory = randomise(archc.build(path, variant=variant, input=size, num_classes=7), seed=1).eval()
    out = tmp_path / "net.py"
    args = ["build", str(path), "-o", str(out)] + (["--variant", variant] if variant else []) + \
        (["--input", size] if size else [])
    assert run_archc(*args).returncode == 0
    with uninitialised():  # every tensor is loaded from `memory` below
        generated = load(out.read_text(encoding="utf-8")).build(num_classes=7).eval()
    ours, theirs = memory.state_dict(), generated.state_dict()
    assert list(ours) == list(theirs)  # the same keys, registered in the same order
    assert len(theirs) == len(list(generated.parameters())) + len(list(generated.buffers()))  # all of them
    assert all(ours[k].shape == theirs[k].shape for k in ours)
    in_place = [{n for n, m in model.named_modules() if getattr(m, "inplace", False)} for model in (memory, generated)]
    assert in_place[0] == in_place[1]  # the same activations overwrite their input (compiler/inplace.py)
    generated.load_state_dict(ours)
    x = torch.randn(2, *build_graph(path, variant=variant, input=size).input_shape,
                    generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        logits = memory(x)
        assert logits.shape == (2, 7) and torch.equal(logits, generated(x))
        memory.train(), generated.train()  # training mode: dropout, stochastic depth, (logits, *aux)
        torch.manual_seed(0)
        a = memory(x)
        torch.manual_seed(0)
        b = generated(x)
        a, b = (a if isinstance(a, tuple) else (a,)), (b if isinstance(b, tuple) else (b,))
        assert len(a) == len(b) == 1 + len(build_graph(path, variant=variant, input=size).aux)
        assert all(torch.equal(u, v) for u, v in zip(a, b))


def test_generated_file_compiles_and_passes_ruff(tmp_path):
    ruff = [sys.executable, "-m", "ruff"]  # a test dependency: installed with the tests, never skipped
    for name in ("mobilenet_v3_small.arch", "inception_v3.arch", "efficientnet.arch"):
        out = tmp_path / name.replace(".arch", ".py")
        result = run_archc("build", str(ZOO / name), "-o", str(out))
        assert result.returncode == 0, result.stderr
        py_compile.compile(str(out), doraise=True)
        lint = subprocess.run([*ruff, "check", "--isolated", "--no-cache", str(out)], capture_output=True, text=True,
                              check=False)
        assert lint.returncode == 0, lint.stdout


def test_the_generated_file_needs_only_torch(tmp_path):
    """Run mobilenet_v3_small's file where importing archc (or torchvision) fails."""
    out = tmp_path / "mbv3.py"
    out.write_text(archc.source(ZOO / "mobilenet_v3_small.arch"), encoding="utf-8")
    script = f"""
import sys, importlib.abc
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("archc", "torchvision", "lark", "pydantic", "jinja2"):
            raise ImportError("blocked: " + name)
sys.meta_path.insert(0, Block())
sys.path.insert(0, {str(tmp_path)!r})
import torch, mbv3
model = mbv3.build().eval()
print(tuple(model(torch.zeros(1, 3, 224, 224)).shape), sum(p.numel() for p in model.parameters()))
"""
    result = subprocess.run([sys.executable, "-I", "-c", script], capture_output=True, text=True, timeout=120,
                            cwd=tmp_path, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["(1,", "1000)", "2542856"]


@pytest.mark.filterwarnings("ignore:`torch.jit.trace")
@pytest.mark.parametrize("name", ["mobilenet_v3_small.arch", "googlenet.arch", "efficientnet.arch",
                                  "inception_v3.arch"])
def test_generated_module_compiles_without_graph_breaks(name):
    """use_* flags, stochastic depth, aux taps and nested concats all trace as one graph."""
    size = small_input(name)
    model = load(archc.source(ZOO / name, input=size)).build().eval()
    x = torch.randn(1, *build_graph(ZOO / name, input=size).input_shape)
    with torch.no_grad():
        expected = model(x)
        torch._dynamo.reset()
        assert torch.allclose(torch.compile(model, fullgraph=True, backend="eager")(x), expected)
        assert torch.allclose(torch.jit.trace(model, x)(x), expected)


def test_the_module_attribute_list_covers_torch():
    public = {n for n in dir(nn.Module) if not n.startswith("_")}
    assert public <= MODULE_ATTRIBUTES, sorted(public - MODULE_ATTRIBUTES)


HOSTILE = '''\
# a comment with """ quotes and a \x0c form feed
block exec(import, eval = 2, training = 1):
    conv(import, 3, padding = "same")
    relu()
    if eval > 1:
        batchnorm()

block forward(__class__ = 4):
    exec(__class__)

network os(n = 8)
input 3 x 8 x 8

print:
    | operator   | import |
    | exec       | n      |  # '); import os; os.system('echo pwned') #\r"""
    | forward    | -      |  # \u2028 print("pwned")
to:
    global_avgpool()
    flatten()
    linear(2)
'''


def test_hostile_names_cannot_inject_code(tmp_path):
    path = tmp_path / 'x"""\nimport os.arch'
    path.write_text(HOSTILE, encoding="utf-8")
    text = archc.source(path)
    tree = pyast.parse(text)
    imports = {alias.name for node in pyast.walk(tree) if isinstance(node, (pyast.Import, pyast.ImportFrom))
               for alias in node.names}
    assert imports == {"nn"}  # `from torch import nn`, and nothing else
    called = {node.func.id for node in pyast.walk(tree) if isinstance(node, pyast.Call)
              and isinstance(node.func, pyast.Name)}
    defined = {node.name for node in pyast.walk(tree) if isinstance(node, (pyast.ClassDef, pyast.FunctionDef))}
    assert called <= defined | {"super", "bool", "isinstance", "max", "int"}, called - defined
    assert "pwned" not in "".join(line.split("#")[0] for line in text.splitlines())  # only ever in comments
    memory = randomise(archc.build(path)).eval()
    generated = load(text).build().eval()
    assert list(memory.state_dict()) == list(generated.state_dict())
    assert {"print.0.conv.weight", "print.0.batchnorm.weight", "print.1.exec.conv.weight"} <= set(generated.state_dict())
    generated.load_state_dict(memory.state_dict())
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        assert torch.equal(memory(x), generated(x))


FLAT = """\
block head(n):
    flatten()
    linear(n)

network flat(n = 4)
input 3 x 8 x 8

a:
    output first
    aux one = head(n)
b:
    maxpool(2)
    head(n)
"""


def test_a_value_that_differs_between_uses_is_passed_in(tmp_path):
    """The map before flatten is 192 wide in one use of `head` and 48 in the other: no expression of
    head's parameters says it, so the class takes it as an argument, which each use passes (this was
    E500 before the one lowering)."""
    path = tmp_path / "flat.arch"
    path.write_text(FLAT, encoding="utf-8")
    text = archc.source(path)
    assert "def __init__(self, in_c, n, *, in_features):" in text
    assert "Head(3, 4, in_features=192)" in text and "Head(3, 4, in_features=48)" in text
    model = archc.build(path).train()
    logits, one = model(torch.randn(2, 3, 8, 8))
    assert logits.shape == one.shape == (2, 4)
    assert [m.in_features for m in model.modules() if isinstance(m, nn.Linear)] == [192, 48]


CLASSES = """\
let HIDDEN = 2 * num_classes

block head(n):
    linear(n)

network t(num_classes = 5)
input 3 x 8 x 8

body:
    conv(4, 3)
    global_avgpool()
    flatten()
    aux side = head(num_classes)
    | operator | out    |
    | linear   | HIDDEN |
    batchnorm()
    relu()
    linear(num_classes)
"""


def test_num_classes_is_an_argument_wherever_the_file_says_it(tmp_path):
    """A table cell, a constant computed from it, an aux head's and a call's argument, and the channels
    of the layers after them: each an expression of build()'s argument."""
    path = tmp_path / "t.arch"
    path.write_text(CLASSES, encoding="utf-8")
    text = archc.source(path)
    for line in ("def __init__(self, num_classes: int = 5):", "nn.Linear(4, 2 * num_classes),",
                 "nn.BatchNorm1d(2 * num_classes),", "nn.Linear(2 * num_classes, num_classes),",
                 "self.side = Head(4, num_classes)", "def build(num_classes: int = 5):",
                 "return T(num_classes=num_classes)"):
        assert line in text
    graph = build_graph(path, num_classes=3)
    assert_same_network(graph, load(text).build(num_classes=3), graph.input_shape)


def test_num_classes_is_carried_when_rows_are_replayed_from_an_earlier_parse(tmp_path):
    """An edit elsewhere parses the file again; its unchanged rows are replayed (compiler/reuse.py) with the
    earlier parse's expressions, which are what the file says still."""
    path = tmp_path / "t.arch"
    path.write_text(CLASSES, encoding="utf-8")
    first = archc.source(path)
    path.write_text(CLASSES + "# an edit\n", encoding="utf-8")
    assert archc.source(path) == first


@pytest.mark.parametrize("body", [
    "    repeat num_classes - 3:\n        relu()\n",  # a repeat count
    "    if num_classes > 2:\n        relu()\n",  # a condition
    "    wide()\n",  # a constant a block reads: its class cannot see the network's parameters
    "    residual:\n        conv(num_classes + 3, 1)\n        conv(4, 1)\n",  # a residual in a section
], ids=["repeat", "if", "block-constant", "residual"])
def test_num_classes_where_the_file_cannot_say_it_is_written_as_built(tmp_path, body):
    """No argument that would change only part of the network: the file is the network built."""
    path = tmp_path / "t.arch"
    path.write_text("let WIDE = num_classes + 3\n\nblock wide():\n    conv(WIDE, 1)\n    conv(4, 1)\n\n"
                    "network t(num_classes = 5)\ninput 3 x 8 x 8\n\nbody:\n    conv(4, 3)\n" + body +
                    "    global_avgpool()\n    flatten()\n    linear(num_classes)\n", encoding="utf-8")
    text = archc.source(path)
    assert "def build():" in text and "nn.Linear(4, 5)" in text
    assert not [line for line in text.splitlines() if "num_classes" in line.split("#")[0]]
    graph = build_graph(path)
    assert_same_network(graph, load(text).build(), graph.input_shape)


@pytest.mark.parametrize(("chain", "carried"), [(3, True), (MAX_CHAIN + 1, False)])
def test_a_chain_of_constants_from_num_classes_is_followed_as_deep_as_max_chain(tmp_path, chain, carried):
    """The emitter writes each constant's expression in the one that reads it, as deep as the chain goes."""
    lets = "let L0 = num_classes\n" + "".join(f"let L{i} = L{i - 1} + 1\n" for i in range(1, chain))
    path = tmp_path / "t.arch"
    path.write_text(lets + "\nnetwork t(num_classes = 5)\ninput 3 x 8 x 8\n\nbody:\n    global_avgpool()\n"
                    f"    flatten()\n    | operator | out |\n    | linear | L{chain - 1} |\n", encoding="utf-8")
    text = archc.source(path)
    assert ("def build(num_classes: int = 5):" in text) == carried
    linear = "nn.Linear(3, num_classes + 1 + 1)," if carried else f"nn.Linear(3, {5 + chain - 1}),"
    assert linear in text
    assert load(text).build().body[2].out_features == 5 + chain - 1


def test_build_prints_or_writes_and_refuses_bad_usage(tmp_path):
    printed = run_archc("build", "architectures/nin.arch")
    assert printed.returncode == 0 and printed.stdout == archc.source(ZOO / "nin.arch")
    assert run_archc("build", "architectures/nope.arch").returncode == 2
    assert run_archc("build", "architectures/nin.arch", "-o", str(tmp_path / "no" / "dir" / "x.py")).returncode == 2
    assert ROOT.exists()
