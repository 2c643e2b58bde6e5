"""Failures of the compiler core found by issue 12's campaign and the fuzz (benchmarks/fuzz.py), each
as its minimal reproducer. Each failed on the core before the lead's rewrite (the one lowering) and
passes on it, but the last: the generated source still numbers lines with str.splitlines, a strict
xfail until the core reads lines as dsl/source.py does.

Each check runs in a fresh process capped at CORE_CPU seconds of CPU (a hang is a kill, not a wait)."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import textwrap

import pytest

import archc
from conftest import run_archc

CORE_CPU = 5  # seconds: each of these checks takes well under one when it reports its error


def _check(tmp_path, text: str, *args: str) -> subprocess.CompletedProcess:
    (tmp_path / "net.arch").write_text(textwrap.dedent(text), encoding="utf-8")

    def cap():
        resource.setrlimit(resource.RLIMIT_CPU, (CORE_CPU, CORE_CPU + 1))
        resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))

    try:
        return subprocess.run([sys.executable, "-m", "archc", "check", "net.arch", *args], cwd=tmp_path,
                              capture_output=True, text=True, timeout=120, preexec_fn=cap)
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess([], -1, "", "no exit within 120 s")


def _located_error(result: subprocess.CompletedProcess, code: str) -> None:
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    assert result.returncode == 1, (result.returncode, result.stderr[-2000:])
    assert f"error[{code}]" in result.stderr and "net.arch:" in result.stderr, result.stderr


def test_block_calls_that_add_no_layer_are_bounded(tmp_path):
    """10,000 calls of t1, each 10,000 calls of t0, which adds no layer: 10⁸ calls, never ending."""
    _located_error(_check(tmp_path, """\
        block t0():
            if false:
                relu()

        block t1():
            | operator | n     |
            | t0       | 10000 |

        network n()
        input 3 x 8 x 8

        features:
            | operator | n     |
            | t1       | 10000 |
        """), "E400")


def test_nineteen_levels_of_doubling_calls_are_bounded(tmp_path):
    """Each level calls the one below twice: 2¹⁹ calls of a block that adds no layer (11 s, 469 MB)."""
    blocks = ["block b0():\n    if false:\n        relu()\n"]
    blocks += [f"block b{k}():\n    b{k - 1}()\n    b{k - 1}()\n" for k in range(1, 20)]
    _located_error(_check(tmp_path, "\n".join(blocks) + "\nnetwork n()\ninput 3 x 8 x 8\n\nfeatures:\n    b19()\n"),
                   "E400")


def test_round_to_a_hundred_million_digits_is_an_error(tmp_path):
    """round(1, 100000000) computes 10**100000000 for minutes."""
    _located_error(_check(tmp_path, """\
        network n()
        input 3 x 8 x 8

        features:
            conv(round(1, 100000000), 3)
        """), "E209")


def test_round_to_minus_400_digits_is_an_error(tmp_path):
    """round(1, -400): ZeroDivisionError (a float 10**-400 is 0)."""
    _located_error(_check(tmp_path, """\
        network n()
        input 3 x 8 x 8

        features:
            conv(round(1, -400), 3)
        """), "E209")


def test_a_chain_of_250_lets_is_an_error_not_a_recursion_error(tmp_path):
    lets = "\n".join(["let a0 = 1"] + [f"let a{i} = a{i - 1} + 1" for i in range(1, 250)])
    result = _check(tmp_path, lets + "\nnetwork n()\ninput 3 x 8 x 8\n\nfeatures:\n    conv(a249, 3)\n")
    assert "RecursionError" not in result.stderr and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert result.returncode in (0, 1)


@pytest.mark.parametrize("kernel", ["1000000000", "1048577"])
def test_a_kernel_has_the_bounds_of_a_channel_count(tmp_path, kernel):
    """A kernel of 10⁹ checked fine (params size 96,000,000,000,000 MB); one of 2²⁰ + 1 checks and then
    tries to allocate about 20 GB in build()."""
    _located_error(_check(tmp_path, f"""\
        network n()
        input 3 x 8 x 8

        features:
            conv(8, {kernel}, padding = {int(kernel) // 2})
        """), "E400")


def test_an_infinite_eps_is_an_error(tmp_path):
    """batchnorm(eps = 1e400) emitted eps=inf (a NameError in the generated file): the literal is E400 at
    parse time now (dsl/parse.py), a computed infinity E209 in the evaluator."""
    for eps, code in (("1e400", "E400"), ("1e300 * 1e300", "E209")):
        _located_error(_check(tmp_path, f"""\
            network n()
            input 3 x 8 x 8

            features:
                conv(8, 3)
                batchnorm(eps = {eps})
            """), code)


@pytest.mark.parametrize("name", ["None", "True", "False"])
def test_a_block_named_like_a_python_constant_gives_source_that_compiles(tmp_path, name):
    """`block None()` emitted `class None(nn.Module)`: a SyntaxError in the generated file."""
    path = tmp_path / "net.arch"
    path.write_text(f"block {name}():\n    relu()\n\nnetwork n()\ninput 3 x 8 x 8\n\nfeatures:\n    conv(8, 3)\n"
                    f"    {name}()\n", encoding="utf-8")
    assert archc.check(path).ok
    compile(archc.source(path), "generated.py", "exec")


def test_a_parameter_named_super_builds_from_the_generated_source(tmp_path):
    """A block parameter named `super` shadowed super() in the generated __init__: TypeError at build()."""
    path = tmp_path / "net.arch"
    path.write_text("block b(super):\n    conv(super, 3)\n\nnetwork n()\ninput 3 x 8 x 8\n\nfeatures:\n    b(8)\n",
                    encoding="utf-8")
    namespace: dict = {}
    exec(compile(archc.source(path), "generated.py", "exec"), namespace)  # archc's output, not the user's text
    assert sum(p.numel() for p in namespace["build"]().parameters()) == archc.check(path).params


def test_the_generated_source_quotes_each_row_as_the_parser_numbered_it(tmp_path):
    """compiler/emit_source.py split the file with str.splitlines, which also splits at the form feed in
    the first comment (dsl/source.py's split_lines does not): each row's comment showed the line above."""
    path = tmp_path / "net.arch"
    path.write_text("# a comment\fwith a form feed\nnetwork n()\ninput 3 x 8 x 8\n\nfeatures:\n"
                    "    | operator  | #out |\n    | conv, 3x3 | 8    |\n    | conv, 1x1 | 16   |\n", encoding="utf-8")
    lines = archc.source(path).splitlines()
    assert any("nn.Conv2d(3, 8, 3" in line and line.endswith("# | conv, 3x3 | 8 |") for line in lines), lines


def test_diff_reads_rows_as_the_parser_numbered_them(tmp_path):
    """compiler/diff.py split the sources with str.splitlines: a form feed in a comment above the table made
    two identical networks "2 rows changed" (each row's text read from the line above)."""
    table = "network n()\ninput 3 x 8 x 8\n\nfeatures:\n    | operator  | #out |\n    | conv, 3x3 | 8    |\n" \
            "    | conv, 1x1 | 16   |\n"
    (tmp_path / "a.arch").write_text(table, encoding="utf-8")
    (tmp_path / "b.arch").write_text("# a comment\fwith a form feed\n" + table, encoding="utf-8")
    result = run_archc("diff", str(tmp_path / "a.arch"), str(tmp_path / "b.arch"), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["rows"] == []
