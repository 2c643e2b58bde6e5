"""archc lsp end to end: a real client (pytest-lsp) talks to `python -m archc lsp` over stdio, as an
editor does. The figures the server shows are the checker's (archc.check is the oracle here; the
checker's own figures are compared with torchinfo in test_zoo_*)."""

import asyncio
import sys

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

import archc
from archc.dsl.printer import format_source
from conftest import ZOO

pytestmark = [pytest.mark.asyncio(loop_scope="module"),
              pytest.mark.filterwarnings("error::pytest_lsp.checks.LspSpecificationWarning")]

MOBILENET = ZOO / "mobilenet_v3_small.arch"
LIBRARY = ZOO / "blocks" / "mobile.arch"
WAIT = 60  # seconds for one answer: generous, for a loaded 2-core machine; a hang fails, not a slow reply


@pytest_lsp.fixture(scope="module", config=ClientServerConfig(server_command=[sys.executable, "-m", "archc", "lsp"]))
async def client(lsp_client: LanguageClient):
    lsp_client.initialized = await lsp_client.initialize_session(
        types.InitializeParams(capabilities=client_capabilities("visual-studio-code")))
    yield
    await lsp_client.shutdown_session()


def uri(path) -> str:
    """A file's URI; a string is a URI already (an untitled buffer's)."""
    return path if isinstance(path, str) else path.resolve().as_uri()


def doc(path) -> types.TextDocumentIdentifier:
    return types.TextDocumentIdentifier(uri=uri(path))


async def published(client: LanguageClient, path, send) -> list[types.Diagnostic]:
    """Send a notification and wait for the diagnostics of `path` that answer it."""
    client.diagnostics.pop(uri(path), None)
    send()
    async def arrived():
        while uri(path) not in client.diagnostics:
            await client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    await asyncio.wait_for(arrived(), WAIT)
    return list(client.diagnostics[uri(path)])


async def open_file(client: LanguageClient, path, text=None) -> list[types.Diagnostic]:
    text = path.read_text(encoding="utf-8") if text is None else text
    item = types.TextDocumentItem(uri=uri(path), language_id="arch", version=1, text=text)
    return await published(client, path, lambda: client.text_document_did_open(types.DidOpenTextDocumentParams(item)))


async def change(client: LanguageClient, path, text: str, version: int, target=None) -> list[types.Diagnostic]:
    params = types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri(path), version=version),
        content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)])
    return await published(client, target or path, lambda: client.text_document_did_change(params))


def close(client: LanguageClient, path) -> None:
    client.text_document_did_close(types.DidCloseTextDocumentParams(doc(path)))


def at(line: int, character: int) -> types.Position:
    """A position from a 1-based line (as editors and archc show them) and a 0-based character."""
    return types.Position(line=line - 1, character=character)


def row_line(text: str, row: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if line.strip() == row)


# ---------------------------------------------------------------- diagnostics


@pytest.mark.parametrize("name", ["mobilenet_v3_small.arch", "efficientnet.arch", "googlenet.arch"])
async def test_a_zoo_file_opens_without_diagnostics(client, name):
    assert await open_file(client, ZOO / name) == []
    close(client, ZOO / name)


async def test_a_changed_out_cell_is_e302_on_the_next_row_and_fixing_it_clears_it(client):
    text = MOBILENET.read_text()
    assert await open_file(client, MOBILENET) == []
    row = "| 56² × 16  | bneck, 3x3  | 72       | 24   | -  | RE | 2 |"
    broken = text.replace(row, row.replace("| 24   |", "| 32   |"))
    (diagnostic,) = await change(client, MOBILENET, broken, 2)
    line = row_line(text, row) + 1  # the next row: its input cell 28² × 24 no longer holds
    assert diagnostic.code == "E302" and diagnostic.severity == types.DiagnosticSeverity.Error
    assert diagnostic.range.start == at(line, 6) and diagnostic.range.end == at(line, 14)
    assert diagnostic.message.startswith("the table says the input is 28×28×24, but it is 28×28×32\n"
                                         f"hint: the row at line {line - 1} takes ")  # the row changed
    assert [d.message.split("\n")[0] for d in await change(client, MOBILENET, broken, 3)] == \
        [diagnostic.message.split("\n")[0]]  # an unchanged text is answered again, from the last check
    assert await change(client, MOBILENET, text, 4) == []
    close(client, MOBILENET)


async def test_every_error_at_once_as_archc_check_reports_them(client, tmp_path):
    path = tmp_path / "two.arch"
    text = MOBILENET.read_text().replace('use "blocks/mobile.arch"', f'use "{LIBRARY}"')
    text = text.replace("| bneck, 3x3  | 88 ", "| bnek, 3x3   | 88 ")
    text = text.replace("| 7² × 96   | conv2d", "| 9² × 96   | conv2d")
    path.write_text(text)
    expected = archc.check(path).diagnostics
    found = await open_file(client, path)
    assert [(d.code, d.range.start.line + 1, d.range.start.character + 1) for d in found] == \
        [(d.code, d.span.line, d.span.col) for d in expected]
    assert len(found) == 2
    close(client, path)


async def test_ranges_count_utf16_code_units(client, tmp_path):
    path = tmp_path / "emoji.arch"
    path.write_text('block b(out):\n    conv(max("😀", nope), 3)\n')
    (diagnostic,) = await open_file(client, path)
    assert diagnostic.code == "E200" and diagnostic.range.start.line == 1
    # `nope` is the line's 19th character; the emoji before it is two UTF-16 code units
    assert (diagnostic.range.start.character, diagnostic.range.end.character) == (19, 23)
    close(client, path)


async def test_a_lone_carriage_return_in_a_comment_moves_no_diagnostic(client, tmp_path):
    """The protocol ends a line at a lone \\r too; archc (as its parser) does not: the diagnostic on archc's
    line 3 is on the client's line 4."""
    path = tmp_path / "cr.arch"
    text = "block b(out):  # old:\r    conv(out, 3, stride = 2)\n    conv(out, 3)\n    nope(1)\n"
    path.write_bytes(text.encode())  # (read_text would turn the \\r into \\n)
    (expected,) = archc.check(path).diagnostics
    assert (expected.code, expected.span.line, expected.span.col) == ("E200", 3, 5)
    (diagnostic,) = await open_file(client, path, text)
    assert diagnostic.code == "E200" and (diagnostic.range.start.line, diagnostic.range.start.character) == (3, 4)
    close(client, path)


async def test_the_server_takes_whole_texts(client):
    """pygls would apply an incremental edit to the lines of str.splitlines, which also cuts at \\f, \\v and
    U+2028: a comment holding one would misplace every edit after it. The server asks for whole texts."""
    assert client.initialized.capabilities.text_document_sync.change == types.TextDocumentSyncKind.Full


def library_and_network(folder):
    """A library with one block, and a network whose table uses it twice on an 8×8 map."""
    library, network = folder / "lib.arch", folder / "net.arch"
    library.write_text("block unit(out):\n    conv(out, 3, padding = 1)\n")
    network.write_text('use "lib.arch"\n\nnetwork net()\ninput 3 x 8 x 8\n\nfeatures:\n'
                       "    | input   | operator | out |\n    | 8² × 3  | unit     | 4   |\n"
                       "    | 8² × 4  | unit     | 4   |\n")
    return library, network


async def test_a_network_is_rediagnosed_when_its_library_changes_unsaved(client, tmp_path):
    library, network = library_and_network(tmp_path)
    assert await open_file(client, network) == []
    await open_file(client, library)
    # the library, unsaved, now shrinks the map: the network's second row no longer gets 8²
    shrinking = library.read_text().replace("padding = 1", "padding = 0")
    (diagnostic,) = await change(client, library, shrinking, 2, target=network)
    assert diagnostic.code == "E302" and diagnostic.range.start.line == 8
    assert await change(client, library, library.read_text(), 3, target=network) == []
    close(client, library)
    close(client, network)


async def test_a_library_changed_on_disk_rediagnoses_the_open_networks_that_use_it(client, tmp_path):
    library, network = library_and_network(tmp_path)
    assert await open_file(client, network) == []
    library.write_text(library.read_text().replace("padding = 1", "padding = 0"))  # another program wrote it
    event = types.FileEvent(uri=uri(library), type=types.FileChangeType.Changed)
    (diagnostic,) = await published(client, network, lambda: client.workspace_did_change_watched_files(
        types.DidChangeWatchedFilesParams(changes=[event])))
    assert diagnostic.code == "E302"
    assert diagnostic.message.startswith("the table says the input is 8×8×4, but it is 6×6×4")
    close(client, network)


@pytest.mark.parametrize("text", [
    "network n()\ninput 3 x 8 x 8\nfeatures:\n    | input | operator | out |\n    | 8² × 3 | conv, 3x3 |",
    "features:\n    | input | oper",
    "\x00\x01\x02PK\x03\x04\x89PNG\r\n\x1a\n" + "".join(chr(c) for c in range(1, 300)),
    "block b(:\n",
    "",
])
async def test_half_typed_or_binary_text_never_stops_the_server(client, tmp_path, text):
    path = tmp_path / "typing.arch"
    diagnostics = await open_file(client, path, text)
    assert all(d.severity in (types.DiagnosticSeverity.Error, types.DiagnosticSeverity.Information)
               for d in diagnostics)
    # it keeps answering: hover, completion, symbols and formatting on the broken text, then a good file
    await client.text_document_hover_async(types.HoverParams(doc(path), at(1, 3)))
    await client.text_document_completion_async(types.CompletionParams(doc(path), at(1, 3)))
    await client.text_document_document_symbol_async(types.DocumentSymbolParams(doc(path)))
    await client.text_document_formatting_async(
        types.DocumentFormattingParams(doc(path), types.FormattingOptions(4, True)))
    close(client, path)
    assert await open_file(client, ZOO / "nin.arch") == []
    close(client, ZOO / "nin.arch")


# ---------------------------------------------------------------- hover and hints


async def test_hover_on_a_row_gives_its_shapes_params_and_macs(client):
    text = MOBILENET.read_text()
    await open_file(client, MOBILENET)
    line = row_line(text, "| 112² × 16 | bneck, 3x3  | 16       | 16   | ✓  | RE | 2 |")
    hover = await client.text_document_hover_async(types.HoverParams(doc(MOBILENET), at(line, 40)))
    layers = [l for l in archc.check(MOBILENET).layers if l.row_line == line]
    value = hover.contents.value
    assert f"| 112² × 16 | 56² × 16 | {sum(l.params for l in layers):,} | {sum(l.macs for l in layers):,} |" in value
    assert "| 112² × 16 | 56² × 16 | 744 | 1,254,744 |" in value  # the figures `archc check` prints for the row
    assert all(l.name in value for l in layers[:12])
    on_name = await client.text_document_hover_async(types.HoverParams(doc(MOBILENET), at(line, 19)))
    assert 'block bneck(k, exp "exp size", out "#out", se "SE" = false, nl "NL" = relu, s = 1)' in \
        on_name.contents.value
    assert "MobileNetV2's inverted residual" in on_name.contents.value  # its comment, from blocks/mobile.arch
    close(client, MOBILENET)


async def test_inlay_hints_give_each_rows_output_shape(client):
    text = MOBILENET.read_text()
    await open_file(client, MOBILENET)
    hints = await client.text_document_inlay_hint_async(types.InlayHintParams(
        doc(MOBILENET), types.Range(start=at(1, 0), end=at(len(text.splitlines()) + 1, 0))))
    report = archc.check(MOBILENET)
    last = {}
    for layer in report.layers:
        last[layer.row_line] = layer.output_shape
    expected = {line: shape for line, shape in last.items()}
    assert {h.position.line + 1 for h in hints} == set(expected)
    for hint in hints:
        c, h, w = (expected[hint.position.line + 1] + [1, 1])[:3]
        assert hint.label == (f"→ {h}² × {c}" if len(expected[hint.position.line + 1]) == 3 else f"→ {c}")
        assert hint.position.character == len(text.splitlines()[hint.position.line].rstrip())
    close(client, MOBILENET)


# ---------------------------------------------------------------- completion


def labels(result) -> set[str]:
    items = result.items if isinstance(result, types.CompletionList) else result
    return {item.label for item in items}


async def test_completion_in_an_operator_cell_offers_blocks_and_ops(client):
    text = MOBILENET.read_text()
    await open_file(client, MOBILENET)
    row = "| 28² × 24  | bneck, 3x3  | 88       | 24   | -  | RE | 1 |"
    line = row_line(text, row)
    character = text.splitlines()[line - 1].index("bneck") + 2  # `bn|eck`
    found = labels(await client.text_document_completion_async(
        types.CompletionParams(doc(MOBILENET), at(line, character))))
    assert {"bneck", "conv2d", "squeeze_excite", "conv", "hardswish"} <= found
    assert "num_classes" not in found
    close(client, MOBILENET)


async def test_completion_of_parameters_headings_and_use_paths(client, tmp_path):
    path = tmp_path / "typing.arch"
    text = ('use "blocks/mobile.arch"\nuse "blocks/\n\nnetwork n(num_classes = 10)\ninput 3 x 32 x 32\n\nhead:\n'
            "    bneck(3, 16, \n    conv(8, \n    | #ou\n")
    await open_file(client, path, text)

    async def at_end_of(line: int):
        return labels(await client.text_document_completion_async(
            types.CompletionParams(doc(path), at(line, len(text.splitlines()[line - 1])))))

    assert {"mobile.arch", "resnet.arch", "efficientnet.arch"} <= await at_end_of(2)  # the block library
    assert {"se =", "nl =", "s =", "exp =", "num_classes", "RE", "HS"} <= await at_end_of(8)  # bneck's parameters
    assert {"stride =", "groups =", "bias ="} <= await at_end_of(9)  # the conv op's
    assert {"#out", "exp size", "SE", "NL", "input", "operator"} <= await at_end_of(10)  # headings bneck binds
    close(client, path)


# ---------------------------------------------------------------- definitions


async def test_definition_of_a_block_is_in_the_used_library(client):
    text = MOBILENET.read_text()
    await open_file(client, MOBILENET)
    line = row_line(text, "| 112² × 16 | bneck, 3x3  | 16       | 16   | ✓  | RE | 2 |")
    (place,) = await definitions(client, MOBILENET, at(line, 19))
    library_line = row_line(LIBRARY.read_text(), 'block bneck(k, exp "exp size", out "#out", se "SE" = false, '
                                                  'nl "NL" = relu, s = 1):')
    assert place.uri == uri(LIBRARY)
    assert (place.range.start, place.range.end) == (at(library_line, 6), at(library_line, 11))
    use = await definitions(client, MOBILENET, at(5, 8))
    assert [p.uri for p in use] == [uri(LIBRARY)]
    # a parameter of the network, used in the classifier table
    row = "| 1² × 576  | fc        | 1024        | HS | dropout |"
    dropout = row_line(text, row)
    (param,) = await definitions(client, MOBILENET, at(dropout, text.splitlines()[dropout - 1].index("dropout")))
    assert param.uri == uri(MOBILENET) and param.range.start.line == 6
    close(client, MOBILENET)


async def definitions(client, path, position) -> list[types.Location]:
    found = await client.text_document_definition_async(types.DefinitionParams(doc(path), position))
    return [found] if isinstance(found, types.Location) else list(found or [])


async def test_references_of_a_constant_across_used_files(client):
    library = LIBRARY.read_text()
    await open_file(client, MOBILENET)
    line = row_line(library, "let HS = hardswish")
    row = "| 224² × 3  | conv2d, 3x3 | -        | 16   | -  | HS | 2 |"
    position = at(row_line(MOBILENET.read_text(), row), 4 + row.index("HS"))
    found = await client.text_document_references_async(types.ReferenceParams(
        context=types.ReferenceContext(include_declaration=True), text_document=doc(MOBILENET), position=position))
    in_network = [p for p in found if p.uri == uri(MOBILENET)]
    assert len(in_network) == MOBILENET.read_text().count("| HS |")
    assert [p.range.start for p in found if p.uri == uri(LIBRARY)] == [at(line, 4)]
    close(client, MOBILENET)


async def test_document_symbols_name_the_network_sections_variants_and_blocks(client):
    path = ZOO / "efficientnet.arch"
    await open_file(client, path)
    found = await client.text_document_document_symbol_async(types.DocumentSymbolParams(doc(path)))
    names = [(s.name, s.kind) for s in found]
    assert ("efficientnet", types.SymbolKind.Class) in names and ("features", types.SymbolKind.Namespace) in names
    assert [n for n, k in names if k == types.SymbolKind.EnumMember] == [f"b{i}" for i in range(8)]
    close(client, path)
    await open_file(client, LIBRARY)
    found = await client.text_document_document_symbol_async(types.DocumentSymbolParams(doc(LIBRARY)))
    assert [s.name for s in found if s.kind == types.SymbolKind.Function] == \
        ["conv2d", "squeeze_excite", "bneck", "pool", "fc"]
    close(client, LIBRARY)


# ---------------------------------------------------------------- formatting, quick fixes


async def test_formatting_is_archc_fmt(client, tmp_path):
    path = tmp_path / "messy.arch"
    messy = "let  w=1.0\nblock b( out ):\n  conv(out,3)\n"
    await open_file(client, path, messy)
    (edit,) = await client.text_document_formatting_async(types.DocumentFormattingParams(
        doc(path), types.FormattingOptions(4, True)))
    assert edit.new_text == format_source(messy) and edit.range.start == at(1, 0)
    close(client, path)
    await open_file(client, MOBILENET)
    assert await client.text_document_formatting_async(types.DocumentFormattingParams(
        doc(MOBILENET), types.FormattingOptions(4, True))) in ([], ())  # the zoo is formatted
    close(client, MOBILENET)


async def quick_fixes(client, path, diagnostics) -> list[types.CodeAction]:
    return await client.text_document_code_action_async(types.CodeActionParams(
        doc(path), diagnostics[0].range, types.CodeActionContext(diagnostics=diagnostics)))


async def test_quick_fixes_rename_a_misspelt_operator_and_resize_a_wrong_cell(client):
    text = MOBILENET.read_text()
    await open_file(client, MOBILENET)
    misspelt = text.replace("| 28² × 24  | bneck, 5x5  | 96", "| 28² × 24  | bnek, 5x5   | 96")
    diagnostics = await change(client, MOBILENET, misspelt, 2)
    (action,) = await quick_fixes(client, MOBILENET, diagnostics)
    (edit,) = action.edit.changes[uri(MOBILENET)]
    assert action.title == "Change 'bnek' to 'bneck'" and edit.new_text == "bneck"
    assert edit.range == diagnostics[0].range
    stride = text.replace("| 56² × 16  | bneck, 3x3  | 72       | 24   | -  | RE | 2 |",
                          "| 56² × 16  | bneck, 3x3  | 72       | 24   | -  | RE | 1 |")
    diagnostics = await change(client, MOBILENET, stride, 3)
    (action,) = await quick_fixes(client, MOBILENET, diagnostics)
    (edit,) = action.edit.changes[uri(MOBILENET)]
    assert edit.new_text == "56² × 24" and edit.range == diagnostics[0].range
    lines = stride.splitlines()
    fixed_line = lines[edit.range.start.line][:edit.range.start.character] + edit.new_text + \
        lines[edit.range.start.line][edit.range.end.character:]
    lines[edit.range.start.line] = fixed_line
    after = archc.check(MOBILENET, text="\n".join(lines) + "\n").diagnostics
    assert after and all(d.span.line > edit.range.start.line + 1 for d in after)  # the cell holds; the next is off
    close(client, MOBILENET)



async def test_an_untitled_buffer_is_checked_too(client):
    name = "untitled:Untitled-1"
    text = MOBILENET.read_text().replace("| 16   | ✓  | RE | 2 |", "| 16   | ✓  | RE | 3 |")
    assert [d.code for d in await open_file(client, name, text)] == ["E302"]  # its `use` found the block library
    close(client, name)
