"""Load a .arch file and the files it `use`s into one Program: its blocks,
constants, network header, variants and sections, with every file's source
kept for rendering diagnostics.

`use "blocks/mobile.arch"` looks beside the importing file first, then in the
block library shipped with archc (architectures/).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Mapping

from ..dsl import ast
from ..dsl.cache import cached_parse
from ..dsl.diagnostics import ArchError, Diagnostic
from ..dsl.record import Record
from ..dsl.source import read_source

MAX_IMPORTS = 64


class Program(Record, frozen=False):
    file: str
    sources: dict[str, str] = {}  # file -> text
    blocks: dict[str, tuple[ast.BlockDef, str]] = {}
    lets: dict[str, tuple[ast.Let, str]] = {}
    network: ast.Network | None = None
    input: ast.Input | None = None
    variants: dict[str, ast.Variant] = {}
    sections: list[ast.Section] = []
    modules: dict[str, ast.Module] = {}
    diagnostics: list[Diagnostic] = []
    overlay: dict[str, str] = {}  # resolved path -> unsaved text (see load)


def library_dir() -> Path:
    return Path(str(resources.files("archc.architectures")))


def load(path: str | Path, text: str | None = None, overlay: Mapping[str, str] | None = None) -> Program:
    """Parse `path` (or `text`, named `path`) and everything it uses.

    `overlay` maps resolved paths of used files to texts read in place of the disk's (an editor's
    unsaved buffers, for `archc lsp`). Raises ArchError on a syntax error (the first one stops the file) or an
    unreadable file; name clashes are collected in `program.diagnostics`.
    """
    path = str(path)
    program = Program(file=path, overlay=dict(overlay or {}))
    _load_file(program, path, text, stack=[], use_span=None)
    return program


def _read(path: str, use: tuple[str, ast.Span] | None) -> str:
    try:
        return read_source(path)  # at most the size limit and one character more: the parser reports the rest
    except OSError as error:
        span = use[1] if use else ast.NO_SPAN
        raise ArchError([Diagnostic(code="E206", file=use[0] if use else path, span=span,
                                    message=f"cannot read {path}: {error.strerror or error}")]) from None
    except UnicodeDecodeError as error:
        raise ArchError([Diagnostic(code="E100", file=path, span=ast.Span(line=1, col=1, end_line=1, end_col=2),
                                    message=f"not UTF-8 text (byte {error.start})")]) from None


def _load_file(program: Program, path: str, text: str | None, stack: list[str], use_span) -> None:
    if text is None:
        text = _read(path, use_span)
    program.sources[path] = text
    module = cached_parse(text, file=path)
    program.modules[path] = module
    main = not stack
    for item in module.items:
        if item.kind == "use":
            _use(program, path, item, stack)
        elif item.kind == "block":
            _define(program, program.blocks, item.name, item, path, "block")
        elif item.kind == "let":
            _define(program, program.lets, item.name, item, path, "constant")
        elif not main:
            program.diagnostics.append(Diagnostic(
                code="E207", file=path, span=item.span,
                message=f"a used file may define blocks and constants only, not a {item.kind}"))
        elif item.kind == "network":
            if program.network is not None:
                program.diagnostics.append(Diagnostic(code="E204", file=path, span=item.span,
                                                      message="a second network in one file"))
            else:
                program.network = item
        elif item.kind == "input":
            program.input = item
        elif item.kind == "variant":
            _define(program, program.variants, item.name, item, path, "variant", keep_file=False)
        elif item.kind == "section":
            if any(s.name == item.name for s in program.sections):
                program.diagnostics.append(Diagnostic(code="E204", file=path, span=item.span,
                                                      message=f"a second section named '{item.name}'"))
            program.sections.append(item)


def _define(program: Program, table: dict, name: str, item, path: str, what: str, keep_file: bool = True) -> None:
    if name in table:
        first = table[name][0] if keep_file else table[name]
        first_file = table[name][1] if keep_file else path
        program.diagnostics.append(Diagnostic(
            code="E204", file=path, span=item.span, message=f"{what} '{name}' is defined twice",
            hint=f"the first definition is at {first_file}:{first.span.line}"))
        return
    table[name] = (item, path) if keep_file else item


def used_file(importer: str, path: str) -> Path:
    """Where `use "PATH"` in `importer` finds its file: beside the importer, else in the block library."""
    here = Path(importer).parent / path
    return here if _is_file(here) else library_dir() / path


def _use(program: Program, path: str, item: ast.Use, stack: list[str]) -> None:
    here = Path(path).parent / item.path
    target = used_file(path, item.path)
    if not _is_file(target):
        raise ArchError([Diagnostic(code="E206", file=path, span=item.span, message=f"cannot find '{item.path}'",
                                    hint=f"looked in {here.parent} and in the block library {library_dir()}")])
    key = str(target.resolve())
    if key in stack or str(Path(path).resolve()) == key:
        chain = " -> ".join(Path(p).name for p in stack + [str(Path(path).resolve()), key])
        program.diagnostics.append(Diagnostic(code="E207", file=path, span=item.span,
                                              message=f"'{item.path}' leads back to itself: {chain}"))
        return
    if key in {str(Path(p).resolve()) for p in program.modules}:
        return  # already loaded through another `use`
    if len(program.modules) >= MAX_IMPORTS:
        raise ArchError([Diagnostic(code="E400", file=path, span=item.span, message="too many used files")])
    _load_file(program, str(target), program.overlay.get(key), stack + [str(Path(path).resolve())], (path, item.span))


def _is_file(path: Path) -> bool:
    """Path.is_file, but False rather than OSError for a name the system refuses (a component over
    255 bytes: ENAMETOOLONG) and for a path that holds a NUL."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False
