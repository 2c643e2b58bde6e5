"""Between archc's spans and the protocol's positions.

A `Span` (dsl/ast.py) counts lines and columns from 1, in characters, its end exclusive; the
protocol counts from 0, in the code units the client and server agreed on (UTF-16 unless the
client offers another): `224² × 3` is the same length in both, an emoji is not. The two also cut
lines differently: archc at "\\n" (dsl/source.py: a lone "\\r" is a character of the line, as the
parser reads it), the protocol at "\\n", "\\r\\n" and a lone "\\r"; positions go through offsets
in the text, so a comment holding a lone "\\r" moves no diagnostic.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path

from lsprotocol import types
from pygls.uris import from_fs_path, to_fs_path
from pygls.workspace import PositionCodec

from ..dsl.ast import Span

_CLIENT_LINE_END = re.compile(r"\r\n|\r|\n")  # the protocol's line ends (LSP 3.17, "Text Documents")
IDENTIFIER_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


@dataclass
class Text:
    """A file's text cut into lines, and the codec of the session's position encoding."""

    text: str
    codec: PositionCodec

    def __post_init__(self):
        self.lines = self.text.split("\n")  # archc's lines (line() and word() read them)
        self.starts = list(accumulate((len(line) + 1 for line in self.lines[:-1]), initial=0))
        ends = list(_CLIENT_LINE_END.finditer(self.text))
        self.client_starts = [0] + [end.end() for end in ends]
        self.client_lines = [self.text[start:end.start()] for start, end in zip(self.client_starts, ends)]
        self.client_lines.append(self.text[self.client_starts[-1]:])

    def line(self, number: int) -> str:
        """Line `number` (from 1), or "" past the end."""
        return self.lines[number - 1] if 0 < number <= len(self.lines) else ""

    def range(self, span: Span) -> types.Range:
        """A span as a protocol range; a span without a place (line 0) is the file's start."""
        if span.line < 1:
            return types.Range(start=types.Position(line=0, character=0), end=types.Position(line=0, character=0))
        return types.Range(start=self.position(span.line, span.col), end=self.position(span.end_line, span.end_col))

    def position(self, line: int, col: int) -> types.Position:
        """The protocol position of (line, col), both from 1; a column past its line's end is the end."""
        if line > len(self.lines):
            return types.Position(line=len(self.client_lines), character=0)
        offset = self.starts[line - 1] + min(max(col - 1, 0), len(self.lines[line - 1]))
        at = bisect_right(self.client_starts, offset) - 1
        return self.codec.position_to_client_units(self.client_lines, types.Position(
            line=at, character=min(offset - self.client_starts[at], len(self.client_lines[at]))))

    def place(self, position: types.Position) -> tuple[int, int]:
        """A protocol position as (line, col), both from 1."""
        at = self.codec.position_from_client_units(self.client_lines, types.Position(line=position.line,
                                                                                      character=position.character))
        offset = self.client_starts[at.line] + min(at.character, len(self.client_lines[at.line]))
        line = bisect_right(self.starts, offset) - 1
        return line + 1, offset - self.starts[line] + 1

    def word(self, line: int, col: int) -> tuple[str, int] | None:
        """The name under (or just before) (line, col), and the column it starts at."""
        text = self.line(line)
        i = col - 1
        if not (0 <= i < len(text) and text[i] in IDENTIFIER_CHARS):
            i -= 1  # the cursor just after a name
        if not (0 <= i < len(text) and text[i] in IDENTIFIER_CHARS):
            return None
        start = i
        while start > 0 and text[start - 1] in IDENTIFIER_CHARS:
            start -= 1
        end = i
        while end < len(text) and text[end] in IDENTIFIER_CHARS:
            end += 1
        word = text[start:end]
        return (word, start + 1) if not word[0].isdigit() else None

    def name_span(self, name: str, line: int, col: int = 1) -> Span:
        """The span of the first whole `name` on `line` at or after `col`, else of the line's start."""
        text = self.line(line)
        at = col - 1
        while True:
            at = text.find(name, at)
            if at < 0:
                return Span(line=line, col=col, end_line=line, end_col=col + len(name))
            before = text[at - 1] if at else " "
            after = text[at + len(name)] if at + len(name) < len(text) else " "
            if before not in IDENTIFIER_CHARS and after not in IDENTIFIER_CHARS:
                return Span(line=line, col=at + 1, end_line=line, end_col=at + 1 + len(name))
            at += 1


def last_line(span: Span) -> int:
    """The last line a span covers: a statement's span ends at the start of the line after it."""
    return span.end_line - 1 if span.end_col == 1 and span.end_line > span.line else span.end_line


def path_of(uri: str) -> str | None:
    """The resolved file path of a `file:` URI, or None for other schemes (an untitled buffer)."""
    path = to_fs_path(uri)
    if path is None or not uri.startswith("file:"):
        return None
    return str(Path(path).resolve())


def uri_of(path: str) -> str:
    return from_fs_path(str(Path(path).resolve())) or Path(path).resolve().as_uri()
