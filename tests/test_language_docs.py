"""Every ```arch example in docs/language.md is checked by archc, so that the reference cannot drift
from the language.

- An example with a `network` line is a whole program: it checks with no error.
- An example whose first line is `# error: CODE` is meant to fail: its errors are exactly that code.
  When the fence right after it shows a diagnostic (`net.arch:LINE:COL: ...`), that text is what
  archc prints for the example saved as net.arch, caret and hint included.
- Any other example (blocks, constants) is checked inside a minimal network appended to it: the
  name-resolution pass covers blocks that are never called, so an unknown name, op or argument in
  one fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import archc
from archc.dsl.diagnostics import render_all

DOC = Path(__file__).resolve().parents[1] / "docs" / "language.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```\n", re.S | re.M)
EXPECTS = re.compile(r"# error: (E\d{3})\b")
MINIMAL = "\n\nnetwork doc_example()\ninput 3 x 32 x 32\n\nfeatures:\n    identity()\n"


def examples() -> list[tuple[int, str, str | None]]:
    """(line in the doc, the example's text, the diagnostic the doc shows for it or None)."""
    text = DOC.read_text(encoding="utf-8")
    fences = [(m.group(1), m.group(2), text.count("\n", 0, m.start()) + 1) for m in FENCE.finditer(text)]
    found = []
    for i, (lang, body, line) in enumerate(fences):
        if lang != "arch":
            continue
        after = fences[i + 1] if i + 1 < len(fences) else None
        shown = after[1] if after and after[0] == "" and after[1].startswith("net.arch:") else None
        found.append((line, body, shown))
    return found


EXAMPLES = examples()


def test_the_doc_has_runnable_examples_of_issue_11s_constructs():
    texts = "\n".join(body for _, body, _ in EXAMPLES)
    for construct in ("layernorm(", "channel_linear(", "layer_scale(", "chunk(", "channel_shuffle(", "log(",
                      "sqrt(", "floor(", "**", "op.", "keep ", "from ", "concat a, b", "add a, ", "repeat ",
                      "shortcut_first = true", "[repeat]", "[label]", "[param]", '"conv{k}-{out}"', '"SE{}"',
                      "21,750", "| output ", "= 2 *", "index", "|:---"):
        assert construct in texts, f"no ```arch example in docs/language.md uses {construct!r}"
    assert sum(1 for _, body, _ in EXAMPLES if EXPECTS.match(body)) >= 8


@pytest.mark.parametrize("line, body, shown", EXAMPLES, ids=[f"line{line}" for line, _, _ in EXAMPLES])
def test_doc_example(tmp_path, monkeypatch, line, body, shown):
    expected = EXPECTS.match(body)
    whole = re.search(r"^network \w+", body, re.M) is not None
    text = body if whole else body + MINIMAL
    (tmp_path / "net.arch").write_text(text, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    report = archc.check("net.arch")
    errors = [d for d in report.diagnostics if d.severity == "error"]
    if expected is None:
        assert not errors, "\n" + render_all(errors, {"net.arch": text})
        assert shown is None, f"the example at docs/language.md:{line} shows a diagnostic but says no `# error:`"
        if whole:
            assert report.params is not None and report.layers
        return
    assert errors and {d.code for d in errors} == {expected.group(1)}, "\n" + render_all(errors, {"net.arch": text})
    if shown is not None:
        assert render_all(errors, {"net.arch": text}) == shown.rstrip("\n").split("\n1 error")[0].rstrip("\n")
