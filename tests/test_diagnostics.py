"""Golden-file tests of `archc check` diagnostics on broken .arch files.

Each tests/fixtures/broken/NAME.arch holds one mistake a user makes; beside it,
NAME.expected holds the exact stderr of

    python -m archc check tests/fixtures/broken/NAME.arch

run from the repository root, with absolute paths to the repository written as
`<archc>/`. After an intended change to the diagnostics, rewrite the expected
files with

    ARCHC_REGEN=1 python -m pytest tests/test_diagnostics.py

and review the diff by eye: the caret must point at the offending cell or token.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import archc
from archc.compiler.program import library_dir

ROOT = Path(__file__).resolve().parents[1]
BROKEN = ROOT / "tests" / "fixtures" / "broken"
MOBILENET = ROOT / "architectures" / "mobilenet_v3_small.arch"
REGEN = os.environ.get("ARCHC_REGEN") == "1"
FIXTURES = sorted(p.stem for p in BROKEN.glob("*.arch"))
TIMEOUT = 20  # seconds: generous; a hang, not a slow machine, should fail these tests


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE")}
    env.update(NO_COLOR="1", COLUMNS="200", PYTHONIOENCODING="utf-8")
    return env


def archc_cli(*args: str, cwd: Path = ROOT, timeout: float = TIMEOUT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "archc", *args], cwd=cwd, capture_output=True, text=True,
                          encoding="utf-8", timeout=timeout, env=_env())


def normalise(text: str) -> str:
    """Absolute paths to the block library or the repository become `<archc>/...`."""
    for base, placeholder in ((library_dir(), "<archc>/architectures"), (ROOT, "<archc>")):
        text = text.replace(str(base.resolve()), placeholder).replace(str(base), placeholder)
    return text


def assert_no_traceback(result: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in result.stdout and "Traceback" not in result.stderr, result.stderr


# ------------------------------------------------------------------ golden files


def test_every_fixture_has_an_expected_file():
    expected = sorted(p.stem for p in BROKEN.glob("*.expected"))
    assert len(FIXTURES) >= 20
    if not REGEN:
        assert expected == FIXTURES


@pytest.mark.parametrize("name", FIXTURES)
def test_broken_fixture_diagnostics(name):
    result = archc_cli("check", f"tests/fixtures/broken/{name}.arch")
    assert_no_traceback(result)
    assert result.returncode == 1, result.stderr
    actual = normalise(result.stderr)
    # The first line names a file, a line and a column, and an error code.
    assert re.match(r"\S+\.arch:[1-9]\d*:[1-9]\d*: error\[E\d{3}\]: ", actual), actual
    expected_file = BROKEN / f"{name}.expected"
    if REGEN:
        expected_file.write_text(actual, encoding="utf-8")
        return
    assert actual == expected_file.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", FIXTURES)
def test_json_diagnostics_match_the_rendering(name):
    result = archc_cli("check", f"tests/fixtures/broken/{name}.arch", "--json")
    assert_no_traceback(result)
    assert result.returncode == 1
    data = json.loads(result.stdout)
    diagnostics = data["diagnostics"]
    assert diagnostics, data
    for d in diagnostics:
        assert set(d) >= {"code", "severity", "message", "file", "line", "col", "hint"}
        assert re.fullmatch(r"[EWN]\d{3}", d["code"]) and d["severity"] in ("error", "warning", "note")
        assert isinstance(d["message"], str) and d["message"]
        assert isinstance(d["line"], int) and isinstance(d["col"], int)
        assert d["hint"] is None or isinstance(d["hint"], str)
    errors = [d for d in diagnostics if d["severity"] == "error"]
    assert errors and all(d["line"] >= 1 and d["col"] >= 1 for d in errors)
    first = errors[0]
    head = f"{first['file']}:{first['line']}:{first['col']}: error[{first['code']}]: {first['message']}"
    assert normalise(head) == (BROKEN / f"{name}.expected").read_text(encoding="utf-8").splitlines()[0]


# -------------------------------------------------------------- limits and usage


def test_million_line_file_is_a_located_error_not_a_wait(tmp_path):
    lines = ['use "blocks/mobile.arch"', "", "network tiny(num_classes = 10)", "input 3 x 32 x 32", "",
             "features:", "    | input    | operator    | #out | NL | s |"]
    row = "    | 32² × 16 | conv2d, 3x3 | 16   | HS | 1 |"
    (tmp_path / "huge.arch").write_text("\n".join(lines + [row] * 1_000_000) + "\n", encoding="utf-8")
    result = archc_cli("check", "huge.arch", cwd=tmp_path)  # a hang is the timeout's TimeoutExpired
    assert_no_traceback(result)
    assert result.returncode == 1, result.stderr
    # At the 1,001st line: the file's first 100,001 characters were read and counted, not 48 MB parsed.
    assert result.stderr.startswith("huge.arch:1001:1: error[E102]: file too large: more than 1,000 lines"), \
        result.stderr


def test_huge_repeat_is_an_error_not_an_attempt():
    result = archc_cli("check", "tests/fixtures/broken/huge_repeat.arch", "--json")
    assert_no_traceback(result)
    assert result.returncode == 1
    errors = [d for d in json.loads(result.stdout)["diagnostics"] if d["severity"] == "error"]
    source = (BROKEN / "huge_repeat.arch").read_text(encoding="utf-8").splitlines()
    line = next(i for i, text in enumerate(source, 1) if "1000000000" in text)
    assert [(d["code"], d["line"], d["col"]) for d in errors] == [("E400", line, source[line - 1].index("1000000000") + 1)]


def test_huge_channel_count_is_a_located_E400():
    report = archc.check(BROKEN / "huge_channels.arch")
    errors = [d for d in report.diagnostics if d.severity == "error"]
    assert [(d.code, d.span.line, d.span.col) for d in errors] == [("E400", 7, 5)]


@pytest.mark.parametrize("args,message", [
    (["--variant", "large"], "has no variant 'large'"),
    (["--set", "widht=0.5"], "did you mean 'width'?"),
    (["--set", "depth=2"], "has no parameter 'depth'"),
    (["--set", "width"], "--set takes NAME=VALUE"),
])
def test_unknown_variant_or_parameter_is_a_usage_error(args, message):
    result = archc_cli("check", "architectures/mobilenet_v3_small.arch", *args)
    assert_no_traceback(result)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert result.stderr.startswith("archc: error: ") and message in result.stderr, result.stderr


# ------------------------------------------- every #out of MobileNetV3-Small, wrong


def _table_rows(text: str) -> list[tuple[int, bool, list[str]]]:
    """(line number, is a header, cell texts) for every table line, in order."""
    rows, in_table = [], False
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip().startswith("|"):
            rows.append((number, not in_table, [c.strip() for c in line.strip().strip("|").split("|")]))
            in_table = True
        else:
            in_table = False
    return rows


def _out_cases():
    text = MOBILENET.read_text(encoding="utf-8")
    rows = _table_rows(text)
    data = [(n, cells, header) for (n, is_header, cells), header in
            zip(rows, _headers_for(rows)) if not is_header]
    cases = []
    for (line, cells, header), following in zip(data, data[1:] + [None]):
        column = header.index("#out")
        value = cells[column]
        if not value.isdigit():
            continue  # `-` or an expression such as num_classes
        if following is None:
            continue  # the network's last row: nothing checks its output
        cases.append(pytest.param(line, column, int(value), following[0], id=f"line{line}-out{value}"))
    return cases


def _headers_for(rows):
    header = None
    for _, is_header, cells in rows:
        if is_header:
            header = cells
        yield header


def _with_cell(line_text: str, column: int, value: str) -> str:
    parts = line_text.split("|")  # parts[0] is the indent before the first bar
    old = parts[column + 1]
    parts[column + 1] = f" {value}".ljust(len(old))
    return "|".join(parts)


@pytest.mark.parametrize("line,column,value,next_line", _out_cases())
def test_a_wrong_out_is_caught_at_the_next_rows_input(line, column, value, next_line):
    text = MOBILENET.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    # +8 keeps make_divisible(out * width, 8) equal to the cell, so the table stays "as printed" and is checked.
    lines[line - 1] = _with_cell(lines[line - 1].rstrip("\n"), column, str(value + 8)) + "\n"
    report = archc.check(MOBILENET, text="".join(lines))
    errors = [(d.code, d.span.line, d.span.col) for d in report.diagnostics if d.severity == "error"]
    assert errors == [("E302", next_line, _first_cell_col(lines[next_line - 1]))], \
        [d.message for d in report.diagnostics]


def _first_cell_col(line_text: str) -> int:
    """The 1-based column where the first cell's text starts."""
    after_bar = line_text.index("|") + 1
    rest = line_text[after_bar:]
    return after_bar + (len(rest) - len(rest.lstrip(" "))) + 1


def test_the_out_cases_cover_every_numeric_row():
    lines = [c.values[0] for c in _out_cases()]
    # 13 rows of `features` (the last one checked by classifier's first row) and the 1024-wide fc.
    assert lines == list(range(13, 26)) + [30]


# ------------------------------------------- diagnostics that once pointed at the wrong place
# Each test states what the diagnostic should be; strict, so a fix makes it XPASS
# and fail until the marker is removed (and the .expected files regenerated).

SYNTAX_AND_LOAD_ERRORS = ["syntax_bad_character", "syntax_bad_dedent", "syntax_missing_colon",
                          "syntax_positional_after_named", "syntax_unexpected_indent", "syntax_unterminated_row",
                          "use_missing_file"]


def _errors(name: str):
    report = archc.check(BROKEN / f"{name}.arch")
    return report, [d for d in report.diagnostics if d.severity == "error"]


@pytest.mark.parametrize("name", SYNTAX_AND_LOAD_ERRORS)
def test_syntax_and_load_errors_show_the_source_line(name):
    report, errors = _errors(name)
    source = (BROKEN / f"{name}.arch").read_text(encoding="utf-8").splitlines()
    for d in errors:
        rendered = d.render(report.sources.get(d.file))
        assert f"{d.span.line} | {source[d.span.line - 1]}" in rendered, rendered
        assert "^" in rendered, rendered


def test_an_unknown_keyword_is_reported_once_at_the_argument():
    _, errors = _errors("unknown_kwarg")
    assert [(d.code, d.span.line, d.span.col) for d in errors] == [("E202", 6, 17)]


def test_an_unexpected_indent_points_at_the_indented_line():
    _, errors = _errors("syntax_unexpected_indent")
    assert [(d.span.line, d.span.col) for d in errors] == [(7, 9)]
    assert "indent" in errors[0].message and "unexpected an " not in errors[0].message


def test_a_bad_character_is_named_alone():
    _, errors = _errors("syntax_bad_character")
    assert "'$'" in errors[0].message and "relu" not in errors[0].message


def test_an_unterminated_row_hints_at_the_closing_bar():
    _, errors = _errors("syntax_unterminated_row")
    assert "'|'" in (errors[0].hint or "")


def test_the_layer_limit_points_at_the_users_row():
    _, errors = _errors("repeat_layer_limit")
    assert [(Path(d.file).name, d.code, d.span.line) for d in errors] == [("repeat_layer_limit.arch", "E400", 10)]


def _input_cell_lines() -> list[int]:
    lines = MOBILENET.read_text(encoding="utf-8").splitlines()
    return [n for n, line in enumerate(lines, 1) if re.match(r"\s*\|\s*\d+² × \d+\s*\|", line)]


@pytest.mark.parametrize("line", _input_cell_lines())
def test_a_typo_in_an_input_cell_is_reported_once_at_that_cell(line):
    # The rows below follow the size the rows produce, not the typo (issue 15: no cascade E302).
    lines = MOBILENET.read_text(encoding="utf-8").splitlines(keepends=True)
    size = int(re.search(r"(\d+)²", lines[line - 1]).group(1))
    lines[line - 1] = lines[line - 1].replace(f"{size}²", f"{size + 2}²", 1)
    report = archc.check(MOBILENET, text="".join(lines))
    errors = [(d.code, d.span.line) for d in report.diagnostics if d.severity == "error"]
    assert errors == [("E302", line)], [d.message for d in report.diagnostics]


def test_input_cells_are_found():
    assert len(_input_cell_lines()) >= 12
