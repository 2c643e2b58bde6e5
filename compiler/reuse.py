"""Elaboration replayed where nothing it reads has changed since it last ran.

A keystroke in an editor changes one cell of a table; the language server then checks the whole
file again (archc/lsp/documents.py), and elaborating EfficientNet-B7 twice (at its defaults for the
size cells, then at B7) was two thirds of that check. Almost everything comes out as in the last
check, so two things are kept (`Memo`) and appended to the graph again, as the same objects, in the
order elaboration made them:

- a row of a section's table, when its cells, the table's header, the section's `where`, its input
  and its place (the layers and modules before it, `index` and `count`) are as they were;
- a block instance, when its template, arguments and input are: at the same path as the same
  objects, at another path renamed (`_relocated`: the blocks nested in the next repeat of a row,
  since EfficientNet's repeats differ in their stochastic depth only).

A replay stands only where elaboration cannot have come out differently. The key holds everything
the body reads: "the world" (every template, the file's constants and the network's parameter
values, which the constants may read: compared by value), the call (argument values with their
types, the input's shape, the call's span and row) and what elaboration is doing around it (an aux
head, nesting depth, whether cells are checked, the cells trusted as typos where a block holds a
table), and for a replay at the same path the path, owner, input tensor and the count of layers
before it (joins are named by it: `add~14`). A body that names network outputs or aux heads (which
only a section may) or hits a limit is never kept; one with diagnostics or resynced rows is kept for
its own path only (their texts are not renamed). The work counter is added on replay, and a replay
that would pass a limit is elaborated instead, so the limit errors at the same statement.

tests/test_reuse.py compares re-checks over random cell edits with fresh checks, Report and graph.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from itertools import islice
from typing import Any

from ..dsl.record import Record, replace
from .evaluate import Ref, ShapeValue
from .graph import Instance, Layer, Made, Tensor
from .lower import TAux, TConcat, TIf, TJoin, TLet, TMultiply, TOutput, TRepeat, TResidual, TTable, walk

MAX_ENTRIES = 20_000  # EfficientNet-B7 makes about 1,500 instances per elaboration, nested ones included
MAX_WORLDS = 4  # an open network's printed form and its variant, and a library or a second network


class Unkeyed(Exception):
    """A value with no exact frozen form: its instance is elaborated, not replayed."""


_FLOAT, _BOOL, _NONE, _LIST, _DICT = (object() for _ in range(5))  # tags no value of the language can be


_refs: dict[int, tuple[Ref, tuple]] = {}  # id -> (the Ref, kept alive so that its id stays its own; frozen)


def freeze(value: Any):
    """A hashable form that is equal only for values that elaborate the same: 1 == 1.0 == True in Python,
    not in a block, so booleans and floats are tagged (a float by its repr: -0.0, nan); ints and strings,
    which never equal each other, stand as they are."""
    kind = type(value)
    if kind is int or kind is str:
        return value
    if kind is float:
        return (_FLOAT, repr(value))
    if kind is bool:
        return (_BOOL, value)
    if value is None:
        return _NONE
    if kind is tuple:
        return tuple(v if type(v) is int else freeze(v) for v in value)
    if kind is Ref:  # the same op value (`norm = batchnorm(eps = 0.001)`) reaches every block: frozen once
        known = _refs.get(id(value))
        if known is None or known[0] is not value:
            if len(_refs) > 4096:
                _refs.clear()
            known = _refs[id(value)] = (value, (kind, value.kind, value.name, freeze(value.args),
                                                tuple((k, freeze(v)) for k, v in value.kwargs)))
        return known[1]
    if kind is ShapeValue:
        return (kind, value.shape)
    if kind is list:
        return (_LIST, tuple(freeze(v) for v in value))
    if kind is dict:
        return (_DICT, tuple((k, freeze(v)) for k, v in value.items()))
    raise Unkeyed(kind.__name__)


class World(Record):
    """What every block body can see besides its arguments, and what follows from it."""

    token: int
    keepable: frozenset[str]  # the templates whose instances may be kept
    tables: bool  # some template holds a table (whose size cells read what is checked and trusted)
    kinds: dict[int, type]  # statement key -> its kind, for what an instance's trace holds there


class Replay(Record):
    """What one instance's elaboration added, in the order it added it."""

    path: str
    offset: int  # the layers before it (a join's name counts them: `add~14`)
    input: str  # the tensor it started from
    layers: tuple[Layer, ...]
    instances: tuple[tuple[str, Instance], ...]  # the nested ones
    instance: Instance | None  # None for a table row
    cells: tuple
    placeholders: tuple[tuple[str, Any], ...]
    first: frozenset[str]
    diagnostics: tuple
    work: int
    rescaled: bool
    out: Tensor | None


class Row(Record):
    """What one row of a section's table added: a Replay of no instance of its own, and its entries."""

    seen: tuple  # the row, the table's header and the section's `where`, as they were
    replay: Replay
    elements: tuple
    modules: int  # the section's positions it took (`features.3`, ...)
    last_made: str


class Memo:
    def __init__(self):
        self.entries: OrderedDict = OrderedDict()  # the exact key -> Replay
        self.movable: OrderedDict = OrderedDict()  # the key less path, input and offset -> Replay
        self.rows: OrderedDict = OrderedDict()  # a section's table row at its place -> Row
        self.worlds: list[tuple[tuple, World]] = []
        self.enabled = True
        # Kept from one check to the next only in a long-lived process (`archc lsp`, `keep_across_checks`):
        # elsewhere each elaboration starts empty, so a process that checks many files (the fuzz's workers,
        # a test run) holds one network's replays, not thousands (its peak memory grew past 200 MB).
        self.persistent = False
        self.hits = self.moved = self.misses = 0

    def keep_across_checks(self) -> None:
        self.persistent = True

    @contextlib.contextmanager
    def disabled(self):
        """Elaborate every instance while inside (a fresh check, to compare a replayed one with)."""
        was, self.enabled = self.enabled, False
        try:
            yield
        finally:
            self.enabled = was

    def world(self, program, lowered, params: dict) -> World | None:
        if not self.enabled:
            return None
        if not self.persistent:
            self.entries.clear(), self.movable.clear(), self.rows.clear()
            self.worlds = []
        try:
            seen = (lowered.blocks, program.lets, freeze(params))
        except Unkeyed:
            return None
        for i, (other, world) in enumerate(self.worlds):
            if other == seen:
                self.worlds.insert(0, self.worlds.pop(i))
                return world
        token = max((w.token for _, w in self.worlds), default=0) + 1
        statements = {name: list(walk(t.body)) for name, t in lowered.blocks.items()}
        keepable = frozenset(name for name, body in statements.items()
                             if not any(isinstance(s, (TAux, TOutput)) for s in body))
        kinds = {s.key: type(s) for body in statements.values() for s in body}
        world = World(token, keepable, TTable in kinds.values(), kinds)
        self.worlds = [(seen, world), *self.worlds][:MAX_WORLDS]
        live = {w.token for _, w in self.worlds}  # what a forgotten world kept goes with it
        for table, token in ((self.entries, lambda k: k[0][0]), (self.movable, lambda k: k[0]),
                             (self.rows, lambda k: k[0])):
            for key in [k for k in table if token(k) not in live]:
                del table[key]
        return world

    def expand(self, el, parts: tuple, path: str, owner: str, x: Tensor, run) -> Tensor | None:
        """`run()` elaborates the instance at `path` on `x`, called in the instance `owner` (its placeholder
        already in graph.instances), and returns its output and Instance; or an earlier run with the same
        key is replayed, renamed where it ran at another path (a block in the next repeat of a row)."""
        moved, key = self._keys(el, parts, path, owner, x.name)
        if key is not None:
            hit = self.entries.get(key)
            if hit is None and moved in self.movable:
                hit = _relocated(el.world, self.movable[moved], path, owner, len(el.graph.order), x.name)
                if hit is not None and len(el.graph.order) + len(hit.layers) <= el.max_layers:
                    self.moved += 1
                    self._keep(self.entries, key, hit)
                else:
                    hit = None
            if hit is not None and el.work + hit.work <= el.max_work:
                self.entries.move_to_end(key)
                self.hits += 1
                return _replay(el, hit, path)
            self.misses += 1
        g = el.graph
        marks = _marks(el)
        y, instance = run()
        g.instances[path] = instance
        if key is not None and marks[7:] == (len(g.elements), len(g.outputs), len(g.aux)):
            kept = _recorded(el, marks, instance, y, x.name)
            self._keep(self.entries, key, kept)
            if not kept.diagnostics and not kept.placeholders:  # messages and resyncs are not renamed
                self._keep(self.movable, moved, kept)
        return y

    def row(self, el, stmt, row, where: tuple, env, site, x: Tensor | None, resolutions, blocks: dict, run):
        """`run()` elaborates one row of a table in a section (compiler/tables.py); or the row's last run with
        the same key, at the same place of the network, is replayed. The row, the table's header and the
        section's `where` are compared, not hashed (they are the parse's models)."""
        world = el.world
        if world is None or site.frame is not None:
            return run()
        g = el.graph
        try:
            key = (world.token, site.file, site.row_file, site.scope, site.counter[0], stmt.key, row.span,
                   x and x.name, x and x.shape, len(g.order), blocks["done"], blocks["count"], freeze(resolutions),
                   freeze(env.values), el.as_printed, el.rescaled, el.trusted, el.aux, len(el.calls), g.input_shape)
        except Unkeyed:
            return run()
        hit = self.rows.get(key)
        if hit is not None and hit.seen == (row, stmt.table.header, where) and el.work + hit.replay.work <= el.max_work:
            self.rows.move_to_end(key)
            self.hits += 1
            g.elements.extend(hit.elements)
            site.counter[0] += hit.modules
            el.last_made = hit.last_made
            return _replay(el, hit.replay)
        marks, counter = _marks(el), site.counter[0]
        y = run()  # a CompileError out of the row is reported by the table: such a row is not kept
        if (len(g.outputs), len(g.aux)) == marks[8:]:
            self._keep(self.rows, key, Row((row, stmt.table.header, where), _recorded(el, marks, None, y, ""),
                                           tuple(g.elements[marks[7]:]), site.counter[0] - counter, el.last_made))
        return y

    @staticmethod
    def _keep(entries: OrderedDict, key, replay: Replay) -> None:
        entries[key] = replay
        entries.move_to_end(key)
        if len(entries) > MAX_ENTRIES:
            entries.popitem(last=False)

    def _keys(self, el, parts: tuple, path: str, owner: str, x: str):
        world = el.world
        if world is None or parts[0] not in world.keepable:
            return None, None
        name, values, ref, plain = parts  # plain: strings, ints and tuples of them, hashable as they are
        try:
            frozen = (tuple([(k, v if type(v) is int else freeze(v)) for k, v in values.items()]), freeze(ref), plain)
        except Unkeyed:
            return None, None
        cells = (el.as_printed, el.rescaled, el.trusted if world.tables else None)
        moved = (world.token, name, frozen, el.aux, len(el.calls), el.graph.input_shape, cells)
        return moved, (moved, path, owner, x, len(el.graph.order))


def _last(mapping: dict, count: int) -> tuple:
    return tuple(islice(reversed(mapping.items()), count))[::-1] if count else ()


def _marks(el) -> tuple:
    """How far the graph and the elaborator have got: what a run adds comes after these."""
    g = el.graph
    return (len(g.order), len(g.instances), len(g.cells), len(g.placeholders), frozenset(g.first),
            len(el.diagnostics), el.work, len(g.elements), len(g.outputs), len(g.aux))


def _recorded(el, marks: tuple, instance: Instance | None, y: Tensor | None, x: str) -> Replay:
    """What the run since `marks` added (an instance's body, or a row with no instance of its own)."""
    g = el.graph
    order, instances, cells, placeholders, first, diagnostics, work = marks[:7]
    return Replay(instance.path if instance else "", order, x, tuple(g.nodes[n] for n in g.order[order:]),
                  _last(g.instances, len(g.instances) - instances), instance, tuple(g.cells[cells:]),
                  _last(g.placeholders, len(g.placeholders) - placeholders), frozenset(g.first - first),
                  tuple(el.diagnostics[diagnostics:]), el.work - work, el.rescaled, y)


def _replay(el, r: Replay, path: str | None = None) -> Tensor | None:
    g = el.graph
    for layer in r.layers:
        g.add(layer)
    g.instances.update(r.instances)
    if r.instance is not None:
        g.instances[path] = r.instance
    g.cells.extend(r.cells)
    g.placeholders.update(r.placeholders)
    g.first.update(r.first)
    el.diagnostics.extend(r.diagnostics)
    el.work += r.work
    el.rescaled = r.rescaled
    return r.out


# ------------------------------------------------------------ renaming a replay


class Unmoved(Exception):
    """A name the replay cannot say where it goes: the instance is elaborated instead."""


def _relocated(world: World, r: Replay, path: str, owner: str, offset: int, x: str) -> Replay | None:
    """`r` as made at `path` in `owner` after `offset` layers, from the tensor `x`: every module path under
    r's renamed, joins renumbered (their names count the layers before them), the input renamed."""
    if r.path == path and r.instance.owner == owner and r.offset == offset and r.input == x:
        return r
    inside, shift = r.path + ".", offset - r.offset

    def name(old: str) -> str:
        if old == r.input:
            return x
        if old == r.path:
            return path
        if not old.startswith(inside):
            raise Unmoved(old)
        rest = old[len(inside):]
        if "~" in rest:  # compiler/elaborate.py `add_layer`: scope.op~N, N the layers before it
            head, _, count = rest.rpartition("~")
            rest = f"{head}~{int(count) + shift}"
        return f"{path}.{rest}"

    def trace(values: dict) -> dict:
        return {key: _traced(world.kinds.get(key), value, name) for key, value in values.items()}

    def instance(i: Instance, owner: str) -> Instance:
        return replace(i, keep_cached=True, path=name(i.path), owner=owner, trace=trace(i.trace))

    try:
        layers = tuple(replace(l, keep_cached=True, name=name(l.name), inputs=tuple(name(n) for n in l.inputs),
                               owner=name(l.owner))
                       for l in r.layers)
        nested = tuple((name(p), instance(i, name(i.owner))) for p, i in r.instances)
        own = instance(r.instance, owner)
        out = None if r.out is None else Tensor(name(r.out.name), r.out.shape)
        first = frozenset(name(n) for n in r.first)
    except Unmoved:
        return None
    return Replay(path, offset, x, layers, nested, own, r.cells, (), first, (), r.work, r.rescaled, out)


def _traced(kind: type | None, value, name):
    """A trace entry with its module paths renamed (what each statement records: compiler/elaborate.py)."""
    if isinstance(value, Made):
        return value if value.path is None else Made(name(value.path), value.positional)
    if kind is None or kind is TLet or kind is TIf:
        return value  # a value of the language, or the branch taken
    if kind in (TConcat, TMultiply, TJoin) and isinstance(value, str):
        return name(value)
    if kind is TResidual and isinstance(value, dict):
        return {k: (name(v) if k in ("depth", "add") and v is not None else v) for k, v in value.items()}
    if kind is TRepeat and isinstance(value, dict):
        return {**value, "paths": [None if p is None else name(p) for p in value["paths"]]}
    if kind is TTable and isinstance(value, list):
        return [{**row, "paths": [None if p is None else name(p) for p in row["paths"]]} for row in value]
    raise Unmoved(repr(value))


MEMO = Memo()
