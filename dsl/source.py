r"""The text of a .arch file: how it is read, where its lines end, how it is shown.

Every stage numbers lines the same way, by calling `split_lines`: the lexer
(grammar/arch.lark ends a line at `\n`, with an optional `\r` before it), the
printer's map of blank lines, the source line under a diagnostic and the row
text of `archc check`'s table. `str.splitlines` would also split at a lone
`\r`, `\f`, `\v`, U+2028 or U+2029 — characters the lexer keeps inside a
comment — and so number the lines after them differently from the parser.

    >>> split_lines("conv(8, 3)  # old:\r    conv(8, 3, stride = 2)\r\nrelu()\n")
    ['conv(8, 3)  # old:\r    conv(8, 3, stride = 2)', 'relu()']
    >>> printable("a\x1b[31m\u202eb")
    'a\ufffd[31m\ufffdb'
"""

from __future__ import annotations

import os
import re
import stat

MAX_SOURCE_LINES = 1_000  # a paper table has tens of rows; a full-size file still checks in under a second
MAX_SOURCE_CHARS = 100_000
_MAX_BYTES = 4 * (MAX_SOURCE_CHARS + 1)  # UTF-8 spends at most 4 bytes on a character


def split_lines(text: str) -> list[str]:
    """The lines of `text` as the parser counts them: each ends at `\n` (its `\r` before it dropped).
    A final newline ends the last line rather than starting an empty one, as with `str.splitlines`."""
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def source_line(text: str | None, number: int) -> str | None:
    """Line `number` (1-based) of `text`, or None when there is no such line."""
    if text is None or number < 1:
        return None
    lines = split_lines(text)
    return lines[number - 1] if number <= len(lines) else None


def read_source(path: str | os.PathLike, errors: str = "strict") -> str:
    """The text of the file at `path`, decoded as UTF-8 with its line ends untouched (no universal
    newlines: a lone `\r` stays a character), and at most MAX_SOURCE_CHARS + 1 characters of it —
    enough for the parser to report the file as too large without holding a 3 GB file in memory.

    Raises OSError when the file cannot be read or is not a regular file (a FIFO would block, a
    device may never end) and, unless `errors` is "replace", UnicodeDecodeError when its text is
    not UTF-8.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # opening a FIFO would wait for a writer
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(0, "not a regular file", os.fspath(path))
        chunks, size = [], 0
        while size <= _MAX_BYTES:
            chunk = os.read(fd, _MAX_BYTES + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    data = b"".join(chunks)
    try:
        text = data.decode("utf-8", errors)
    except UnicodeDecodeError as error:
        if len(data) <= _MAX_BYTES or error.start < len(data) - 3 or error.reason != "unexpected end of data":
            raise
        text = data[:error.start].decode("utf-8")  # the read stopped inside a character of a file too large anyway
    return text[:MAX_SOURCE_CHARS + 1]


# What a terminal or an XML document must not receive from a user's file: control characters (a
# terminal runs escape sequences), line and paragraph separators, the bidirectional overrides that
# reorder what is shown, and what XML 1.0 forbids (U+FFFE, U+FFFF, lone surrogates).
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufffe\uffff\ud800-\udfff]")


def printable(text: str) -> str:
    """`text` with every character that must not be echoed replaced by U+FFFD, one for one, so that
    columns (a diagnostic's caret) still line up."""
    return _UNPRINTABLE.sub("\ufffd", str(text))
