"""What `archc check` and `archc compare` print for a person (issue 15): no rich, fitted to the
terminal, nothing that names a network or a layer cut, counts exact, a compact view of the rows."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys

import pytest
from conftest import ROOT, ZOO

import archc
from archc.compare import compare, print_table
from archc.report import print_report
from archc.textable import Column, Table, terminal_width, wants_bold

NETWORKS = ["mobilenet_v3_small.arch", "googlenet.arch", "efficientnet.arch", "nin.arch"]


def _archc(*args: str, columns: int | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "NO_COLOR")}
    if columns:
        env["COLUMNS"] = str(columns)
    return subprocess.run([sys.executable, "-m", "archc", *args], cwd=ROOT, capture_output=True, text=True,
                          encoding="utf-8", env=env, timeout=60)


def _printed(report, width: int | None, compact: bool = False) -> str:
    out = io.StringIO()
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(width) if width else ""
    try:
        print_report(report, file=out, compact=compact)
    finally:
        os.environ.pop("COLUMNS") if old is None else os.environ.__setitem__("COLUMNS", old)
    return out.getvalue()


def test_the_human_form_imports_no_rich():
    """rich's import and layout were a third of a MobileNetV3-Small check (0.12 s of 0.39 s)."""
    script = ("import sys; from archc.cli import main; code = main(['check', 'architectures/mobilenet_v3_small.arch']);"
              "print('rich' in {m.split('.')[0] for m in sys.modules}, code, file=sys.stderr)")
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.stderr.split()[-2:] == ["False", "0"], result.stderr
    assert "params:                     2,542,856" in result.stdout


@pytest.mark.parametrize("name", NETWORKS)
@pytest.mark.parametrize("width", [80, 120])
def test_check_fits_the_width_and_keeps_every_layer_name_whole(name, width):
    report = archc.check(ZOO / name)
    text = _printed(report, width)
    lines = text.splitlines()
    table = lines[1:lines.index(next(l for l in lines if l.startswith("output shape:")))]
    for layer in report.layers:
        assert re.search(rf"(^|\s){re.escape(layer.name)}(\s|$)", text), layer.name
    if any(len(line) > width for line in table):  # only where a layer name alone is too wide to fit
        assert f"(wider than {width} columns: --compact shows one line per table row)" in text
        assert max(len(l.name) for l in report.layers) + 4 + 2 + 52 > width
    natural = max(len(line) for line in _printed(report, None).splitlines())
    assert ("…" in text) == (natural > width)  # the rows' source text was cut to make room, not the names


@pytest.mark.parametrize("name", NETWORKS)
def test_compact_shows_one_line_per_table_row_and_fits_80_columns(name):
    report = archc.check(ZOO / name)
    text = _printed(report, 80, compact=True)
    rows = {(layer.row_file, layer.row_line) for layer in report.layers if layer.row_line is not None}
    body = text.split("────", 1)[1].split("(each table row is shown as one line")[0]
    assert len([line for line in body.splitlines() if re.match(r"\s*\d+\s+\|", line)]) == len(rows)
    assert all(len(line) <= 80 for line in text.splitlines()[:-8]), text
    assert not any(layer.name in body for layer in report.layers if layer.row_line is not None)
    assert f"{report.params:,}" in text


def test_compact_groups_a_statement_outside_a_table():
    text = _printed(archc.check(ZOO / "googlenet.arch"), None, compact=True)
    [aux1] = [line for line in text.splitlines() if line.split()[:1] == ["aux1"]]
    assert aux1.split()[1:4] == ["9", "layers", "(aux)"]
    assert "3,188,968" in aux1  # aux1's parameters, summed


def test_check_pipes_everything_uncut_and_without_escapes():
    result = _archc("check", "architectures/mobilenet_v3_small.arch")
    assert result.returncode == 0
    assert "\x1b" not in result.stdout and "…" not in result.stdout
    assert "| 224² × 3 | conv2d, 3x3 | - | 16 | - | HS | 2 |" in result.stdout
    assert "mult-adds (batch 1):        56,527,424 (0.0565 G, torchinfo)" in result.stdout


def test_width_follows_columns_and_bold_only_on_a_terminal(monkeypatch):
    class Tty(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setenv("COLUMNS", "97")
    assert terminal_width(io.StringIO()) == 97
    monkeypatch.delenv("COLUMNS")
    assert terminal_width(io.StringIO()) is None  # a pipe or a file: no limit
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert wants_bold(Tty()) and not wants_bold(io.StringIO())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not wants_bold(Tty())


def test_a_table_cuts_only_what_may_be_cut_then_drops_then_overflows():
    table = Table([Column("name"), Column("text", cut=True), Column("a", right=True, drop=1),
                   Column("b", right=True, drop=2)])
    table.add(["efficientnet.arch:b7", "x" * 40, "1", "2"])
    table.add(["b0", "y" * 40, "3", "4"], cut=False)  # whole: this row's text may not be cut
    assert max(map(len, table.lines(width=200))) == 20 + 40 + 1 + 1 + 6 and not table.dropped
    lines = table.lines(width=50)
    assert table.dropped == ["b", "a"] and table.overflows  # 20 + 2 + 40 (the whole row) > 50
    assert "y" * 40 in lines[3] and "efficientnet.arch:b7" in lines[2]


# ------------------------------------------------------------------------- compare

EFFICIENTNETS = [f"architectures/efficientnet.arch:b{i}" for i in range(8)]


def test_compare_names_every_variant_in_full_and_fits_the_terminal():
    """The network column was cut to `architectures/efficientnet.arch:…`: b0–b7 looked alike."""
    result = _archc("compare", *EFFICIENTNETS, "--memory", "6GiB", columns=80)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:2] == ["batch 1, memory budget 6GiB; mult-adds counted as torchinfo",
                         "variants of architectures/efficientnet.arch"]
    assert [line.split()[0] for line in lines[4:12]] == [f"b{i}" for i in range(8)]
    assert [line.split()[1] for line in lines[4:12]] == [f"3×{r}×{r}" for r in (224, 240, 288, 300, 380, 456, 528, 600)]
    assert all(len(line) <= 80 for line in lines)
    assert "37,746,269,112" in lines[11]  # b7's mult-adds, exact


def test_compare_of_several_files_names_them_from_their_common_folder():
    result = _archc("compare", "architectures/efficientnet.arch:b0", "architectures/resnet.arch:resnet50",
                    "architectures/nin_v2.arch", columns=80)
    lines = result.stdout.splitlines()
    assert "files in architectures/" in lines[0] + lines[1]
    names = [line.split()[0] for line in lines if line[:1].isalpha() and ".arch" in line.split()[0]]
    assert names == ["efficientnet.arch:b0", "resnet.arch:resnet50", "nin_v2.arch"]
    assert all(len(line) <= 80 for line in lines)
    assert lines[-1].startswith("(not shown in 80 columns: input (MB)")


def test_compare_prints_exact_counts():
    """MobileNetV3-Small printed as 0.06 G: too coarse for seed 001's 0.122993904 G (2 × thop's count)."""
    rows = compare([str(ZOO / "mobilenet_v3_small.arch"), str(ZOO / "nin.arch")], params={"num_classes": 42},
                   convention="thop")
    out = io.StringIO()
    os.environ.pop("COLUMNS", None)
    print_table(rows, None, file=out)
    text = out.getvalue()
    assert "61,496,952" in text and "1,560,906" in text  # seed 001: FLOPs 0.122993904 G = 2 × 61,496,952
    assert "mult-adds counted as thop" in text
    assert "mobilenet_v3_small.arch" in text and "nin.arch" in text


def test_the_readme_compare_example_is_what_compare_prints():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("$ archc compare ", 1)[1].split("```", 1)[0]
    command, *expected = block.rstrip("\n").split("\n")
    result = _archc("compare", *command.split())
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == expected
