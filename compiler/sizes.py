"""Sizes given on the command line, read within bounds: `--memory 6GiB`, `--input 3x224x224`, `--batch 32`.

A value out of range is a UsageError that names the range, never Python's
OverflowError (a 400-digit `--memory` made a float infinity) or its limit on
converting long digit strings to int.

    >>> parse_memory("6GiB"), parse_memory("6GB"), parse_memory("1.5 MiB")
    (6442450944, 6000000000, 1572864)
    >>> parse_input("3x224x224")
    (3, 224, 224)
"""

from __future__ import annotations

import re
from decimal import Decimal

MAX_MEMORY = 1 << 60  # bytes (1 EiB): more than any machine holds, far below where arithmetic gets slow
MAX_SIDE = 1 << 16  # a side of the input, as the `input` statement allows
MAX_BATCH = 1 << 30  # 1,073,741,824 samples


def _usage(message: str) -> Exception:
    from .pipeline import UsageError  # imported here: pipeline imports the elaborator, which a doctest need not

    return UsageError(message)


def parse_memory(text: str) -> int:
    """`6GiB`, `6G` (binary, as GPU memory is quoted), `6GB` (decimal), `512MiB`, `4096B` -> bytes, from 1 byte
    to 2⁶⁰. A bare number is refused: `--memory 6` meant 6 GiB, not 6 bytes."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(i?)(B?)\s*", text, flags=re.IGNORECASE)
    if not match or (match.group(3) and not match.group(2)):
        raise _usage(f"cannot read memory size {_shown(text)}: write it like 6GiB, 6GB or 512MiB")
    if not match.group(2) and not match.group(4):
        raise _usage(f"memory size {_shown(text)} has no unit: write 6GiB (6·2³⁰ bytes), 6GB (6·10⁹), 6144MiB, "
                     "or B for bytes")
    value, unit, binary, byte = Decimal(match.group(1)), match.group(2).upper(), match.group(3), match.group(4)
    power = "KMGT".index(unit) + 1 if unit else 0
    base = 1024 if binary or (unit and not byte) else 1000
    total = value * base**power  # exact: Decimal keeps every digit given
    if not 1 <= total <= MAX_MEMORY:
        raise _usage(f"memory size {_shown(text)} is out of range (1 byte to 2⁶⁰ bytes, 1 EiB)")
    return int(total)


def parse_input(text: str) -> tuple[int, int, int]:
    """`3x224x224` (or with `×` or `,`) -> (C, H, W), each side 1 to 65,536."""
    match = re.fullmatch(r"\s*(\d+)\s*[x×,]\s*(\d+)\s*[x×,]\s*(\d+)\s*", text)
    if not match:
        raise _usage(f"cannot read input size {_shown(text)}: write it as CxHxW, like 3x224x224")
    if any(len(g.lstrip("0")) > len(str(MAX_SIDE)) for g in match.groups()):
        raise _usage(f"input size {_shown(text)} is out of range (1 to {MAX_SIDE} per side)")
    shape = tuple(int(g) for g in match.groups())
    if min(shape) < 1 or max(shape) > MAX_SIDE:
        raise _usage(f"input size {_shown(text)} is out of range (1 to {MAX_SIDE} per side)")
    if looks_channels_last(shape):
        c, h, w = shape
        raise _usage(f"input size {_shown(text)} reads as {c} channels of {h}×{w}: sizes here are C×H×W, "
                     f"so an image of {c}×{h} with {w} channels is {w}x{c}x{h}")
    return shape  # type: ignore[return-value]


def looks_channels_last(shape: tuple[int, ...]) -> bool:
    """224×224×3 written for 3×224×224: a square H×W first and an image's channel count (1, 3, 4) last.
    A C×H×W input of more than 4 channels over a square side of 1 to 4 is not one anybody checks."""
    return len(shape) == 3 and shape[0] == shape[1] > 4 and shape[2] in (1, 3, 4)


def parse_batch(text: str) -> int:
    """`--batch N`: a whole number from 1 to 2³⁰. Raises ValueError (argparse's type= protocol: exit 2)."""
    digits = text.strip()
    if not digits.isdigit() or not digits.isascii():
        raise ValueError(f"the batch must be a whole number, got {_shown(text)}")
    if len(digits.lstrip("0")) > len(str(MAX_BATCH)) or not 1 <= int(digits) <= MAX_BATCH:
        raise ValueError(f"the batch must be from 1 to {MAX_BATCH:,}, got {_shown(text)}")
    return int(digits)


def _shown(text: str) -> str:
    """The value as the user gave it, quoted; a very long one cut."""
    return repr(text if len(text) <= 40 else f"{text[:20]}…{text[-8:]}")
