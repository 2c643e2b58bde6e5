"""The parser: the typed AST, its spans, and located syntax errors."""

import pytest

from archc.dsl import ast
from archc.dsl.diagnostics import ArchError
from archc.dsl.parse import parse

SOURCE = """\
# MobileNet-ish
use "blocks/mobile.arch"
let half = 0.5

block b(k, out "#out", se "SE" = false):
    residual if in.c == out and not se:
        conv(out, k, stride = 1)
    shortcut:
        conv(out, 1)

network n(num_classes = 10)
input 3 x 32 x 32
variant wide(num_classes = 20)

features where out = make_divisible(out * half, 8):
    | input   | operator   | #out | SE |
    | 32² × 3 | b, 3x3     | 16   | ✓  |
    | 32² × 8 | b, k5x5    | -    |    |
    concat:
        branch: relu()
        branch:
            maxpool(3, stride = 1)
    output feature_map
    aux head = b(3, 4) if num_classes > 5
"""


def test_items_and_their_kinds():
    module = parse(SOURCE)
    assert [i.kind for i in module.items] == ["use", "let", "block", "network", "input", "variant", "section"]
    block = module.items[2]
    assert [p.name for p in block.params] == ["k", "out", "se"]
    assert block.params[1].aliases == ["#out"]
    assert block.body[0].kind == "residual" and block.body[0].shortcut is not None


def test_tables_keep_headings_as_written_and_cells_typed():
    table = parse(SOURCE).items[-1].body[0]
    assert [h.text for h in table.header] == ["input", "operator", "#out", "SE"]
    first, second = table.rows
    size = first.cells[0].parts[0][0]
    assert size.kind == "dims" and [i.value for i in size.items] == [32, 3] and size.squared == [True, False]
    assert first.cells[3].state == "check"
    assert second.cells[2].state == "absent" and second.cells[3].state == "empty"
    op = second.cells[1]
    assert op.parts[0][0].id == "b" and op.parts[1][0].kind == "kernel" and op.parts[1][0].size == [5, 5]


def test_every_node_has_a_span():
    module = parse(SOURCE)
    cell = module.items[-1].body[0].rows[0].cells[1]
    assert (cell.span.line, cell.span.col) == (17, 17)

    def walk(node):
        if isinstance(node, ast.Node):
            yield node
            for value in node.__dict__.values():
                yield from walk(value)
        elif isinstance(node, list):
            for item in node:
                yield from walk(item)

    missing = [n for n in walk(module) if n.span == ast.NO_SPAN and not isinstance(n, ast.Cell)]
    assert not missing


def test_comments_are_kept_with_positions():
    module = parse("let a = 1  # one\n# alone\nlet b = 2\n")
    assert [(c.text, c.span.line) for c in module.comments] == [("# one", 1), ("# alone", 2)]


def test_ast_is_frozen_and_strict():
    module = parse("let a = 1\n")
    with pytest.raises(Exception):
        module.items[0].name = "b"
    with pytest.raises(Exception):
        ast.Let(name="a", value=ast.Num(value=1, text="1"), bogus=1)


@pytest.mark.parametrize("text,line,col", [
    ("block b(:\n    relu()\n", 1, 9),
    ("network n()\ninput 3 x 32 x 32\nf:\n    | op |\n    | relu |\n    relu() $\n", 6, 12),
    ("block b():\n    relu(\n", 2, 10),
    ("block b():\n    relu(a = 1, 2)\n", 2, 17),
    ("block b():\n        relu()\n    relu()\n", 3, 5),
])
def test_syntax_errors_are_located(text, line, col):
    with pytest.raises(ArchError) as caught:
        parse(text, file="x.arch")
    diagnostic = caught.value.diagnostics[0]
    assert diagnostic.code.startswith("E1")
    assert (diagnostic.span.line, diagnostic.span.col) == (line, col)
    assert diagnostic.render(text).startswith(f"x.arch:{line}:{col}: error[E1")


def test_hash_needs_a_space_to_start_a_comment():
    with pytest.raises(ArchError) as caught:
        parse("let a = 1 #oops\n")
    assert "comment" in (caught.value.diagnostics[0].hint or "")


@pytest.mark.parametrize(("text", "value"), [("(" * 5000 + "1" + ")" * 5000, 1), ("-" * 5000 + "1", 1),
                                             ("-" * 5001 + "1", -1), ("not " * 5000 + "true", True),
                                             ("(" * 40 + "2" + ")" * 40, 2), ("-" * 41 + "3", -3)])
def test_deep_nesting_is_an_answer_or_a_diagnostic(text, value):
    """Nesting is either parsed right (the constant's value) or refused at line 1 as too deep: never a
    crash, a wrong tree, or another error."""
    from archc.compiler.evaluate import Env, evaluate

    try:
        module = parse(f"let a = {text}\n")
    except ArchError as error:
        (diagnostic,) = error.diagnostics
        assert (diagnostic.code, diagnostic.span.line) == ("E400", 1) and "deeply" in diagnostic.message
        assert len(text) > 1000  # only a pathological depth is refused
        return
    assert evaluate(module.items[0].value, Env({})) == value


def _deepest(make) -> int:
    """The deepest `let a = make(n)` that parses (the bound: dsl/reduce.py MAX_NESTING)."""
    low, high = 1, 2000  # parses, does not
    while high - low > 1:
        middle = (low + high) // 2
        try:
            parse(f"let a = {make(middle)}\n")
            low = middle
        except ArchError as error:
            assert error.diagnostics[0].code == "E400" and "deeply" in error.diagnostics[0].message
            high = middle
    return low


@pytest.mark.parametrize("make", [lambda n: "-" * n + "1", lambda n: "max(" * n + "1" + ", 1)" * n,
                                  lambda n: "1 if true else " * n + "1"], ids=["neg", "call", "ifexp"])
def test_the_deepest_file_that_parses_also_checks_formats_and_builds(make, tmp_path):
    """The nesting bound is where the parser stops, and what it lets through every later stage walks
    without running out of stack: check, fmt and the generated source, here from a test's deep stack."""
    from archc.dsl.reduce import MAX_NESTING
    from archc.dsl.printer import format_source
    from archc.compiler.check import build_graph
    from archc.compiler.emit_source import emit

    import archc

    n = _deepest(make)
    assert MAX_NESTING // 2 - 2 <= n <= MAX_NESTING  # a call is two levels: the call and its arguments
    text = (f"let a = {make(n)}\nnetwork n(num_classes = 2)\ninput 3 x 8 x 8\nhead:\n"
            "    conv(max(1, abs(a)) + 1, 1)\n    global_avgpool()\n    flatten()\n    linear(num_classes)\n")
    path = tmp_path / "deep.arch"
    path.write_text(text, encoding="utf-8")
    assert archc.check(path).ok
    assert format_source(format_source(text)) == format_source(text)
    compile(emit(build_graph(path)), "deep.py", "exec")


def test_a_syntax_error_after_a_refused_construct_is_the_one_reported():
    """A rule's own refusal (a positional argument after a named one, line 1) waits for the parse to end:
    the syntax error on line 2 is reported, as when the tree was built first and read after."""
    with pytest.raises(ArchError) as caught:
        parse("let a = f(x = 1, 2)\nlet b = )\n", "x.arch")
    ((diagnostic,),) = [caught.value.diagnostics]
    assert (diagnostic.code, diagnostic.span.line, diagnostic.file) == ("E100", 2, "x.arch")
    with pytest.raises(ArchError) as caught:
        parse("let a = f(x = 1, 2)\nlet b = 1\n", "x.arch")
    ((diagnostic,),) = [caught.value.diagnostics]
    assert (diagnostic.code, diagnostic.span.line, diagnostic.file) == ("E100", 1, "x.arch")
    assert "positional argument follows" in diagnostic.message


def test_threads_parse_at_once_and_each_gets_its_own_tree():
    """archc lsp checks in threads: a parse's state (indentation, comments, the source) is its own."""
    from concurrent.futures import ThreadPoolExecutor

    texts = [f"# file {i}\nlet w{i} = {i} * (2 + {i})\nblock b{i}(c):\n    conv(c, 3)  # c{i}\n" for i in range(8)]
    alone = [parse(t) for t in texts]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(parse, texts * 5))
    assert together == alone * 5


def test_huge_file_is_refused_before_it_is_parsed(monkeypatch):
    import archc.dsl.parse

    def no_parser():
        raise AssertionError("the parser was asked to parse a file over the limits")

    monkeypatch.setattr(archc.dsl.parse, "_parser", no_parser)
    text = "network n()\ninput 1 x 8 x 8\nf:\n    | op |\n" + "    | relu |\n" * 1_000_000
    with pytest.raises(ArchError) as caught:
        parse(text)
    assert caught.value.diagnostics[0].code == "E102"


RULED = """network n(num_classes = 3)
input 3 x 32 x 32

layers:
    | input    | operator     | #out | s |
    |----------|:------------:|------|---|
    | 32² × 3  | conv, 3x3    | 16   | 2 |
    | 16² × 16 | maxpool, 2x2 | -    | 2 |
"""


def test_a_markdown_rule_under_the_header_is_read_and_kept():
    """A table pasted from Markdown has `|---|:---:|` under its header: the same table, marked `ruled`."""
    ruled, plain = parse(RULED, "r.arch"), parse(RULED.replace("    |----------|:------------:|------|---|\n", ""), "p.arch")
    table, bare = ruled.items[2].body[0], plain.items[2].body[0]
    assert table.ruled and not bare.ruled
    assert [[c.text for c in r.cells] for r in table.rows] == [[c.text for c in r.cells] for r in bare.rows]
    assert [r.span.line for r in table.rows] == [7, 8]
    # Only under the header: a rule among the rows is a syntax error where it stands.
    with pytest.raises(ArchError) as error:
        parse(RULED + "    |---|---|---|---|\n", "r.arch")
    assert error.value.diagnostics[0].span.line == 9
