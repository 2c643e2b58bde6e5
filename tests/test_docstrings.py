"""The examples in the public API's docstrings run and give what they show."""

import doctest
import importlib
import pkgutil

import pytest

# The stages are separate folders mapped into the package (see pyproject.toml),
# so each is walked from its own path.
PACKAGES = ["archc", "archc.grammar", "archc.dsl", "archc.compiler", "archc.compiler.ops", "archc.runtime",
            "archc.architectures", "archc.lsp"]
MODULES = sorted({p for p in PACKAGES} | {
    m.name for p in PACKAGES for m in pkgutil.iter_modules(importlib.import_module(p).__path__, p + ".")
    if not m.ispkg and not m.name.endswith("__main__")})


def test_the_walk_finds_every_stage():
    stages = {name.split(".")[1] for name in MODULES if "." in name}
    assert {"dsl", "compiler", "grammar", "runtime", "architectures"} <= stages


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
