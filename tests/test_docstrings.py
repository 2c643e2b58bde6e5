"""The examples in the public API's docstrings run and give what they show."""

import doctest
import importlib
import inspect
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


# The public API and the stages' entry points: each docstring carries a runnable example.
PUBLIC = {"archc", "archc.api", "archc.compiler.check", "archc.compiler.pipeline", "archc.compiler.emit_source",
          "archc.compiler.emit_torch", "archc.compiler.pyexpr", "archc.compiler.evaluate", "archc.dsl.parse"}
WITH_EXAMPLES = sorted(PUBLIC | {name for name in MODULES if ">>>" in inspect.getsource(importlib.import_module(name))})


def test_the_public_api_is_among_the_modules():
    assert PUBLIC <= set(MODULES)


@pytest.mark.parametrize("name", WITH_EXAMPLES)
def test_docstring_examples(name):
    """Every module that shows an example runs at least one (an example doctest does not collect, say in a
    nested function, would otherwise pass unseen), and every one gives what it shows."""
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name} shows no example doctest runs"
    assert result.failed == 0
