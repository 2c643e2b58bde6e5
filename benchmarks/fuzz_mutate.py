"""The mutants of benchmarks/fuzz.py: seeded edits of the zoo's own files.

Mutant `i` of seed `s` depends on (s, i) alone, so any failure is reproduced
by its number: `python benchmarks/fuzz.py --seed s --show i`. Each mutant
takes one zoo file (a network of architectures/, or a block library of
architectures/blocks/, which is checked through a network that uses it) and
applies one to four edits: text inserted, deleted, replaced or duplicated;
a line doubled, dropped or swapped; a number or a name swapped for a boundary
value or a hostile one; an indentation changed; and edits that keep the file
valid so that they reach the compiler: a block, constant or parameter renamed
everywhere to a name Python holds (`None`, `super`), a number wrapped in an
extreme `round()`, or replaced by the end of a chain of lets. This is the fuzzer's own
text surgery, not a reading of the language: regular expressions are fine here.

    >>> name, text = mutant(7, 0)
    >>> (name, text) == mutant(7, 0) and name in SOURCES
    True
"""

from __future__ import annotations

import random
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ZOO = ROOT / "architectures"
SOURCES = {str(p.relative_to(ZOO)): p.read_text(encoding="utf-8") for p in sorted(ZOO.rglob("*.arch"))}
LIBRARIES = sorted(name for name in SOURCES if name.startswith("blocks/"))
NETWORKS = sorted(name for name in SOURCES if not name.startswith("blocks/"))

# A network that uses each library, to check a mutated library through.
HOSTS = {lib: next(net for net in NETWORKS if f'use "{lib}"' in SOURCES[net]) for lib in LIBRARIES}

PIECES = [
    # the language's own tokens, misplaced
    "|", " | ", "-", "✓", "x", "×", "²", ",", ":", "(", ")", "=", "#", "# c", "\n", "\n    ", "    ", "0", "7",
    "-1", "0.5", "in.c", "in.h", "relu", "conv", "bneck", "residual:", "concat:", "branch:", "if ", "else:",
    'use "x.arch"', "let ", "block ", "network ", "input ", "aux a = ", "output o", "none", "true", "3x3", "k5x5",
    "7×7/2", "make_divisible(", "round(", "min(", "//", "/", "*", "%", '"', "where ", "shortcut:", "multiply:",
    # characters that split lines for some readers and not others, or must not reach a terminal
    "\t", "\r", "\r\n", "\f", "\v", "\u2028", "\u2029", "\x85", "\x00", "\x1b[2J", "\x07", "\u202e", "\ufffe",
    "\uffff", "é", "'", "$", "\\",
    # values at the bounds
    "1000000000", "9" * 4301, "1e400", "1e-400", "0.0036363636363636364", str(2**62), str(2**62 + 1),
    str(2**64 + 1), "1048577", "65537",
    # names a generated Python file must not take
    "None", "True", "False", "super", "self", "class", "lambda", "nn", "torch", "__init__",
]
NUMBERS = ["0", "1", "-1", "2", "7", "1000000000", str(2**62), str(2**62 + 1), str(2**64 + 1), "9" * 4301, "1e400",
           "1e-400", "0.0036363636363636364", "1048577", "65537", "0.0", "1e308"]
NAMES = ["None", "True", "False", "super", "self", "class", "in", "x", "input", "output", "relu", "conv", "forward",
         "training", "eval", "to", "c", "nn", "torch", "build", "a" * 300]

_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")
_NAME = re.compile(r"\b[A-Za-z_]\w*\b")


def mutant(seed: int, index: int) -> tuple[str, str]:
    """(zoo file name, mutated text) of mutant `index` of `seed`."""
    rng = random.Random(f"archc-fuzz/{seed}/{index}")
    name = rng.choice(sorted(SOURCES))
    text = SOURCES[name]
    for _ in range(rng.randint(1, 4)):
        text = rng.choice(EDITS)(rng, text)
    return name, text


def _span(rng: random.Random, text: str, most: int) -> tuple[int, int]:
    at = rng.randint(0, len(text))
    return at, min(len(text), at + rng.randint(1, most))


def _insert(rng, text):
    at = rng.randint(0, len(text))
    return text[:at] + rng.choice(PIECES) + text[at:]


def _delete(rng, text):
    a, b = _span(rng, text, 12)
    return text[:a] + text[b:]


def _replace(rng, text):
    a, b = _span(rng, text, 6)
    return text[:a] + rng.choice(PIECES) + text[b:]


def _copy(rng, text):
    a, b = _span(rng, text, 40)
    at = rng.randint(0, len(text))
    return text[:at] + text[a:b] + text[at:]


def _lines(rng, text):
    lines = text.split("\n")
    i = rng.randrange(len(lines))
    action = rng.choice(["double", "drop", "swap"])
    if action == "double":
        lines.insert(i, lines[i])
    elif action == "drop":
        del lines[i]
    elif i + 1 < len(lines):
        lines[i], lines[i + 1] = lines[i + 1], lines[i]
    return "\n".join(lines)


def _token(pattern: re.Pattern, values: list[str]):
    def edit(rng, text):
        found = list(pattern.finditer(text))
        if not found:
            return text
        m = rng.choice(found)
        return text[:m.start()] + rng.choice(values) + text[m.end():]

    return edit


def _indent(rng, text):
    lines = text.split("\n")
    i = rng.randrange(len(lines))
    body = lines[i].lstrip(" \t")
    lines[i] = rng.choice(["", " ", "  ", "\t", "    \t", "\t    ", lines[i][:len(lines[i]) - len(body)] * 2]) + body
    return "\n".join(lines)


_DEFINED = re.compile(r"\b(?:block|let)\s+([A-Za-z_]\w*)|[(,]\s*([A-Za-z_]\w*)(?=\s*(?:\"[^\"]*\"\s*)*[=,)])")
HOSTILE_NAMES = ["None", "True", "False", "super", "self", "class", "def", "lambda", "nn", "torch", "forward",
                 "__init__", "build", "print", "in_c", "c"]


def _rename(rng, text):
    """A block, constant or parameter renamed everywhere to a name Python or the generated file holds:
    the file stays valid, so the rename reaches the emitters."""
    found = sorted({m.group(1) or m.group(2) for m in _DEFINED.finditer(text)} - {"in"})
    if not found:
        return text
    old = rng.choice(found)
    return re.sub(rf"(?<![\w.]){re.escape(old)}\b", rng.choice(HOSTILE_NAMES), text)


def _round(rng, text):
    """A number made a call of round() with an extreme digit count (the evaluator's bounds)."""
    found = list(_NUMBER.finditer(text))
    if not found:
        return text
    m = rng.choice(found)
    # 10**100000000 takes minutes: a hang each time, so rarely (each costs the fuzz 5 s of CPU)
    digits = "100000000" if rng.random() < 0.03 else rng.choice(["-400", "-400", "-20", "400", "7", "1000000"])
    return text[:m.start()] + f"round({m.group(0)}, {digits})" + text[m.end():]


def _lets(rng, text):
    """A number replaced by the last of a chain of lets, each defined by the one before."""
    found = list(_NUMBER.finditer(text))
    if not found:
        return text
    m, n = rng.choice(found), rng.choice([3, 40, 250])
    chain = "".join(f"let z{i} = {'z' + str(i - 1) if i else m.group(0)} + 0\n" for i in range(n))
    return chain + text[:m.start()] + f"z{n - 1}" + text[m.end():]


EDITS = [_insert, _insert, _delete, _replace, _replace, _copy, _lines, _token(_NUMBER, NUMBERS),
         _token(_NUMBER, NUMBERS), _token(_NAME, NAMES), _indent, _rename, _rename, _round, _lets]
