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
    return _finite(lambda v: json.dumps(v, indent=indent, allow_nan=False), value)


def dumps_rows(data: dict) -> str:
    """A dict as indented JSON, each row of a list of dicts on one line: `check --json`'s 864 layers of
    EfficientNet-B7 read as 864 lines, not 12,000, and print in a fifth of the time (json's C encoder
    does no indent).

    >>> print(dumps_rows({"network": "nin", "layers": [{"name": "conv", "params": 1}]}))
    {
      "network": "nin",
      "layers": [
        {"name": "conv", "params": 1}
      ]
    }
    """
    def field(key, value):
        if isinstance(value, list) and value and isinstance(value[0], dict):
            rows = ",\n".join(f"    {json.dumps(row, allow_nan=False)}" for row in value)
            return f"  {json.dumps(key)}: [\n{rows}\n  ]"
        return f"  {json.dumps(key)}: {json.dumps(value, allow_nan=False)}"

    return _finite(lambda d: "{\n" + ",\n".join(field(k, v) for k, v in d.items()) + "\n}", data)


def _finite(write, value) -> str:
    try:  # nearly always every float is finite, and the walk replacing the others costs as much as the writing
        return write(value)
    except ValueError:  # json's "Out of range float values are not JSON compliant"
        return write(strict(value))
