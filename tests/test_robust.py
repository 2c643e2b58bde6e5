"""No input text makes archc raise: random edits of real files always come back
as a report, with every error located in a file that exists."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import archc
from conftest import ZOO

SOURCES = {str(p.relative_to(ZOO)): p.read_text() for p in sorted(ZOO.rglob("*.arch"))}
PIECES = ["|", " | ", "-", "✓", "x", "×", "²", ",", ":", "(", ")", "=", "#", "# c", "\n", "\n    ", "    ", "0", "7",
          "1000000000", "-1", "0.5", "in.c", "relu", "conv", "bneck", "residual:", "concat:", "branch:", "if ", "else:",
          "use \"x.arch\"", "let ", "block ", "network ", "input ", "aux a = ", "output o", "none", "true", "3x3",
          "k5x5", "7×7/2", "make_divisible(", "//", "/", "*", "%", "\t", "\"", "where ", "'", "$", "é"]


@st.composite
def edited(draw):
    name = draw(st.sampled_from(sorted(SOURCES)))
    text = SOURCES[name]
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text)))
        action = draw(st.sampled_from(["insert", "delete", "replace", "duplicate_line"]))
        if action == "insert":
            text = text[:at] + draw(st.sampled_from(PIECES)) + text[at:]
        elif action == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 12)):]
        elif action == "replace":
            text = text[:at] + draw(st.sampled_from(PIECES)) + text[at + draw(st.integers(1, 6)):]
        else:
            lines = text.splitlines(keepends=True)
            if lines:
                i = draw(st.integers(0, len(lines) - 1))
                lines.insert(i, lines[i])
                text = "".join(lines)
    return name, text


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edited())
def test_any_edit_gives_a_report_not_an_exception(case):
    name, text = case
    try:
        report = archc.check(ZOO / name, text=text)
    except archc.UsageError as error:  # a parameter left without a default needs --set: the one usage error text can cause
        assert "needs a value" in str(error)
        return
    for d in report.diagnostics:
        assert d.code[0] in "EN" and d.code[1:].isdigit()
        if d.severity == "error":
            assert d.span.line >= 1 and d.span.col >= 1, d
            assert d.file in report.sources or d.file.endswith(".arch"), d
    if report.ok and report.network is not None:
        assert report.params >= 0 and report.output_shape


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_text_gives_a_report(text):
    report = archc.check(ZOO / "fuzz.arch", text=text)
    assert all(d.span.line >= 1 for d in report.diagnostics if d.severity == "error")
