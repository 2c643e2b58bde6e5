"""The one way archc opens an image file: a regular file only, decoded no larger than needed.

- A path is opened without blocking and must be a regular file (runtime/files.py's open_regular):
  a FIFO named `x.jpg` is an error, not a read that waits forever.
- `decode(path, mode, target=...)` decodes at reduced size when the caller needs only `target`
  pixels: JPEG through its DCT scaling (PIL's `draft`), then whole-factor box reduction (PIL's
  `reduce`), always leaving at least REDUCING_GAP × the target on each side, as PIL's own
  `thumbnail` does ("indistinguishable from fair resampling in most cases", PIL's docs). A
  12000×12000 photo for a 256-pixel view is reduced 23× right after decoding.
- PIL's DecompressionBombWarning (images over Image.MAX_IMAGE_PIXELS, 89 megapixels) is not
  printed as a raw Python warning: `decode` returns a note in words instead; images over twice
  that are refused by PIL, and here with the size and the limit.

Imports PIL only (the data tools run without torch).

    >>> import tempfile, pathlib
    >>> from PIL import Image
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "wide.png"
    >>> Image.new("RGB", (4000, 1000), "red").save(path)
    >>> decoded = decode(path, "RGB", target=lambda w, h: (w // 10, h // 10))
    >>> decoded.image.size, decoded.full_size
    ((800, 200), (4000, 1000))
"""

from __future__ import annotations

import struct
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from PIL import Image, UnidentifiedImageError

from .files import open_regular

REDUCING_GAP = 2.0  # PIL's thumbnail default: keep at least twice the target before the final resize
# modes PIL's reduce() refuses, and what they become first when no mode is asked for
UNREDUCIBLE = {"P": "RGBA", "1": "L", "I;16": "I", "I;16B": "I", "I;16L": "I"}


def _quiet_bomb_warning() -> None:
    """decode() says it in words (Decoded.note): PIL's own warning would print a raw Python warning line.
    Checked on every call (a `warnings.catch_warnings()` block drops it on leaving), and added only when
    missing: changing the filters makes every once-per-place warning of the process show again."""
    if ("ignore", None, Image.DecompressionBombWarning, None, 0) not in warnings.filters:
        warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


class ImageTooLarge(ValueError):
    """More pixels than PIL agrees to decode (twice Image.MAX_IMAGE_PIXELS)."""


# What decoding a file that is not a readable image raises: PIL's own error kinds (OSError covers
# UnidentifiedImageError and truncated data) and what its parsers leak from damaged headers
DECODE_ERRORS: tuple[type[BaseException], ...] = (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError,
                                                   struct.error, Image.DecompressionBombError)


@dataclass
class Decoded:
    image: Image.Image  # decoded, reduced where allowed, in the mode asked for
    format: str | None  # PIL's name of the file's format (JPEG, PNG, ...)
    full_size: tuple[int, int]  # (width, height) as stored
    orientation: int  # EXIF orientation, 1 = upright
    note: str = ""  # something the user should hear about (a very large image)


def _pixels_note(path, width: int, height: int) -> str:
    if width * height <= (Image.MAX_IMAGE_PIXELS or float("inf")):
        return ""
    return (f"{path} is {width:,}×{height:,} pixels ({width * height / 1e6:.3g} megapixels, over the "
            f"{Image.MAX_IMAGE_PIXELS / 1e6:.3g} at which PIL warns of a decompression bomb); it was decoded once "
            "and reduced at once to the size needed")


def reduction(size: tuple[int, int], target: tuple[int, int]) -> int:
    """The whole factor an image of `size` may be shrunk by and keep REDUCING_GAP × `target` on each side."""
    return max(1, int(min(size[0] / (REDUCING_GAP * max(1, target[0])), size[1] / (REDUCING_GAP * max(1, target[1])))))


def decode(path: str | Path, mode: str | None = None,
           target: Callable[[int, int], tuple[int, int]] | None = None) -> Decoded:
    """Decode the image file at `path`, converted to `mode` ("RGB", "L"; None keeps the file's).

    `target(width, height)` gives the (width, height) the caller will resize to; the image is then
    decoded at reduced size where that keeps REDUCING_GAP × the target. Raises OSError (no such
    file, files.py's NotRegularFile, PIL's UnidentifiedImageError), ImageTooLarge, or PIL's errors for a
    damaged file (runtime/data.py's _pil_errors lists them).
    """
    _quiet_bomb_warning()
    with open_regular(path) as handle:
        try:
            image = Image.open(handle)
        except UnidentifiedImageError:  # PIL's own message names the handle, not the file
            raise UnidentifiedImageError("not in an image format PIL reads") from None
        except Image.DecompressionBombError:
            raise ImageTooLarge(f"{path} has more pixels than PIL decodes ({2 * Image.MAX_IMAGE_PIXELS:,}): "
                                "not an image archc reads") from None
        # no `with image`: closing a PIL image frees its pixels; our handle is closed after load()
        full, fmt = image.size, image.format
        orientation = image.getexif().get(0x0112, 1)
        wanted = target(*full) if target else None
        if wanted and fmt in ("JPEG", "MPO"):
            image.draft(mode or image.mode, (int(wanted[0] * REDUCING_GAP), int(wanted[1] * REDUCING_GAP)))
        image.load()  # decodes: a truncated or corrupt file raises here
    factor = reduction(image.size, wanted) if wanted else 1
    if factor > 1 and image.mode in UNREDUCIBLE:
        image = image.convert(mode or UNREDUCIBLE[image.mode])
    if factor > 1:
        image = image.reduce(factor)
    if mode and image.mode != mode:
        image = image.convert(mode)
    return Decoded(image, fmt, full, orientation, _pixels_note(path, *full))


def short_side_to(side: int) -> Callable[[int, int], tuple[int, int]]:
    """target() for a resize of the short side to `side` (torchvision's Resize(int))."""
    def target(width: int, height: int) -> tuple[int, int]:
        scale = side / min(width, height)
        return max(1, round(width * scale)), max(1, round(height * scale))

    return target
