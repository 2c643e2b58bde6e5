"""Diagnostics are data first (code, message, span, hint), rendered second.

    >>> from archc.dsl.ast import Span
    >>> d = Diagnostic(code="E201", message="unknown operator 'bnek'", file="a.arch",
    ...                span=Span(line=2, col=5, end_line=2, end_col=9), hint="did you mean 'bneck'?")
    >>> print(d.render("x = 1\\n  | bnek |\\n").splitlines()[0])
    a.arch:2:5: error[E201]: unknown operator 'bnek'

Codes: E1xx syntax, E2xx names and arguments, E3xx shapes and assertions,
E4xx limits (see docs/language.md, "Diagnostics").
"""

from __future__ import annotations

import difflib
import re
from typing import Iterable, Literal, Mapping

from .ast import NO_SPAN, Span
from .record import Record
from .source import printable, source_line


class Diagnostic(Record):
    code: str
    message: str
    severity: Literal["error", "warning", "note"] = "error"
    file: str = "<input>"
    span: Span = NO_SPAN
    hint: str | None = None

    def render(self, source: str | None) -> str:
        """`file:line:col: error[CODE]: message`, the source line, a caret, the hint. Nothing from a
        file reaches the terminal raw: control characters show as U+FFFD (dsl/source.py)."""
        head = f"{self.file}:{self.span.line}:{self.span.col}: {self.severity}[{self.code}]: {self.message}"
        lines = [printable(head)]
        text = source_line(source, self.span.line)
        if text is not None:
            text = printable(text.replace("\t", " "))
            number = str(self.span.line)
            pad = " " * len(number)
            width = self.span.end_col - self.span.col if self.span.end_line == self.span.line else len(text)
            width = max(1, min(width, len(text) - self.span.col + 2))
            text, col, width = _window(text, self.span.col, width)
            lines.append(f"{pad} |")
            lines.append(f"{number} | {text}")
            lines.append(f"{pad} | {' ' * (col - 1)}{'^' * width}")
        if self.hint:
            lines.append(printable(f"  = hint: {self.hint}"))
        return "\n".join(lines)

    def as_json(self) -> dict:
        return {
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "file": self.file,
            "line": self.span.line,
            "col": self.span.col,
            "hint": self.hint,
        }


class ArchError(Exception):
    """Raised by a stage that cannot go on; carries its diagnostics."""

    def __init__(self, diagnostics: list[Diagnostic]):
        super().__init__("; ".join(d.message for d in diagnostics))
        self.diagnostics = diagnostics


def in_reading_order(diagnostics: Iterable[Diagnostic], files: Iterable[str] = ()) -> list[Diagnostic]:
    """The diagnostics as a reader meets them: by file (those in `files` first, in its order — a
    program's sources list the checked file first — then in the order met), then by line and column.
    The checker finds them stage by stage (names, then shapes), which is not where they are."""
    diagnostics = list(diagnostics)
    rank = {name: i for i, name in enumerate(dict.fromkeys([*files, *(d.file for d in diagnostics)]))}
    return sorted(diagnostics, key=lambda d: (rank[d.file], d.span.line, d.span.col))


def render_all(diagnostics: Iterable[Diagnostic], sources: Mapping[str, str | None]) -> str:
    """Every diagnostic rendered with its file's text, in reading order, one after another."""
    return "\n".join(d.render(sources.get(d.file)) for d in in_reading_order(diagnostics, sources))


SHOWN = 120  # characters of a source line shown under a diagnostic; a longer line is cut around the caret


def _window(text: str, col: int, width: int) -> tuple[str, int, int]:
    """At most SHOWN characters of `text` around columns col .. col + width: (text, col, width) to print."""
    if len(text) <= SHOWN:
        return text, col, width
    width = min(width, SHOWN // 2)
    start = max(0, min(col - 1 - SHOWN // 4, len(text) - SHOWN))
    shown = text[start:start + SHOWN]
    head, tail = ("…" if start else ""), ("…" if start + SHOWN < len(text) else "")
    return head + shown + tail, col - start + len(head), width


_SUGGESTED = re.compile(r"did you mean '([^']+)'\?")


def did_you_mean(word: str, candidates: Iterable[str]) -> str | None:
    """A hint naming the closest candidate, or None (`suggestion` reads the name back)."""
    pool = sorted(set(candidates))
    close = difflib.get_close_matches(word, pool, n=1, cutoff=0.6)
    if not close:
        lowered = {c.lower(): c for c in pool}
        close = [lowered[word.lower()]] if word.lower() in lowered else []
    return f"did you mean '{close[0]}'?" if close else None


def suggestion(hint: str | None) -> str | None:
    """The name a did-you-mean hint suggests (a quick fix's replacement), or None.

    >>> suggestion("did you mean 'bneck'? (in block 'stage', used at net.arch:12)")
    'bneck'
    """
    match = _SUGGESTED.match(hint or "")
    return match.group(1) if match else None
