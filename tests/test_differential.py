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
from archc.compiler.emit_source import emit
from archc.compiler.emit_torch import build_module, load_source
from conftest import ZOO, small_input

torch = pytest.importorskip("torch")

EXAMPLES = int(os.environ.get("ARCHC_PROGRAMS", "1000"))  # the floor in CI; fewer while editing


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
@given(text=programs(), variant=st.sampled_from([None, "wide", "deep"]), classes=st.integers(2, 6))
def test_generated_programs_build_the_checked_network(tmp_path_factory, text, variant, classes):
    """The file written at the program's own num_classes, built with build(num_classes=classes), is the
    network checked with that many classes."""
    path = tmp_path_factory.mktemp("p") / "net.arch"
    path.write_text(text, encoding="utf-8")
    try:
        graph = build_graph(path, variant=variant, num_classes=classes)
        written = emit(build_graph(path, variant=variant))
    except ArchError:
        assume(False)  # a few drawn programs are wrong (a stride too many): the checker says so
    assert_same_network(graph, load_source(written).build(num_classes=classes), graph.input_shape)


def _variants(path):
    return [None] + re.findall(r"^variant (\w+)", path.read_text(encoding="utf-8"), re.M)


ZOO_CASES = [(f.name, v) for f in sorted(ZOO.glob("*.arch")) for v in _variants(f)]
# Over 100 M parameters: built twice with their weights, they take seconds and gigabytes each (RegNetY-128GF
# 644 M), so CI runs them under the slow marker, but for one VGG, whose family would else go untested.
LARGE = {("convnext.arch", "convnext_large"), ("efficientnet_v2.arch", "l"), ("regnet.arch", "regnet_x_32gf"),
         ("regnet.arch", "regnet_y_32gf"), ("regnet.arch", "regnet_y_128gf"), ("wide_resnet.arch", "wide_resnet101_2"),
         *[("vgg.arch", v) for v in (None, "vgg11", "vgg13", "vgg16", "vgg19", "vgg13_bn", "vgg16_bn", "vgg19_bn")]}


def test_the_large_variants_are_those_over_100m_parameters():
    large = {(n, v) for n, v in ZOO_CASES if archc.check(ZOO / n, variant=v, input=(3, 64, 64)).params > 100_000_000}
    assert LARGE == large - {("vgg.arch", "vgg11_bn")}


@pytest.mark.parametrize(("name", "variant"),
                         [pytest.param(*case, marks=pytest.mark.heavy) if case in LARGE else case for case in ZOO_CASES],
                         ids=[f"{n}:{v}" for n, v in ZOO_CASES])
def test_every_zoo_variant_builds_the_checked_network(name, variant):
    graph = build_graph(ZOO / name, variant=variant, input=small_input(name))
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
