"""Parsed files kept between runs, as Python keeps bytecode in __pycache__.

A check of EfficientNet-B7 spent a quarter of its time importing lark, loading
its parser and parsing two files that had not changed since the last check
(the block libraries never do). `cached_parse` gives the module parsed last
time when the file's text, archc's parser (grammar, rule methods, AST records)
and Python are the same, and imports lark only when something must be parsed.

One entry per file path, overwritten when its text changes, in
`$ARCHC_CACHE_DIR` (empty: no cache), else `$XDG_CACHE_HOME/archc` or
`~/.cache/archc`. The cache is best-effort: a missing, unwritable or corrupt
entry means parsing, never an error. Syntax errors are not cached.

A long-running process (`archc lsp`) calls `keep_in_memory()`: from then on files are parsed
item by item and the items kept in the process (dsl/reparse.py), and the disk is not used, since
the texts it sees are an editor's, one per keystroke.

    >>> from archc.compiler.program import library_dir
    >>> path = library_dir() / "nin.arch"
    >>> cached_parse(path.read_text(), str(path)).items[0].kind
    'use'
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import sys
import tempfile
from functools import lru_cache
from importlib import resources
from pathlib import Path


from . import ast


_in_memory = False


def keep_in_memory() -> None:
    """Parse by items kept in this process from now on, instead of whole files kept on disk."""
    global _in_memory
    _in_memory = True


def cached_parse(text: str, file: str) -> ast.Module:
    """`parse(text, file)`, from the cache when nothing it depends on has changed."""
    if _in_memory:
        from .reparse import parse_by_items

        return parse_by_items(text, file)
    entry = _entry(file)
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()
    module = _load(entry, digest) if entry is not None else None
    if module is not None:
        return module
    from .parse import parse  # lark is imported only when a file has to be parsed

    module = parse(text, file)
    if entry is not None:
        _store(entry, (_salt(), digest, module))
    return module


def _load(entry: Path, digest: bytes) -> ast.Module | None:
    try:
        with open(entry, "rb") as f:
            salt, stored, module = pickle.load(f)
    except Exception:  # noqa: BLE001 - a missing, damaged or foreign entry is a miss, whatever it raises
        return None
    if salt == _salt() and stored == digest and isinstance(module, ast.Module):
        return module
    return None


@lru_cache(maxsize=1)
def _directory() -> Path | None:
    chosen = os.environ.get("ARCHC_CACHE_DIR")
    if chosen is None:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        chosen = os.path.join(base, "archc")
    if not chosen:
        return None
    directory = Path(chosen) / "parsed"
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError:
        return None
    return directory


def _entry(file: str) -> Path | None:
    directory = _directory()
    if directory is None:
        return None
    name = hashlib.sha256(os.path.abspath(file).encode("utf-8", "surrogatepass")).hexdigest()
    return directory / f"{name}.pickle"


@lru_cache(maxsize=1)
def _salt() -> bytes:
    """What a parse depends on besides the text: the grammar, the rules' methods and how they
    are called, the AST records (their source) and Python."""
    here = Path(__file__).parent
    h = hashlib.sha256()
    for part in (resources.files("archc.grammar").joinpath("arch.lark").read_bytes(),
                 *[(here / name).read_bytes() for name in ("parse.py", "reduce.py", "ast.py", "record.py")],
                 sys.version.encode()):
        h.update(hashlib.sha256(part).digest())
    return h.digest()


def _store(entry: Path, value) -> None:
    try:
        fd, temporary = tempfile.mkstemp(dir=entry.parent, suffix=".tmp")
    except OSError:
        return
    try:
        with os.fdopen(fd, "wb") as f:
            pickle.dump(value, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(temporary, entry)  # whole or not at all, when two checks write at once
    except (OSError, pickle.PicklingError, RecursionError):
        with contextlib.suppress(OSError):
            os.unlink(temporary)
