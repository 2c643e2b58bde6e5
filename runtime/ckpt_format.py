"""How an archc checkpoint file is recognised, without reading it whole and without torch or PIL:
`archc check` asks, to say that a `.pt` given to it is a checkpoint rather than showing its bytes.

    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "x.arch"
    >>> _ = path.write_text("network x()\\n")
    >>> sniff(path) is None   # text: for the compiler
    True
"""

from __future__ import annotations

from pathlib import Path

FORMAT, VERSION = "archc-checkpoint", 1
ZIP_MAGIC = b"PK\x03\x04"  # torch.save's format since PyTorch 1.6 is a zip archive
SNIFFED = 4096  # bytes read: a checkpoint's payload starts with its "format" key, in the zip's first entry


def sniff(path: str | Path) -> str | None:
    """What a file that is not .arch text is, in words ("an archc checkpoint", ...), or None."""
    from .files import open_regular

    try:
        with open_regular(path) as handle:
            head = handle.read(SNIFFED)
    except OSError:
        return None
    if head.startswith(ZIP_MAGIC):
        return "an archc checkpoint" if FORMAT.encode() in head else "a zip archive (as torch.save writes)"
    if head[:1] == b"\x80":  # a pickle's PROTO opcode: torch's legacy format
        return "a pickle (as old torch.save wrote)"
    return None
