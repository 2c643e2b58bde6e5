"""dsl/reparse.py: parsing a file item by item gives the module (or the first syntax error) that
parsing it whole gives, and an edit re-parses only the item it touched."""

import re

import pytest
from hypothesis import HealthCheck, given, settings

from archc.dsl import parse as parse_module
from archc.dsl import reparse
from archc.dsl.diagnostics import ArchError
from conftest import ROOT, ZOO
from test_robust import SOURCES, edited

FILES = sorted(ZOO.rglob("*.arch")) + sorted((ROOT / "tests" / "fixtures").rglob("*.arch"))


@pytest.fixture(autouse=True)
def fresh_memory():
    """Each test starts with no pieces kept, so that what it counts does not depend on the tests before it."""
    reparse._pieces.clear()
    reparse._latest.clear()


def outcome(parse, text, file):
    try:
        return parse(text, file)
    except ArchError as error:
        return error.diagnostics


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_by_items_equals_whole_on_every_file(path):
    text = path.read_text(encoding="utf-8", errors="replace")
    for variant in (text, text.rstrip("\n"), text.replace("\n", "\r\n")):
        assert outcome(reparse.parse_by_items, variant, str(path)) == outcome(parse_module.parse, variant, str(path))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edited())
def test_by_items_equals_whole_after_any_edit(case):
    name, text = case
    file = str(ZOO / name)
    reparse.parse_by_items(SOURCES[name], file)  # the pieces of the text before the edit are kept
    assert outcome(reparse.parse_by_items, text, file) == outcome(parse_module.parse, text, file)


def counting(monkeypatch) -> list[str]:
    parsed = []
    real = parse_module.parse
    monkeypatch.setattr(parse_module, "parse", lambda text, file: parsed.append(text.lstrip("\n")) or real(text, file))
    return parsed


def first_words(texts: list[str]) -> list[str]:
    return [re.match(r"\w+", t).group() for t in texts]


def test_an_edited_cell_reparses_its_row_only(monkeypatch):
    path = ZOO / "efficientnet.arch"
    text = path.read_text()
    edited_text = text.replace("| 320       |", "| 321       |")
    whole = parse_module.parse(edited_text, str(path))
    reparse.parse_by_items(text, str(path))
    parsed = counting(monkeypatch)
    assert reparse.parse_by_items(edited_text, str(path)) == whole
    (row,) = parsed  # the row under a one-column header, not the 17 items nor the other rows of its table
    assert row.splitlines() == ["s:", "    | h |", next(line for line in edited_text.splitlines() if "321" in line)]


@pytest.mark.parametrize("edit", [
    ("| 7     | MBConv6, k5x5        | 14 × 14    | 192       | 4 ",
     "| 7     | MBConv6, k5x5 | 14 × 14 | 192 | 4 "),  # blanks
    ("| 80        | 3       |", "| 80        | 3       | 9 |"),  # a cell more
    ("| 9     | Conv1x1, Pooling, FC | 7 × 7      | 1280      | -       | -   ",
     "| 9     | Conv1x1, Pooling, FC | 7 × 7      | 1280      | -       | -   # a comment\n"),
    ("| 8     | MBConv6, k3x3", "| 8     | MBConv6, k3x3 )"),  # no longer a row: the error is the whole file's
    ("    | Stage | Operator ", "    | Stage | Operator x "),  # the header: the section again
])
def test_a_row_edited_in_any_way_gives_what_a_whole_parse_gives(edit):
    path = ZOO / "efficientnet.arch"
    text = path.read_text()
    assert edit[0] in text
    edited_text = text.replace(edit[0], edit[1], 1)
    reparse.parse_by_items(text, str(path))
    whole = outcome(parse_module.parse, edited_text, str(path))
    assert outcome(reparse.parse_by_items, edited_text, str(path)) == whole


def test_a_line_added_above_reparses_the_items_below_once(monkeypatch):
    path = ZOO / "mobilenet_v3_small.arch"
    text = path.read_text().replace("input 3 x 224 x 224\n", "input 3 x 224 x 224\n\n")
    whole = parse_module.parse(text, str(path))
    reparse.parse_by_items(path.read_text(), str(path))
    parsed = counting(monkeypatch)
    assert reparse.parse_by_items(text, str(path)) == whole
    # the item above the new line ends with it; the items below moved one line down
    assert first_words(parsed) == ["input", "features", "classifier"]
    parsed.clear()
    reparse.parse_by_items(text, str(path))
    assert parsed == []


def test_a_continuation_line_at_column_0_is_parsed_with_its_item():
    text = "network n(a = 1,\nb = 2)\ninput 3 x 8 x 8\n"
    module = reparse.parse_by_items(text, "n.arch")
    assert [i.kind for i in module.items] == ["network", "input"]
    assert [p.name for p in module.items[0].params] == ["a", "b"]


def test_an_edit_next_to_a_markdown_rule_reparses_like_the_whole():
    from test_parse import RULED

    file = str(ZOO / "ruled.arch")
    reparse.parse_by_items(RULED, file)
    for text in (RULED.replace("| 16   | 2 |", "| 32   | 2 |"),  # the row under the rule
                 RULED.replace("|:------------:|", "|--------------|"),  # the rule itself
                 RULED.replace("| 32² × 3  | conv, 3x3    | 16   | 2 |", "|---|---|---|---|")):  # a row become a rule
        assert outcome(reparse.parse_by_items, text, file) == outcome(parse_module.parse, text, file)
