"""Re-checks that replay what the last check elaborated (compiler/reuse.py, the language server's
parse by items) give the Report a fresh `archc.check` gives, over random single-cell edits of zoo
tables: edits that break a row and edits that mend it."""

import random
import re

import pytest

import archc
from archc.compiler.check import check
from archc.compiler.pipeline import compile_network
from archc.compiler.reuse import MEMO
from archc.dsl import cache
from archc.dsl.record import as_data
from archc.lsp.documents import Documents, Settings

# (file, variant): EfficientNet's rows repeat blocks whose stochastic depth differs per repeat; the others
# repeat identical blocks (replayed under the next repeat's path)
ZOO = [("efficientnet.arch", "b7"), ("mobilenet_v3_small.arch", None), ("resnet.arch", "resnet50"),
       ("regnet.arch", "regnet_y_400mf"), ("convnext.arch", "convnext_tiny")]
EDITS = 5
REPLACEMENTS = ["1", "2", "3", "16", "24", "64", "96", "7 × 7", "28² × 40", "x", "-", "", "3x3"]
ROW = re.compile(r"^\s*\|(?!\s*-)(.*)\|\s*$")


def cells(text: str) -> list[tuple[int, int]]:
    """(start, end) of every cell of every table row but the first of each table (its header)."""
    found, offset, header = [], 0, True
    for line in text.splitlines(keepends=True):
        match = ROW.match(line.rstrip("\n"))
        if match is None:
            header = True
        elif header:
            header = False
        else:
            at = offset + match.start(1)
            for piece in match.group(1).split("|"):
                found.append((at, at + len(piece)))
                at += len(piece) + 1
        offset += len(line)
    return found


def edited(rng: random.Random, text: str, original: str) -> str:
    """One cell set to a number, a size, another cell of the file or garbage; or, a third of the time, the
    file as it was (the mistake mended)."""
    if text != original and rng.random() < 1 / 3:
        return original
    places = cells(text)
    start, end = rng.choice(places)
    other = rng.choice(places)
    new = rng.choice(REPLACEMENTS + [text[other[0]:other[1]].strip()])
    return text[:start] + f" {new} " + text[end:]


def fresh(path: str, text: str, variant: str | None, monkeypatch):
    with MEMO.disabled(), monkeypatch.context() as m:
        m.setattr(cache, "_in_memory", False)  # parsed whole, as `archc check` parses
        return check(path, text=text, variant=variant), compile_network(path, text=text, variant=variant).graph


GRAPH = ("input_shape", "nodes", "order", "outputs", "aux", "placeholders", "instances", "first", "elements", "cells",
         "params", "result")


def same_graph(replayed, elaborated) -> bool:
    """Everything the emitters and analyses read: layers, instances with their traces, elements, cells."""
    if replayed is None or elaborated is None:
        return replayed is elaborated
    return all(getattr(replayed, f) == getattr(elaborated, f) for f in GRAPH) and \
        list(replayed.instances) == list(elaborated.instances) and list(replayed.nodes) == list(elaborated.nodes)


@pytest.mark.parametrize("name,variant", ZOO)
def test_a_recheck_after_a_cell_edit_reports_what_a_fresh_check_does(name, variant, monkeypatch):
    monkeypatch.setattr(cache, "_in_memory", True)  # as the server keeps its parses (dsl/cache.py)
    monkeypatch.setattr(MEMO, "persistent", True)  # ... and its replays (archc/lsp/server.py)
    path = str(archc.zoo_path(name))
    original = text = open(path, encoding="utf-8").read()
    documents = Documents()
    documents.settings = Settings(variant=variant)
    documents.set(path, text, 1)
    rng = random.Random(f"{name}-16")
    outcomes, replayed = set(), MEMO.hits
    for version in range(2, 2 + EDITS):
        text = edited(rng, text, original)
        documents.set(path, text, version)
        report = documents.checked[path].report
        expected, graph = fresh(path, text, variant, monkeypatch)
        assert as_data(report) == as_data(expected), text
        assert same_graph(compile_network(path, text=text, variant=variant).graph, graph), text
    assert MEMO.hits > replayed  # the re-checks did replay instances


def test_the_edits_break_and_mend_networks(monkeypatch):
    """The random edits above reach both a network with errors and one without (else they test little)."""
    rng = random.Random("efficientnet.arch-16")
    path = str(archc.zoo_path("efficientnet.arch"))
    original = text = open(path, encoding="utf-8").read()
    oks = set()
    with MEMO.disabled():
        for _ in range(EDITS):
            text = edited(rng, text, original)
            oks.add(check(path, text=text).ok)
    assert oks == {True, False}
