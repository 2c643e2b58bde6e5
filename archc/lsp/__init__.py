"""`archc lsp`: a language server for .arch files (diagnostics, hover, inlay hints, completion,
definitions, formatting, quick fixes), over stdio. It needs pygls: `pip install 'archc[lsp]'`;
`archc check` never imports it.
"""

from __future__ import annotations

INSTALL = "pip install 'archc[lsp]'"


def available() -> bool:
    try:
        import lsprotocol  # noqa: F401
        import pygls  # noqa: F401
    except ImportError:
        return False
    return True


def serve() -> int:
    from .server import serve as run

    return run()
