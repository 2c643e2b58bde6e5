"""The README's CPU-only install (issue 15): torch and torchvision from PyTorch's CPU index, within the
pins of pyproject.toml's torch extra, so that the `pip install '.[train]'` after it keeps them (a
version outside the pins would be replaced by PyPI's CUDA build)."""

import re
import shlex

from conftest import ROOT
from packaging.requirements import Requirement

try:
    import tomllib
except ImportError:  # Python 3.10: the train extra's tomli
    import tomli as tomllib

CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def test_the_cpu_only_command_pins_what_pyproject_pins():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    lines = [line for line in readme.splitlines() if CPU_INDEX in line]
    assert len(lines) == 1, lines
    steps = [shlex.split(step) for step in lines[0].split("&&")]
    install = next(step for step in steps if CPU_INDEX in step)
    assert install[:2] == ["pip", "install"] and install[install.index("--index-url") + 1] == CPU_INDEX
    asked = {Requirement(arg).name: Requirement(arg).specifier for arg in install[2:] if not arg.startswith("-")
             and arg != CPU_INDEX}
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    pinned = {Requirement(r).name: Requirement(r).specifier for r in extras["torch"]}
    assert set(asked) == {"torch", "torchvision"} and all(asked[name] == pinned[name] for name in asked)
    # PyTorch's CPU wheels carry a local label, which the pins admit: '.[train]' then keeps them
    assert all(asked[name].contains(f"{max(s.version for s in pinned[name] if '<' in s.operator)}+cpu")
               for name in asked)
    assert steps[-1] == ["pip", "install", ".[train]"]  # then archc, as the main set-up command installs it
    # the main set-up command is unchanged: it installs from PyPI
    assert re.search(r"python3 -m venv \.venv && \. \.venv/bin/activate && pip install '\.\[train\]' && archc train",
                     readme)
