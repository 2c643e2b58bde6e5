"""The `archc check` and `archc diff` examples that docs/language.md shows for issue 13's analyses (receptive
fields, feature taps, training memory, every counting convention, --explain, diffs) print what the doc says:
each line the doc shows (all but `…`) is a line of the command's output, in the same order. A doc that drifts
from the tool fails here."""

from __future__ import annotations

import os
import re
import shlex

import pytest
from conftest import ROOT, run_archc

DOC = ROOT / "docs" / "language.md"
FIRST, LAST = "#### Receptive fields (`--rf`)", "### `archc fmt`"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```\n", re.DOTALL | re.MULTILINE)


def examples() -> list[tuple[str, list[str]]]:
    """(the command after `$ archc `, the lines the doc shows for it) for the analyses' examples."""
    text = DOC.read_text(encoding="utf-8")
    part = text[text.index(FIRST):text.index(LAST)]
    found = []
    for fence in FENCE.finditer(part):
        body = fence.group(2).replace("\\\n", "")  # a command continued on the next line
        if fence.group(1) or not body.startswith("$ archc "):
            continue
        for line in body.splitlines():
            if line.startswith("$ archc "):
                found.append((line[len("$ archc "):], []))
            else:
                found[-1][1].append(line)
    return found


EXAMPLES = examples()


def test_the_doc_shows_each_analysis():
    commands = " ".join(command for command, _ in EXAMPLES)
    for option in ("--rf", "--taps", "--memory", "--convention all", "--explain", "diff "):
        assert option in commands, f"no example of {option} in docs/language.md's archc check section"


@pytest.mark.parametrize(("command", "shown"), EXAMPLES, ids=[f"{i}-{c.split()[0]}-{c.split()[1].split('/')[-1]}" for i, (c, _) in enumerate(EXAMPLES)])
def test_the_example_prints_what_the_doc_shows(tmp_path, command, shown):
    args = shlex.split(command)
    if "--weights" in args:  # the doc says how its checkpoint was made: a torchvision model's state dict
        torch = pytest.importorskip("torch")
        torchvision = pytest.importorskip("torchvision")
        at = args.index("--weights") + 1
        path = tmp_path / args[at]
        torch.save(torchvision.models.resnet18(num_classes=10).state_dict(), path)
        args[at] = str(path)
        shown = [line.replace(path.name, str(path)) for line in shown]
    result = run_archc(*args, env={**os.environ, "COLUMNS": "110"})  # the width the doc's tables were cut to
    assert result.returncode == 0, result.stderr
    printed = result.stdout.splitlines()
    at = 0
    for line in (l for l in shown if l.strip() != "…"):
        assert line in printed[at:], f"the doc shows {line!r}, which `archc {command}` does not print (in order)"
        at = printed.index(line, at) + 1


def readme_examples() -> list[tuple[str, int, list[str]]]:
    """The README's `$ archc check … | tail -N` examples: (the command, N, the N lines it shows)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    found = []
    for fence in FENCE.finditer(text):
        if fence.group(1) or "| tail -" not in fence.group(2):
            continue
        for line in fence.group(2).splitlines():
            tail = re.fullmatch(r"\$ archc (check .*) \| tail -(\d+)", line)
            if tail:
                found.append((tail.group(1), int(tail.group(2)), []))
            elif found:
                found[-1][2].append(line)
    return found


README_EXAMPLES = readme_examples()


def test_the_readme_shows_the_explain_and_training_memory_examples():
    assert any("--explain" in c for c, _, _ in README_EXAMPLES) and any("--memory" in c for c, _, _ in README_EXAMPLES)


@pytest.mark.parametrize(("command", "lines", "shown"), README_EXAMPLES,
                         ids=[f"readme{i}" for i in range(len(README_EXAMPLES))])
def test_the_readme_example_prints_what_it_shows(command, lines, shown):
    result = run_archc(*shlex.split(command))
    assert result.returncode == 0, result.stderr
    assert len(shown) == lines and result.stdout.splitlines()[-lines:] == shown
