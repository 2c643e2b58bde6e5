"""The server's state: the open documents' texts, the last check of each, and what each check read.

A document is checked when it opens, when its text changes and when a file its last check
read changes (an unsaved buffer of a used library, a save, a file changed on disk); it is not
checked again while nothing it read has changed. Checks go through `archc.compiler.check.checking`
as `archc check` does; its Report (hover, inlay hints) is built when a request first needs it, not at
every keystroke. Open documents are the overlay of the files they use, so a network sees its
library's unsaved edits.
"""

from __future__ import annotations

import logging
import os
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..compiler.check import Checking, Report, UsageError, checking
from ..compiler.program import Program, load
from ..dsl import ast
from ..dsl.cache import cached_parse
from ..dsl.diagnostics import ArchError, Diagnostic
from ..dsl.reparse import parseable
from .index import Index, build_index

log = logging.getLogger("archc.lsp")


@dataclass
class Settings:
    """What the client may set (initializationOptions, or the `archc` section of its settings)."""

    variant: str | None = None  # checked where a file has it, as `archc check --variant`
    params: dict[str, Any] = field(default_factory=dict)  # as `--set NAME=VALUE`, where a network has them
    inlay_hints: bool = True

    @classmethod
    def read(cls, data: Any) -> "Settings":
        data = data if isinstance(data, dict) else {}
        data = data.get("archc", data) if isinstance(data.get("archc", data), dict) else data
        variant = data.get("variant")
        params = data.get("set")
        return cls(variant=variant if isinstance(variant, str) and variant else None,
                   params={k: v for k, v in params.items() if isinstance(k, str)} if isinstance(params, dict) else {},
                   inlay_hints=data.get("inlayHints", True) is not False)


@dataclass
class Checked:
    """One check of an open document, and everything it read."""

    key: str
    text: str
    version: int | None
    options: tuple
    overlay: dict[str, str]
    inputs: dict[str, str]  # file -> the text the check read
    diagnostics: list[Diagnostic]
    checking: Checking | None  # its Report, built when a request first needs it (diagnostics need none)
    items: list | None = None  # the document's parsed items, where it parsed
    _program: Program | None = None
    _index: Index | None = None
    _built: set = field(default_factory=set)

    @property
    def report(self) -> Report | None:
        return self.checking.report() if self.checking is not None else None

    def program(self) -> Program | None:
        """The loaded files (the check's parse, kept in memory), or None where they do not parse."""
        if "program" not in self._built:
            self._built.add("program")
            try:
                self._program = load(self.key, self.text, self.overlay)
            except ArchError:
                self._program = None
        return self._program

    def index(self) -> Index | None:
        """Rows, statements and their layers; built on the first request that needs them."""
        if "index" not in self._built:
            self._built.add("index")
            program = self.program()
            if program is not None and self.report is not None:
                self._index = build_index(program, self.report)
        return self._index


@dataclass
class Request:
    """A request about one document: the state, the document's key, text and URI, the protocol's params,
    and how a place in any file is named as a protocol location."""

    documents: "Documents"
    key: str
    text: Any  # positions.Text
    uri: str
    params: Any
    location: Callable[[str, ast.Span], Any]


def normal(path: str) -> str:
    """The one spelling of a file's path: resolved where it is a path, as given otherwise."""
    return os.path.realpath(path) if os.path.isabs(path) else path


class Documents:
    def __init__(self):
        self.open: dict[str, tuple[str, int | None]] = {}  # key -> (text, version)
        self.checked: dict[str, Checked] = {}
        self.loaded: dict[str, Program] = {}  # key -> its last text that loaded (for completion while half-typed)
        self.settings = Settings()

    # ------------------------------------------------------------ texts
    def text_of(self, path: str) -> str | None:
        if path in self.open:
            return self.open[path][0]
        try:
            with open(path, encoding="utf-8") as f:
                return f.read()
        except (OSError, UnicodeDecodeError):
            return None

    def set(self, key: str, text: str, version: int | None) -> list[str]:
        """A document opened or changed: check it and the open documents that read it."""
        self.open[key] = (text, version)
        return self.refresh(key)

    def close(self, key: str) -> list[str]:
        self.open.pop(key, None)
        self.checked.pop(key, None)
        self.loaded.pop(key, None)
        return self.refresh(key)

    def refresh(self, changed: str) -> list[str]:
        """Check `changed` if open, and every open document whose last check read it or missed a file.
        Returns the keys checked."""
        done = []
        for key in list(self.open):
            last = self.checked.get(key)
            reads = last is None or key == changed or changed in last.inputs or any(
                d.code == "E206" for d in last.diagnostics)
            if reads and not self.current(key):
                self.checked[key] = self._check(key)
                done.append(key)
            elif key == changed:
                done.append(key)  # unchanged: its diagnostics stand, and are sent again
        return done

    def refresh_all(self) -> list[str]:
        """Check every open document again (the settings changed)."""
        for key in self.open:
            self.checked[key] = self._check(key)
        return list(self.open)

    def program(self, key: str) -> Program | None:
        """The document's loaded files; while its text does not parse, the items of it that do (and the
        files they use), else those of its last text that loaded."""
        checked = self.checked.get(key)
        if checked is None:
            return None
        program = checked.program()
        if program is not None:
            self.loaded[key] = program
            return program
        try:
            return load(key, parseable(checked.text, key), checked.overlay)
        except ArchError:
            return self.loaded.get(key)

    def current(self, key: str) -> bool:
        """Whether the last check of `key` read exactly what it would read now."""
        last = self.checked.get(key)
        if last is None or last.text != self.open[key][0] or last.options != self._options(key):
            return False
        return self._unchanged_besides(last, key)

    # ------------------------------------------------------------ checks
    def _options(self, key: str) -> tuple:
        items = _items(self.open[key][0], key)
        if items is None:
            return (None, ())
        variants = {i.name for i in items if i.kind == "variant"}
        network = next((i for i in items if i.kind == "network"), None)
        names = {p.name for p in network.params} if network else set()
        variant = self.settings.variant if self.settings.variant in variants else None
        params = tuple(sorted((k, v) for k, v in self.settings.params.items() if k in names and _hashable(v)))
        return variant, params

    def _check(self, key: str) -> Checked:
        text, version = self.open[key]
        options = self._options(key)
        overlay = {normal(k): t for k, (t, _) in self.open.items() if k != key}
        items = _items(text, key)
        last = self.checked.get(key)
        if last is not None and items is not None and last.items == items and last.options == options and \
                last.overlay == overlay and self._unchanged_besides(last, key):
            # A comment or trailing blanks changed: the same items, at the same places, check the same.
            return Checked(key, text, version, options, overlay, {**last.inputs, key: text}, last.diagnostics,
                           last.checking, items)
        pending = None
        try:
            pending = checking(key, text=text, overlay=overlay, variant=options[0], **dict(options[1]))
            diagnostics = list(pending.diagnostics)
            sources = pending.sources
        except UsageError as error:  # a parameter without a default and no --set: as `archc check` says it
            diagnostics = [Diagnostic(code="usage", severity="warning", file=key, span=_network_span(text, key),
                                      message=str(error),
                                      hint="set it in the editor's settings: archc.set = {NAME: VALUE}")]
            sources = {key: text}
        except Exception as error:  # noqa: BLE001 - a bug in archc must not stop the server
            log.error("checking %s failed:\n%s", key, traceback.format_exc())
            diagnostics = [Diagnostic(code="internal", file=key, span=ast.Span(line=1, col=1, end_line=1, end_col=2),
                                      message=f"archc could not check this file ({type(error).__name__}: {error})",
                                      hint="this is a bug in archc; the server's log has the details")]
            sources = {key: text}
        inputs = {normal(path): source for path, source in sources.items()}
        inputs[key] = text
        previous = self.checked.get(key)
        if previous is not None and previous._program is not None:
            self.loaded[key] = previous._program
        return Checked(key, text, version, options, overlay, inputs, diagnostics, pending, items)

    def _unchanged_besides(self, last: Checked, key: str) -> bool:
        return all(text == self.text_of(path) for path, text in last.inputs.items() if path != key)

    # ------------------------------------------------------------ diagnostics
    def by_file(self) -> dict[str, list[Diagnostic]]:
        """Every open document's diagnostics, by the file they are in: a library's errors found while
        checking a network that uses it are the library's."""
        found: dict[str, dict[tuple, Diagnostic]] = {key: {} for key in self.open}
        for checked in self.checked.values():
            for d in checked.diagnostics:
                found.setdefault(normal(d.file), {}).setdefault((d.code, d.span, d.message, d.severity), d)
        return {file: list(ds.values()) for file, ds in found.items()}

    def source(self, path: str) -> str:
        """The text positions in `path` refer to: the open buffer, else what the checks read."""
        if path in self.open:
            return self.open[path][0]
        for checked in self.checked.values():
            if path in checked.inputs:
                return checked.inputs[path]
        return self.text_of(path) or ""


def _hashable(value) -> bool:
    return isinstance(value, (str, int, float, bool)) or value is None


def _items(text: str, key: str) -> list | None:
    try:
        return cached_parse(text, key).items
    except ArchError:
        return None


def _network_span(text: str, key: str) -> ast.Span:
    items = _items(text, key) or []
    network = next((i for i in items if i.kind == "network"), None)
    return network.span if network else ast.Span(line=1, col=1, end_line=1, end_col=2)
