"""The one way archc writes JSON, on stdout (`--json`) and in a run's files (summary.json, study.json).

JSON has no NaN or Infinity, and Python's json prints them anyway, as text no JSON reader accepts: a
diverged run's loss or a checkpoint of NaN weights would make `predict --json` unreadable. Every
non-finite float is written as the string "nan", "inf" or "-inf".

    >>> print(dumps({"loss": float("nan"), "top": [0.5, float("inf")]}, indent=None))
    {"loss": "nan", "top": [0.5, "inf"]}
"""

from __future__ import annotations

import json
import math


def strict(value):
    """`value` with every non-finite float replaced by its name, recursively through dicts, lists, tuples."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict(v) for v in value]
    return value


def dumps(value, indent: int | None = 2) -> str:
    return json.dumps(strict(value), indent=indent, allow_nan=False)
