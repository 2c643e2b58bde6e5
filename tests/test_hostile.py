"""Hostile text at the language's edges (issue 12): each reproducer found by the fuzz and fault
campaign, as a test. Every stage must read the same lines, read no more of a file than the size
limit, and turn every out-of-range value into a located diagnostic or a usage error."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.dom.minidom
from pathlib import Path

import pytest
from archc.compiler.program import load
from archc.dsl import ast
from archc.dsl.diagnostics import ArchError
from archc.dsl.parse import MAX_LITERAL, parse
from archc.dsl.printer import format_source
from archc.dsl.source import MAX_SOURCE_CHARS, printable, read_source, split_lines
from conftest import ZOO, run_archc

import archc

NET = """\
network n(num_classes = 10, w = 1.0)
input 3 x 32 x 32

features:
    conv(8, 3)
    relu()
"""


def _shapes(report) -> list[list[int]]:
    return [layer.output_shape for layer in report.layers]


def _errors(report) -> list[tuple[str, int, int]]:
    return [(d.code, d.span.line, d.span.col) for d in report.diagnostics if d.severity == "error"]


# ----------------------------------------------------------------- one rule for lines

# Not in the canonical layout (`conv(8,3)`), so that fmt writes the file.
LONE_CR = NET.replace("    conv(8, 3)\n", "    conv(8,3)  # old:\r    conv(8, 3, stride = 2)\n")


def test_a_lone_cr_in_a_comment_stays_in_the_comment_through_fmt(tmp_path):
    """The printer read with read_text, whose universal newlines split at the lone \\r: after
    `archc fmt` the commented-out conv was a layer (32×32 -> 16×16)."""
    before = archc.check("net.arch", text=LONE_CR)
    assert before.ok and _shapes(before) == [[8, 32, 32], [8, 32, 32]]
    target = tmp_path / "net.arch"
    target.write_bytes(LONE_CR.encode())
    result = run_archc("fmt", str(target))
    assert result.returncode == 0, result.stderr
    formatted = target.read_bytes().decode()
    assert "    conv(8, 3)  # old:\r    conv(8, 3, stride = 2)\n" in formatted  # still one comment line
    assert _shapes(archc.check(target)) == _shapes(before)
    assert format_source(formatted) == formatted


# Found by a random search over comments holding the separators str.splitlines splits at: the
# printer's map of blank lines then numbered lines differently from the parser, and a second
# `fmt` moved a blank line.
NOT_IDEMPOTENT = [
    "let a = 1\n# x\u2029 y\n# c\x0c\n# \u2028\n\n# c\x0c\n",
    "    # k\x0c\n# c\n# \u2028\n# c\x0b x\n\n# c\n# c\n# c\x0b x\n",
    "\nlet a = 1\n    # k\x0c\n# x\u2029 y\n# \u2028\n# x\u2029 y\n# c\x0c\n# c\x0b x\n",
]


@pytest.mark.parametrize("text", NOT_IDEMPOTENT)
def test_fmt_is_idempotent_when_comments_hold_line_separators(text):
    once = format_source(text)
    assert format_source(once) == once
    assert ast.strip_spans(parse(once))["items"] == ast.strip_spans(parse(text))["items"]


@pytest.mark.parametrize("separator", ["\f", "\v", "\u2028", "\u2029", "\x1c", "\x85", "\r"])
def test_blank_lines_stay_where_they_were_after_a_separator_in_a_comment(separator):
    text = f"let a = 1  # x{separator}y\nlet b = 2\n\nlet c = 3\n"
    assert format_source(text) == text


@pytest.mark.parametrize("separator", ["\f", "\v", "\u2028", "\u2029", "\r"])
def test_a_diagnostic_shows_the_line_the_parser_numbered(separator):
    text = NET.replace("network n(", f"# a comment{separator}that goes on\nnetwork n(").replace("relu()", "relu(7)")
    report = archc.check("net.arch", text=text)
    [error] = [d for d in report.diagnostics if d.severity == "error"]
    assert error.span.line == 7
    assert "7 |     relu(7)" in error.render(report.sources["net.arch"])


def test_split_lines_numbers_lines_as_lark_does():
    text = "let a = 1  # \r\f\v\u2028\u2029\x85 one comment\r\nlet b = 2\nlet c = 3  # last"
    module = parse(text)
    lines = split_lines(text)
    for item in module.items:
        assert lines[item.span.line - 1].startswith(f"let {item.name} = ")
    assert len(lines) == 3


# ----------------------------------------------------------------- reading files


@pytest.fixture
def sparse_3gb(tmp_path) -> Path:
    """A 3 GB file of NUL bytes that takes no disk space."""
    path = tmp_path / "huge.arch"
    with open(path, "wb") as f:
        f.truncate(3 * 2**30)
    return path


def test_read_source_reads_no_more_than_the_limit(sparse_3gb):
    text = read_source(sparse_3gb)
    assert len(text) == MAX_SOURCE_CHARS + 1


def test_a_3gb_file_is_E102_without_reading_it(sparse_3gb):
    with pytest.raises(ArchError) as caught:
        load(sparse_3gb)
    assert [d.code for d in caught.value.diagnostics] == ["E102"]
    result = subprocess.run([sys.executable, "-c", _RSS_CHECK, str(sparse_3gb)], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    codes, peak_mb = json.loads(result.stdout)
    assert codes == ["E102"]
    assert peak_mb < 200


def test_a_use_of_a_3gb_file_is_E102_without_reading_it(sparse_3gb):
    net = sparse_3gb.parent / "net.arch"
    net.write_text('use "huge.arch"\n' + NET)
    result = subprocess.run([sys.executable, "-c", _RSS_CHECK, str(net)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    codes, peak_mb = json.loads(result.stdout)
    assert codes == ["E102"]
    assert peak_mb < 200


# archc.check in a fresh interpreter; prints its error codes and its own peak RSS (MB). VmHWM, not
# getrusage's ru_maxrss: Linux carries that one over exec from the forking parent, here pytest.
_RSS_CHECK = """
import json, re, sys
import archc
report = archc.check(sys.argv[1])
codes = [d.code for d in report.diagnostics if d.severity == "error"]
peak_kb = int(re.search(r"VmHWM:\\s*(\\d+)", open("/proc/self/status").read()).group(1))
print(json.dumps([codes, peak_kb / 1024]))
"""


def test_fmt_of_a_3gb_file_is_E102(sparse_3gb):
    result = run_archc("fmt", "--check", str(sparse_3gb))
    assert result.returncode == 1
    assert "error[E102]: file too large" in result.stderr and "Traceback" not in result.stderr


def test_a_fifo_is_refused_not_waited_for(tmp_path):
    """Opening a FIFO waits for a writer: archc.check of one never returned."""
    fifo = tmp_path / "pipe.arch"
    os.mkfifo(fifo)
    script = "import sys, archc; print([d.code for d in archc.check(sys.argv[1]).diagnostics])"
    result = subprocess.run([sys.executable, "-c", script, str(fifo)], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "['E206']", result.stderr
    with pytest.raises(OSError, match="not a regular file"):
        read_source(fifo)


# ----------------------------------------------------------------- numbers and names


@pytest.mark.parametrize("where", [
    "network n(k = {n})\ninput 3 x 32 x 32\nfeatures:\n    conv(8, 3)\n",
    "let k = {n}\n",
    "network n()\ninput 3 x {n} x 32\nfeatures:\n    conv(8, 3)\n",
    "network n()\ninput 3 x 32 x 32\nfeatures:\n    | operator | #out |\n    | conv, k{n}x3 | 8 |\n",
])
def test_a_4301_digit_number_is_a_located_E400(where):
    """Python refuses int() of more than 4,300 digits: this was a lark VisitError."""
    text = where.format(n="9" * 4301)
    report = archc.check("net.arch", text=text)
    [(code, line, col)] = _errors(report)
    lines = split_lines(text)
    assert code == "E400" and lines[line - 1][col - 1:].lstrip("k").startswith("9999")
    message = report.diagnostics[0].message
    assert "too large" in message and len(message) < 200


@pytest.mark.parametrize("literal,ok", [(str(MAX_LITERAL), True), (str(MAX_LITERAL + 1), False),
                                        ("0" * 5000 + "7", True), ("1e308", True), ("1e400", False),
                                        ("1" + "0" * 400 + ".5", False)])
def test_number_literals_are_bounded_as_the_evaluator_bounds_numbers(literal, ok):
    text = f"let k = {literal}\n"
    if ok:
        parse(text)
    else:
        with pytest.raises(ArchError) as caught:
            parse(text)
        assert [(d.code, d.span.col) for d in caught.value.diagnostics] == [("E400", 9)]


def test_the_literal_bound_is_the_evaluators():
    from archc.compiler.evaluate import MAX_INT

    assert MAX_LITERAL == MAX_INT


@pytest.mark.parametrize("path", ["a" * 300 + ".arch", "blocks/" + "b" * 256 + "/x.arch", "a\x00b.arch"])
def test_a_use_path_the_system_refuses_is_E206(path):
    """A component over 255 bytes made Path.is_file() raise OSError (ENAMETOOLONG)."""
    report = archc.check(ZOO / "net.arch", text=f'use "{path}"\n' + NET)
    assert _errors(report) == [("E206", 1, 1)]


# ----------------------------------------------------------------- the command line


@pytest.mark.parametrize("args", [
    ["--batch", "9" * 400],
    ["--batch", "0"],
    ["--batch", "1e3"],
    ["--memory", "9" * 400 + "GiB"],
    ["--memory", "0"],
    ["--input", "3x" + "2" * 5000 + "x224"],
    ["--set", "num_classes=" + "9" * 5000],
    ["--set", "dropout=nan"],
    ["--set", "dropout=inf"],
])
@pytest.mark.parametrize("command", ["check", "compare"])
def test_out_of_range_values_are_usage_errors(command, args):
    """These were OverflowError tracebacks with exit status 1."""
    result = run_archc(command, "architectures/nin.arch", *args)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and "archc: error: " in result.stderr
    assert len(result.stderr) < 1000  # the 400 digits are not echoed back whole


def test_json_is_json_even_for_a_non_finite_value():
    from archc.jsontext import dumps_rows

    data = json.loads(dumps_rows({"parameters": {"w": float("inf"), "v": float("nan")},
                                   "layers": [{"x": -float("inf")}]}))
    assert data == {"parameters": {"w": "inf", "v": "nan"}, "layers": [{"x": "-inf"}]}


# ----------------------------------------------------------------- what reaches a terminal or a picture


HOSTILE = "\x1b[2J\x07\r\u202e\u2028\ufffe"


@pytest.mark.parametrize("text", [
    NET.replace("network", f'use "x{HOSTILE}.arch"\nnetwork'),  # in the message (E206), the line and the hint
    NET.replace("relu()", f"relu() {HOSTILE}"),  # a syntax error at the escape, its line shown
])
def test_control_characters_from_the_file_are_not_echoed(text):
    report = archc.check(ZOO / "net.arch", text=text)
    assert report.diagnostics
    for diagnostic in report.diagnostics:
        rendered = diagnostic.render(text)
        assert printable(rendered.replace("\n", "")) == rendered.replace("\n", ""), repr(rendered)
        assert "\ufffd" in rendered


def test_control_characters_in_a_source_line_keep_the_caret_in_place(tmp_path):
    (tmp_path / "net.arch").write_text(NET.replace("relu()", "relu() \x1b[31m $"), encoding="utf-8")
    result = run_archc("check", "net.arch", cwd=tmp_path)
    assert result.returncode == 1
    assert "\x1b" not in result.stderr
    lines = result.stderr.splitlines()
    source, caret = lines[2], lines[3]
    assert caret.index("^") == source.index("\ufffd")


@pytest.mark.parametrize("suffix", [".svg", ".dot"])
def test_a_file_name_xml_forbids_still_gives_a_well_formed_svg(tmp_path, suffix):
    """U+FFFE and U+FFFF are not XML characters: the SVG's title did not parse."""
    name = "net\ufffe\uffff\x1b.arch"
    (tmp_path / name).write_text(NET, encoding="utf-8")
    env = dict(os.environ, ARCHC_NO_DOT="1")
    result = run_archc("graph", name, "-o", f"out{suffix}", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    written = (tmp_path / f"out{suffix}").read_text(encoding="utf-8")
    assert "\ufffe" not in written and "\uffff" not in written and "\x1b" not in written
    if suffix == ".svg":
        xml.dom.minidom.parseString(written.encode("utf-8"))


def test_a_heading_binds_a_parameter_of_its_case(tmp_path):
    """Headings were lowercased before binding, so a parameter `K` could not be bound by its column `K`
    (and the error's hint said "did you mean 'K'?")."""
    path = tmp_path / "k.arch"
    path.write_text("block b(K, out):\n    conv(out, K)\n\nnetwork n()\ninput 3 x 16 x 16\n\nlayers:\n"
                    "    | operator | K | out |\n    | b        | 3 | 8   |\n    | b        | 1 | 16  |\n", encoding="utf-8")
    report = archc.check(path)
    assert report.ok, [d.message for d in report.diagnostics]
    assert [l.params for l in report.layers if l.op == "conv"] == [3 * 9 * 8 + 8, 8 * 16 + 16]
