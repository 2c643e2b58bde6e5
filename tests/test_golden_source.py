"""Generated code is a product too: golden `.arch -> .py` pairs (tests/fixtures/source/), for the zoo's
networks beside torchvision's own model files and for programs nobody here wrote. A change to the emitter
shows as a diff of these files; regenerate them on purpose with

    ARCHC_REGEN=1 python -m pytest tests/test_golden_source.py
"""

import os
from pathlib import Path

import pytest

import archc
from conftest import ZOO

FIXTURES = Path(__file__).parent / "fixtures" / "source"
REGEN = os.environ.get("ARCHC_REGEN") == "1"
CASES = {
    "mobilenet_v3_small": (ZOO / "mobilenet_v3_small.arch", {}),  # torchvision's mobilenetv3.py
    "resnet50": (ZOO / "resnet.arch", {"variant": "resnet50"}),  # torchvision's resnet.py
    "efficientnet_b0": (ZOO / "efficientnet.arch", {"variant": "b0"}),  # torchvision's efficientnet.py
    "googlenet": (ZOO / "googlenet.arch", {}),
    **{p.stem: (p, {}) for p in sorted(FIXTURES.glob("*.arch"))},
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_generated_source_is_the_golden_file(name):
    path, kwargs = CASES[name]
    text = archc.source(path, **kwargs)
    expected = FIXTURES / f"{name}.py"
    if REGEN:
        expected.write_text(text, encoding="utf-8")
        return
    assert text == expected.read_text(encoding="utf-8")


def test_every_fixture_has_its_golden_file():
    assert {p.stem for p in FIXTURES.glob("*.py")} == set(CASES)
