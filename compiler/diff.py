"""`archc diff`: what differs between two networks, row by row, and which tensors of a checkpoint load into a
network.

Two networks (`network_diff`): the table rows of each section are paired in order (the k-th row of a
section with the k-th of the same section in the other file); for each pair, and for a row only one side
has, the change in parameters and MACs, and the output shape and receptive field where they changed.
Nothing is run: both sides come from `archc check`'s reports.

A checkpoint (`weights_diff`): its tensors and the network's, in registration order, aligned by shape
(difflib's longest matching runs of modules, so that one stage grown by a block shifts nothing after it): the
tensors that correspond (same place in a matching run of modules, same shape), and for the others why not — the head that
changed with `num_classes`, tensors only the network has (a stage that grew), tensors only the checkpoint
has, shapes that differ (a width that changed).

    >>> ours = {"features.0.weight": (8, 3, 3, 3), "features.1.weight": (8, 8, 3, 3), "fc.weight": (5, 8)}
    >>> theirs = {"conv1.weight": (8, 3, 3, 3), "fc.weight": (1000, 8)}
    >>> [(e.kind, e.key) for e in weights_diff(ours, theirs, head="fc").entries]
    [('loads', 'features.0.weight'), ('only here', 'features.1.weight'), ('head', 'fc.weight')]

(`archc port` and `archc train --init` load by position alone, compiler/weights.py: where the counts
differ they refuse, and this says where the difference lies.)
"""

from __future__ import annotations

from difflib import SequenceMatcher

from pydantic import BaseModel, ConfigDict

from ..dsl.record import Record
from ..dsl.source import split_lines


class RowChange(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)
    section: str
    row: int  # its position among the section's rows
    a: str | None  # the row's text on each side (None: the side has no such row)
    b: str | None
    params: int  # b - a
    macs: int
    shape: tuple[list[int] | None, list[int] | None] | None  # (a, b) where the output shape changed
    rf: tuple[list[int] | None, list[int] | None] | None  # (a's size, b's size) where the field changed


class NetworkDiff(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)
    a: str
    b: str
    rows: list[RowChange]  # the rows that changed
    params: tuple[int, int]
    macs: tuple[int, int]


def _rows(report) -> dict[tuple[str, int], dict]:
    """(section, k) -> the k-th row of the section: its text, output shape, params, MACs, field."""
    layers_by_row: dict[tuple[str, int], list] = {}
    for layer in report.layers:
        if layer.row_line is not None:
            layers_by_row.setdefault((layer.row_file, layer.row_line), []).append(layer)
    found: dict[tuple[str, int], dict] = {}
    counts: dict[str, int] = {}
    for row in report.rows:
        section = layers_by_row[row.file, row.line][0].name.split(".")[0]
        k = counts.get(section, 0)
        counts[section] = k + 1
        source = split_lines(report.sources.get(row.file, ""))
        text = " ".join(source[row.line - 1].split()) if 0 < row.line <= len(source) else f"line {row.line}"
        found[section, k] = {"text": text, "shape": row.output_shape, "params": row.params, "macs": row.macs,
                             "rf": row.rf.size if row.rf is not None and len(row.output_shape) == 3 else None}
    return found


def network_diff(a, b, a_name: str, b_name: str) -> NetworkDiff:
    """The rows that differ between two checked networks (their Reports)."""
    rows_a, rows_b = _rows(a), _rows(b)
    changes = []
    for key in sorted(set(rows_a) | set(rows_b), key=lambda k: (_first(k, rows_a, rows_b), k[1])):
        ra, rb = rows_a.get(key), rows_b.get(key)
        pa, pb = (ra or {}).get("params", 0), (rb or {}).get("params", 0)
        ma, mb = (ra or {}).get("macs", 0), (rb or {}).get("macs", 0)
        sa, sb = (ra or {}).get("shape"), (rb or {}).get("shape")
        fa, fb = (ra or {}).get("rf"), (rb or {}).get("rf")
        text_a, text_b = (ra or {}).get("text"), (rb or {}).get("text")
        if (pa, ma, sa, fa, text_a) == (pb, mb, sb, fb, text_b):
            continue
        changes.append(RowChange(section=key[0], row=key[1], a=text_a, b=text_b, params=pb - pa, macs=mb - ma,
                                 shape=(sa, sb) if sa != sb else None, rf=(fa, fb) if fa != fb else None))
    return NetworkDiff(a=a_name, b=b_name, rows=changes, params=(a.params, b.params), macs=(a.macs, b.macs))


def _first(key, rows_a, rows_b) -> int:
    # sections in the order the first network has them, then the second's own
    order = list(dict.fromkeys([k[0] for k in rows_a] + [k[0] for k in rows_b]))
    return order.index(key[0])


def render_stat(diff: NetworkDiff, width: int = 40) -> str:
    """Like `git diff --stat`: a line per changed row with a bar of its parameter change, then the totals."""
    if not diff.rows:
        return f"{diff.a} and {diff.b}: no row differs"
    largest = max(abs(r.params) for r in diff.rows) or 1
    labels = [f"{r.section} row {r.row}" for r in diff.rows]
    pad = max(len(label) for label in labels)
    lines = [f"--- {diff.a}", f"+++ {diff.b}"]
    for label, r in zip(labels, diff.rows):
        bar = ("+" if r.params > 0 else "-") * max(1 if r.params else 0, round(abs(r.params) / largest * width))
        notes = []
        if r.a != r.b:
            notes.append(f"{r.a or '(none)'}  →  {r.b or '(none)'}")
        if r.shape:
            notes.append("shape " + " → ".join(_shape(s) for s in r.shape))
        if r.rf:
            notes.append("RF " + " → ".join(_shape(s) for s in r.rf))
        lines.append(f" {label:<{pad}} | {r.params:+,} params {r.macs:+,} MACs {bar}")
        lines += [f" {'':<{pad}} |   {note}" for note in notes]
    (pa, pb), (ma, mb) = diff.params, diff.macs
    lines.append(f" {len(diff.rows)} row{'s' if len(diff.rows) != 1 else ''} changed, params {pa:,} → {pb:,} "
                 f"({pb - pa:+,}), MACs {ma:,} → {mb:,} ({mb - ma:+,})")
    return "\n".join(lines)


def _shape(shape) -> str:
    if shape is None:
        return "(none)"
    if len(shape) == 3:
        return f"{shape[1]}²×{shape[0]}" if shape[1] == shape[2] else f"{shape[1]}×{shape[2]}×{shape[0]}"
    return "×".join(str(d) for d in shape)


class WeightEntry(Record):
    kind: str  # "loads", "head", "shape", "only here", "only there"
    key: str | None  # the network's tensor
    source_key: str | None  # the checkpoint's
    shape: tuple[int, ...] | None
    source_shape: tuple[int, ...] | None

    def why(self) -> str:
        return {"loads": "loads",
                "head": f"the head: {self.source_shape} in the checkpoint, {self.shape} here (num_classes)",
                "shape": f"the shape differs: {self.source_shape} in the checkpoint, {self.shape} here",
                "only here": "only the network has it (a stage that grew, a block added): keeps its init",
                "only there": "only the checkpoint has it (a stage that shrank, a block removed)"}[self.kind]


class WeightsDiff(Record, frozen=False):
    entries: list[WeightEntry] = []

    def count(self, kind: str) -> int:
        return sum(e.kind == kind for e in self.entries)


def _modules(state: dict[str, tuple]) -> list[tuple[str, list[tuple[str, tuple]]]]:
    """The tensors grouped by the module that holds them (the key less its last part), in order."""
    groups: dict[str, list] = {}
    for key, shape in state.items():
        groups.setdefault(key.rpartition(".")[0], []).append((key, shape))
    return list(groups.items())


def weights_diff(ours: dict[str, tuple], theirs: dict[str, tuple], head: str | None = None) -> WeightsDiff:
    """Align the network's tensors (key -> shape, registration order) with the checkpoint's, module by
    module (a conv's weight, a batch norm's five tensors: runs of them are what a grown stage inserts);
    `head`: the module path of the network's classifier, whose misfits are the head's."""
    a, b = _modules(ours), _modules(theirs)
    sa, sb = [tuple(s for _, s in g) for _, g in a], [tuple(s for _, s in g) for _, g in b]
    # as diff does: the common head and tail by position first, then the longest runs in what is left
    # between them (else a batch norm of the stem could match one deep inside a grown stage)
    head_n = next((n for n, (x, y) in enumerate(zip(sa, sb)) if x != y), min(len(sa), len(sb)))
    tail_n = next((n for n, (x, y) in enumerate(zip(sa[::-1][:len(sa) - head_n], sb[::-1][:len(sb) - head_n]))
                   if x != y), min(len(sa), len(sb)) - head_n)
    middle = SequenceMatcher(a=sa[head_n:len(sa) - tail_n], b=sb[head_n:len(sb) - tail_n], autojunk=False)
    opcodes = [("equal", 0, head_n, 0, head_n)] if head_n else []
    opcodes += [(tag, i1 + head_n, i2 + head_n, j1 + head_n, j2 + head_n) for tag, i1, i2, j1, j2 in
                middle.get_opcodes()]
    if tail_n:
        opcodes.append(("equal", len(sa) - tail_n, len(sa), len(sb) - tail_n, len(sb)))
    result = WeightsDiff()
    for tag, i1, i2, j1, j2 in opcodes:
        if tag == "equal":
            for i, j in zip(range(i1, i2), range(j1, j2)):
                result.entries += [WeightEntry("loads", k, sk, s, ss) for (k, s), (sk, ss) in zip(a[i][1], b[j][1])]
            continue
        # in what differs, a module pairs with one whose tensors have the same ranks and the same sizes past
        # the first (a classifier with another number of classes; a conv with more filters); the rest is
        # one side's only
        kind_of = lambda group: tuple((len(shape), shape[1:]) for _, shape in group[1])  # noqa: E731
        inner = SequenceMatcher(a=[kind_of(g) for g in a[i1:i2]], b=[kind_of(g) for g in b[j1:j2]], autojunk=False)
        for itag, k1, k2, l1, l2 in inner.get_opcodes():
            if itag == "equal":
                for (module, mine), (_, their) in zip(a[i1 + k1:i1 + k2], b[j1 + l1:j1 + l2]):
                    kind = "head" if head and (module == head or module.startswith(head + ".")) else "shape"
                    result.entries += [WeightEntry("loads" if s == ss else kind, k, sk, s, ss)
                                       for (k, s), (sk, ss) in zip(mine, their)]
                continue
            result.entries += [WeightEntry("only here", k, None, s, None) for g in a[i1 + k1:i1 + k2] for k, s in g[1]]
            result.entries += [WeightEntry("only there", None, k, None, s) for g in b[j1 + l1:j1 + l2]
                               for k, s in g[1]]
    return result
