"""The parts of archc lsp that need no client: the size a quick fix writes, settings, positions."""

import subprocess
import sys

from lsprotocol import types
from pygls.workspace import PositionCodec

import archc
from archc.compiler.ops import fmt_shape
from archc.dsl.ast import Span
from archc.dsl.parse import parse
from archc.lsp.actions import size_cell
from archc.lsp.documents import Documents, Settings
from archc.lsp.positions import Text


def test_the_fixed_cell_uses_the_cells_notation():
    def atom(text):
        module = parse(f"s:\n    | input |\n    | {text} |\n")
        return module.items[0].body[0].rows[0].cells[0].parts[0][0]

    assert [size_cell(atom(t), [24, 56, 56]) for t in ("28² × 24", "28²×24", "28×28×24", "28 x 28 x 24", "28²",
                                                      "28×28", "24")] == \
        ["56² × 24", "56²×24", "56×56×24", "56 x 56 x 24", "56²", "56×56", "24"]
    assert size_cell(atom("7² × 96"), [576]) == "1² × 576" and fmt_shape((24, 56, 56)) == "56×56×24"


def test_settings_come_from_initialization_options_or_the_archc_section():
    assert Settings.read({"variant": "b7", "set": {"num_classes": 10}, "inlayHints": False}) == \
        Settings(variant="b7", params={"num_classes": 10}, inlay_hints=False)
    assert Settings.read({"archc": {"variant": "resnet50"}}).variant == "resnet50"
    assert Settings.read(None) == Settings() == Settings.read({"variant": 7, "set": [1]})


def test_positions_in_utf16_and_utf32():
    line = 'let s = "😀" + nope'
    utf16, utf32 = Text(line, PositionCodec()), Text(line, PositionCodec("utf-32"))
    span = Span(line=1, col=15, end_line=1, end_col=19)  # `nope`, after the emoji
    assert (utf16.range(span).start.character, utf32.range(span).start.character) == (15, 14)
    assert utf16.place(utf16.range(span).start) == (1, 15) == utf32.place(utf32.range(span).start)
    assert utf16.word(1, 17) == ("nope", 15) and utf16.word(1, 19) == ("nope", 15) and utf16.word(1, 8) is None
    assert utf16.name_span("s", 1) == Span(line=1, col=5, end_line=1, end_col=6)  # the name, not the `s` of `let`


def test_positions_go_through_offsets_where_the_two_cut_lines_differently():
    """archc's lines end at \\n; the protocol's also at a lone \\r (and \\r\\n is one end, not two)."""
    text = Text("conv(8, 3)  # old:\r    conv(8, 3, stride = 2)\nrelu()\r\nbad\n", PositionCodec())
    assert text.line(2) == "relu()\r" and text.line(3) == "bad"
    assert text.range(Span(line=3, col=1, end_line=3, end_col=4)) == types.Range(
        start=types.Position(line=3, character=0), end=types.Position(line=3, character=3))
    assert text.position(1, 24) == types.Position(line=1, character=4)  # after the \r, on the client's 2nd line
    assert text.position(2, 99) == types.Position(line=2, character=6)  # past the end: the end, before \r\n
    assert text.place(types.Position(line=3, character=1)) == (3, 2)
    assert text.place(types.Position(line=1, character=4)) == (1, 24)
    assert text.place(types.Position(line=2, character=6)) == (2, 7)


def test_a_variant_setting_applies_where_the_file_has_it():
    documents = Documents()
    documents.settings = Settings(variant="b7", params={"num_classes": 10, "nope": 1})
    for name, variant in (("efficientnet.arch", "b7"), ("resnet.arch", None)):
        path = str(archc.zoo_path(name))
        documents.set(path, open(path).read(), 1)
        report = documents.checked[path].report
        assert (report.variant, report.parameters["num_classes"]) == (variant, 10)
    assert documents.checked[path].report.output_shape == [10]


def test_archc_lsp_without_pygls_is_a_usage_error_and_check_never_imports_it():
    hidden = "import sys; sys.modules['pygls'] = None; from archc.cli import main; sys.exit(main(['lsp']))"
    proc = subprocess.run([sys.executable, "-c", hidden], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "archc lsp needs pygls and lsprotocol: pip install 'archc[lsp]'" in proc.stderr
    probe = "import sys, archc; archc.check(archc.zoo_path('nin.arch')); print(sorted(m for m in sys.modules " \
            "if m.split('.')[0] in ('pygls', 'lsprotocol', 'cattrs')))"
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip() == "[]", proc.stderr


def test_an_edit_of_a_comment_reuses_the_check_and_an_edit_of_a_cell_does_not(monkeypatch):
    from archc.lsp import documents as documents_module

    path = str(archc.zoo_path("mobilenet_v3_small.arch"))
    text = open(path).read()
    documents = Documents()
    documents.set(path, text, 1)
    checks = []
    real = documents_module.checking
    monkeypatch.setattr(documents_module, "checking", lambda *a, **k: checks.append(a) or real(*a, **k))
    assert documents.set(path, text.replace("# width scales", "# Width scales"), 2) == [path]
    assert checks == [] and documents.checked[path].version == 2 and documents.checked[path].report.params == 2542856
    documents.set(path, text.replace("| 88       |", "| 96       |"), 3)
    assert len(checks) == 1 and documents.checked[path].report.params != 2542856
