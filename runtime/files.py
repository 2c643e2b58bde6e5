"""The one way archc lists a folder tree of images: `archc data split`, `archc data resize`,
training's folder reading (runtime/data.py), `archc eval` and `archc predict DIR` all walk it here,
so they agree on which files a data set holds.

The rule, and why:
- regular files are listed, and symbolic links to regular files (`archc data split --link` makes them);
- links to folders are not followed: a link to the tree itself would repeat every image (a
  self-link once copied 42 images out of a 2-image tree), a link to another class would put one
  image in two classes, and a loop of links never ends; without them no walk can loop;
- FIFOs, sockets and devices are not listed (opening a FIFO blocks forever), nor broken links;
- names starting with "." are left out, files and folders (`.ipynb_checkpoints/`, `.DS_Store`).

Everything left out but a hidden name comes back in `skipped` with the reason, so the tools can
count it.

    >>> import pathlib, tempfile
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> (root / "cat").mkdir(); (root / "cat" / "1.jpg").write_bytes(b"")
    0
    >>> (root / "cat" / "again").symlink_to(root)
    >>> listing = list_files(root)
    >>> [p.relative_to(root).as_posix() for p in listing.files], [why for _, why in listing.skipped]
    (['cat/1.jpg'], ['a link to a folder: not followed'])
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

# What torchvision's ImageFolder reads (runtime/data.py and the data tools use this one tuple)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")

LINKED_FOLDER = "a link to a folder: not followed"


def is_image_name(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


@dataclass
class Listing:
    files: list[Path] = field(default_factory=list)  # sorted by their parts below the root
    skipped: list[tuple[Path, str]] = field(default_factory=list)  # (entry, why it is not listed)


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return "not a regular file"


def classify(entry: os.DirEntry) -> str:
    """"file", "folder" (a real one, to descend into) or why the entry is neither."""
    try:
        if entry.is_symlink():
            try:
                mode = os.stat(entry.path).st_mode  # the link's target
            except OSError as error:
                return "a loop of links" if error.errno == errno.ELOOP else "a broken link"
            if stat.S_ISDIR(mode):
                return LINKED_FOLDER
            return "file" if stat.S_ISREG(mode) else f"a link to {_kind(mode)}: not a regular file"
        mode = entry.stat(follow_symlinks=False).st_mode
    except OSError as error:
        return f"cannot be read: {error.strerror or error}"
    if stat.S_ISDIR(mode):
        return "folder"
    return "file" if stat.S_ISREG(mode) else f"{_kind(mode)}: not a regular file"


def _entries(folder: Path, skipped: list[tuple[Path, str]]) -> list[os.DirEntry]:
    try:
        with os.scandir(folder) as entries:
            return [e for e in entries if not e.name.startswith(".")]
    except OSError as error:
        skipped.append((folder, f"cannot be listed: {error.strerror or error}"))
        return []


def subfolders(folder: str | Path) -> tuple[list[Path], list[tuple[Path, str]]]:
    """(the real sub-folders of `folder`, sorted by name; the links to folders among its entries, skipped).

    These are the class folders of a data set; a linked one is reported, not followed.
    """
    skipped: list[tuple[Path, str]] = []
    found = []
    for entry in _entries(Path(folder), skipped):
        kind = classify(entry)
        if kind == "folder":
            found.append(Path(entry.path))
        elif kind == LINKED_FOLDER:
            skipped.append((Path(entry.path), kind))
    return sorted(found, key=lambda p: p.name), skipped


def list_files(folder: str | Path) -> Listing:
    """Every regular file below `folder` (see the module's rule), sorted by path parts, and what was skipped."""
    root = Path(folder)
    listing = Listing()
    pending = [root]
    while pending:  # iterative: depth costs no recursion
        current = pending.pop()
        for entry in _entries(current, listing.skipped):
            kind = classify(entry)
            if kind == "folder":
                pending.append(Path(entry.path))
            elif kind == "file":
                listing.files.append(Path(entry.path))
            else:
                listing.skipped.append((Path(entry.path), kind))
    listing.files.sort(key=lambda p: p.relative_to(root).parts)
    listing.skipped.sort(key=lambda item: str(item[0]))
    return listing


class NotRegularFile(OSError):
    """A path that is a FIFO, a device, a socket or a folder where a file is read."""


def open_regular(path: str | Path) -> BinaryIO:
    """The file opened for reading, without blocking on a FIFO; NotRegularFile when it is not a regular file.

    Every file archc reads by a user's path (images, checkpoints) is opened here: opening a FIFO
    for reading waits for a writer, forever.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    handle = os.open(path, flags)
    try:
        mode = os.fstat(handle).st_mode
        if not stat.S_ISREG(mode):
            what = "a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else "a device or socket"
            raise NotRegularFile(f"{path} is {what}, not a file")
    except BaseException:
        os.close(handle)
        raise
    return os.fdopen(handle, "rb")
