"""Table headings and the roles they give their columns (docs/language.md, "Headings and column roles").

    >>> normalize("#3×3 reduce"), role_of("#Layers"), role_of("d [repeat]"), role_of("Layers [label]")
    ('3x3 reduce', 'repeat', 'repeat', 'label')

A heading is a label taken as written; to match one, it is normalised (lower case, × as x, ² dropped,
spaces collapsed, a leading # dropped). A heading may end with its role in brackets, whatever the
heading says: `d [repeat]` (RegNet's depth column), `Layers [label]` (DenseNet's, which is no repeat
count), `n [param]` (a parameter named n). The printer (`archc fmt`) reads roles too: it keeps label
and operator cells as written.
"""

from __future__ import annotations

import re
from functools import lru_cache

ROLES = {
    "operator": "op", "op": "op", "operator type": "op", "type": "op", "block": "op",
    "input": "input", "input size": "input", "in": "input",
    "output": "output", "output size": "output",
    "resolution": "resolution", "resolution hxw": "resolution", "input resolution": "resolution",
    "n": "repeat", "layers": "repeat", "repeat": "repeat", "repeats": "repeat", "x": "repeat",
    "params": "params", "parameters": "params",
    "ops": "ops", "macs": "ops", "mult-adds": "ops",
    "patch size/stride": "kernel", "patch size / stride": "kernel", "kernel": "kernel", "k/s": "kernel",
    "kernel/stride": "kernel", "patch size": "kernel",
    "stage": "label", "layer name": "label", "name": "label", "layer": "label", "": "label", "depth": "label",
}


# `[ROLE]` after a heading gives its role whatever the heading says: `d [repeat]` (RegNet's column),
# `Layers [label]` (DenseNet's, which is no repeat count), `n [param]` (a parameter named n).
ROLE_WORDS = {"operator": "op", "op": "op", "input": "input", "output": "output", "resolution": "resolution",
              "repeat": "repeat", "params": "params", "ops": "ops", "kernel": "kernel", "label": "label",
              "param": "param"}


@lru_cache(maxsize=4096)  # tables read every heading and alias again at each repeat of a row
def normalize(heading: str) -> str:
    text = heading.strip().lower().replace("×", "x").replace("²", "")
    text = re.sub(r"\s+", " ", text).lstrip("#").strip()
    return re.sub(r"\s*\[\s*\w+\s*\]$", "", text)


def as_written(heading: str) -> str:
    """The heading without its `#` and its `[role]`, its case kept: a column `K` binds a parameter `K`."""
    return re.sub(r"\s*\[\s*\w+\s*\]$", "", heading.strip()).lstrip("#").strip()


def said_role(heading: str) -> str | None:
    """The role a heading states in brackets, as written."""
    said = re.search(r"\[\s*(\w+)\s*\]\s*$", heading)
    return said.group(1) if said else None


def role_of(heading: str) -> str:
    """The column's role: the one it states, else its heading's ("param" for any other heading)."""
    said = said_role(heading)
    if said is not None and said.lower() in ROLE_WORDS:
        return ROLE_WORDS[said.lower()]
    return ROLES.get(normalize(heading), "param")
