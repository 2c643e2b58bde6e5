"""`archc lsp`: the language server's wiring (pygls over stdio).

Each feature is a function of the documents' state (documents.py) in its own module; this file
registers them, turns the checker's diagnostics into the protocol's and publishes them. Checks
run as each change arrives (no debounce): a warm check of a zoo network takes tens of
milliseconds (benchmarks/lsp_latency.py). A request that fails inside archc is logged and
answered with nothing, so the server keeps answering.
"""

from __future__ import annotations

import functools
import logging
import sys

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from ..compiler.reuse import MEMO
from ..dsl.cache import keep_in_memory
from ..dsl.diagnostics import Diagnostic
from . import actions, completion, definitions, hover
from .documents import Documents, Request, Settings, normal
from .positions import Text, path_of, uri_of

log = logging.getLogger("archc.lsp")

SEVERITY = {"error": types.DiagnosticSeverity.Error, "warning": types.DiagnosticSeverity.Warning,
            "note": types.DiagnosticSeverity.Information}


class ArchServer(LanguageServer):
    def __init__(self):
        # Whole texts on each change: pygls applies an incremental edit to the lines of str.splitlines, which
        # also cuts at \f, \v and U+2028 (the protocol cuts at \n, \r\n and \r only), so a comment holding
        # one would put the client's edits on the wrong line. A file is at most 100,000 characters.
        super().__init__("archc", _version(), text_document_sync_kind=types.TextDocumentSyncKind.Full)
        self.documents = Documents()
        self.uris: dict[str, str] = {}  # key -> the URI the client named it by
        self.published: dict[str, list] = {}  # key -> what it was last sent

    # ----------------------------------------------------------------- helpers
    def key(self, uri: str) -> str:
        key = path_of(uri) or uri  # an untitled buffer is checked under its URI
        self.uris.setdefault(key, uri)
        return key

    def uri(self, key: str) -> str:
        return self.uris.get(key) or uri_of(key)

    def text(self, key: str) -> Text:
        return Text(self.documents.source(key), self.workspace.position_codec)

    def location(self, file: str, span) -> types.Location:
        key = normal(file)
        return types.Location(uri=self.uri(key), range=self.text(key).range(span))

    def publish(self, force: list[str]) -> None:
        """Send the diagnostics of every file whose list changed, and of `force` whatever they are."""
        found = self.documents.by_file()
        for key in force + sorted((set(found) | set(self.published)) - set(force)):
            diagnostics = found.get(key, [])
            if key not in force and self.published.get(key, []) == diagnostics:
                continue  # nothing new for this file
            text = self.text(key)
            version = self.documents.open.get(key, (None, None))[1]
            self.text_document_publish_diagnostics(types.PublishDiagnosticsParams(
                uri=self.uri(key), version=version, diagnostics=[to_protocol(d, text) for d in diagnostics]))
            if diagnostics:
                self.published[key] = diagnostics
            else:
                self.published.pop(key, None)


def to_protocol(d: Diagnostic, text: Text) -> types.Diagnostic:
    """The checker's diagnostic as the protocol's: its code, message and range; the hint after the message,
    as `archc check` prints it."""
    message = d.message + (f"\nhint: {d.hint}" if d.hint else "")
    return types.Diagnostic(range=text.range(d.span), message=message, severity=SEVERITY[d.severity], code=d.code,
                            source="archc")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("archc")
    except PackageNotFoundError:
        return "0"


server = ArchServer()


def guarded(handler):
    """A request that fails inside archc answers nothing (and is logged) instead of an error."""

    @functools.wraps(handler)
    def run(ls: ArchServer, params):
        try:
            return handler(ls, params)
        except Exception:  # noqa: BLE001 - the server keeps answering whatever one request met
            log.exception("%s failed", handler.__name__)
            return None

    return run


# ------------------------------------------------------------------- documents


@server.feature(types.INITIALIZE)
def initialize(ls: ArchServer, params: types.InitializeParams):
    ls.documents.settings = Settings.read(params.initialization_options)


@server.feature(types.TEXT_DOCUMENT_DID_OPEN)
@guarded
def did_open(ls: ArchServer, params: types.DidOpenTextDocumentParams):
    key = ls.key(params.text_document.uri)
    ls.publish(ls.documents.set(key, params.text_document.text, params.text_document.version))


@server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
@guarded
def did_change(ls: ArchServer, params: types.DidChangeTextDocumentParams):
    key = ls.key(params.text_document.uri)
    document = ls.workspace.get_text_document(params.text_document.uri)  # pygls applied the changes
    ls.publish(ls.documents.set(key, document.source, params.text_document.version))


@server.feature(types.TEXT_DOCUMENT_DID_SAVE)
@guarded
def did_save(ls: ArchServer, params: types.DidSaveTextDocumentParams):
    ls.publish(ls.documents.refresh(ls.key(params.text_document.uri)))


@server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
@guarded
def did_close(ls: ArchServer, params: types.DidCloseTextDocumentParams):
    ls.publish(ls.documents.close(ls.key(params.text_document.uri)))


@server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
@guarded
def watched_files(ls: ArchServer, params: types.DidChangeWatchedFilesParams):
    checked = []
    for change in params.changes:
        checked += ls.documents.refresh(ls.key(change.uri))
    ls.publish(checked)


@server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
@guarded
def configuration(ls: ArchServer, params: types.DidChangeConfigurationParams):
    ls.documents.settings = Settings.read(params.settings)
    ls.publish(ls.documents.refresh_all())


# -------------------------------------------------------------------- features

FEATURES = [
    (types.TEXT_DOCUMENT_HOVER, hover.hover, None),
    (types.TEXT_DOCUMENT_INLAY_HINT, hover.inlay_hints, None),
    (types.TEXT_DOCUMENT_COMPLETION, completion.complete,
     types.CompletionOptions(trigger_characters=["|", "(", ",", '"', "/"])),
    (types.TEXT_DOCUMENT_DEFINITION, definitions.definition, None),
    (types.TEXT_DOCUMENT_REFERENCES, definitions.references, None),
    (types.TEXT_DOCUMENT_DOCUMENT_SYMBOL, definitions.symbols, None),
    (types.TEXT_DOCUMENT_FORMATTING, actions.formatting, None),
    (types.TEXT_DOCUMENT_CODE_ACTION, actions.code_actions,
     types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.QuickFix])),
]


def answer(feature):
    """A request handler: the feature, given the request about its document."""

    def handler(ls: ArchServer, params):
        key = ls.key(params.text_document.uri)
        return feature(Request(ls.documents, key, ls.text(key), ls.uri(key), params, ls.location))

    handler.__name__ = feature.__name__
    return guarded(handler)


for _method, _feature, _options in FEATURES:
    server.feature(_method, _options)(answer(_feature))


def serve() -> int:
    """Speak the protocol on stdin and stdout until the client says exit."""
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="archc lsp: %(message)s")
    keep_in_memory()
    MEMO.keep_across_checks()  # replay what an edit leaves as it was (compiler/reuse.py)
    server.start_io()
    return 0
