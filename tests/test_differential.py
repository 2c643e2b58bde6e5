"""One lowering, tested as users will use it: programs nobody here wrote (tests/programs.py) and every
variant of every zoo file, checked and built, and the built module compared with the checker's IR run
directly (tests/oracles.py `assert_same_network`): the same tensors, shapes and outputs."""

import os
import re

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from oracles import assert_same_network
from programs import programs

import archc
from archc.compiler.check import build_graph
from archc.dsl.diagnostics import ArchError
from archc.compiler.emit_torch import build_module
from conftest import ZOO

torch = pytest.importorskip("torch")

EXAMPLES = int(os.environ.get("ARCHC_PROGRAMS", "1000"))  # the floor in CI; fewer while editing


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
@given(text=programs(), variant=st.sampled_from([None, "wide", "deep"]))
def test_generated_programs_build_the_checked_network(tmp_path_factory, text, variant):
    path = tmp_path_factory.mktemp("p") / "net.arch"
    path.write_text(text, encoding="utf-8")
    try:
        graph = build_graph(path, variant=variant)
    except ArchError:
        assume(False)  # a few drawn programs are wrong (a stride too many): the checker says so
    assert_same_network(graph, build_module(graph), graph.input_shape)


def _variants(path):
    return [None] + re.findall(r"^variant (\w+)", path.read_text(encoding="utf-8"), re.M)


# Small inputs where the network allows one (the figures at full size are tests/test_zoo_*'s).
SIZES = {"nin.arch": None, "nin_v1.arch": "3x64x64", "nin_v2.arch": "3x64x64", "googlenet.arch": "3x64x64",
         "inception_v3.arch": "3x75x75"}
ZOO_CASES = [(f.name, v) for f in sorted(ZOO.glob("*.arch")) for v in _variants(f)]


@pytest.mark.parametrize(("name", "variant"), ZOO_CASES, ids=[f"{n}:{v}" for n, v in ZOO_CASES])
def test_every_zoo_variant_builds_the_checked_network(name, variant):
    size = SIZES.get(name, "3x32x32")
    graph = build_graph(ZOO / name, variant=variant, input=size)
    assert_same_network(graph, build_module(graph), graph.input_shape)


def test_most_generated_programs_are_valid(tmp_path_factory):
    """The property above skips the programs the checker rejects: were most of them wrong (a generator
    drifting from the language), it would pass having compared nothing."""
    outcomes = []

    @settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(text=programs())
    def draw(text):
        path = tmp_path_factory.mktemp("v") / "net.arch"
        path.write_text(text, encoding="utf-8")
        outcomes.append(archc.check(path).ok)

    draw()
    assert len(outcomes) == 40 and sum(outcomes) >= 0.8 * len(outcomes), sum(outcomes)
