"""docs/zoo/*.md cannot drift: every figures table there equals what `archc check` gives, and every
excerpt of a .arch file is still in that file, line for line.

    python tests/test_zoo_docs.py    # print each page's figures table afresh, to paste
"""

import re
from pathlib import Path

import pytest

import archc

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "zoo"
CONVENTIONS = ("torchinfo", "thop", "fvcore")
HEADER = "| file | variant | --set | input | params | MACs (torchinfo) | MACs (thop) | MACs (fvcore) |"
RULE = "|---|---|---|---|---:|---:|---:|---:|"
EXCERPT = re.compile(r"<!-- excerpt: (\S+) -->\n```arch\n(.*?)```", re.DOTALL)
NONE = "–"


def figures_rows(page: Path) -> list[list[str]]:
    """The cells of each row of the page's figures tables."""
    rows, inside = [], False
    for line in page.read_text(encoding="utf-8").splitlines():
        if line == HEADER:
            inside = True
        elif inside and line.startswith("|") and line != RULE:
            rows.append([cell.strip() for cell in line.strip("|").split("|")])
        elif not line.startswith("|"):
            inside = False
    return rows


def settings_of(cell: str) -> dict:
    """`num_classes=3, aux=false` -> {"num_classes": 3, "aux": False}."""
    from archc.cli import parse_value

    if cell == NONE:
        return {}
    pairs = (part.strip().strip("`").split("=") for part in cell.split(","))
    return {name: parse_value(value) for name, value in pairs}


def row_for(file: str, variant: str | None, settings: dict, input: str | None = None) -> str:
    """The row `archc check` gives: what the tables must hold."""
    reports = {c: archc.check(ROOT / "architectures" / file, variant=variant, input=input, convention=c, **settings)
               for c in CONVENTIONS}
    report = reports["torchinfo"]
    assert report.ok, [d.message for d in report.diagnostics]
    shown = ", ".join(f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in settings.items()) or NONE
    cells = [f"`{file}`", variant or NONE, shown, "×".join(map(str, report.input)), f"{report.params:,}",
             *(f"{reports[c].macs:,}" for c in CONVENTIONS)]
    return "| " + " | ".join(cells) + " |"


PAGES = sorted(DOCS.glob("*.md"))


def test_every_zoo_file_has_a_page_with_its_figures():
    quoted = {row[0].strip("`") for page in PAGES for row in figures_rows(page)}
    assert quoted == {p.name for p in (ROOT / "architectures").glob("*.arch")}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_figures_equal_archc_check(page):
    rows = figures_rows(page)
    assert rows, f"{page.name} has no figures table"
    for cells in rows:
        file, variant, settings, input = cells[0].strip("`"), cells[1], cells[2], cells[3]
        expected = row_for(file, None if variant == NONE else variant, settings_of(settings), input.replace("×", "x"))
        assert "| " + " | ".join(cells) + " |" == expected, f"{page.name}: run `python tests/test_zoo_docs.py`"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_excerpts_are_in_their_files(page):
    excerpts = EXCERPT.findall(page.read_text(encoding="utf-8"))
    assert excerpts, f"{page.name} quotes no .arch file"
    for path, text in excerpts:
        source = [line.rstrip() for line in (ROOT / path).read_text(encoding="utf-8").splitlines()]
        quoted = [line.rstrip() for line in text.splitlines()]
        assert any(source[i:i + len(quoted)] == quoted for i in range(len(source))), \
            f"{page.name}: its excerpt of {path} starting {quoted[0]!r} is no longer in the file"


if __name__ == "__main__":
    for page in PAGES:
        print(f"\n{page.name}\n\n{HEADER}\n{RULE}")
        for cells in figures_rows(page):
            variant = None if cells[1] == NONE else cells[1]
            print(row_for(cells[0].strip("`"), variant, settings_of(cells[2]), cells[3].replace("×", "x")))
