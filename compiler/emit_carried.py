"""Network parameters the generated file takes as arguments: `num_classes`, as torchvision's models do.

    >>> import archc
    >>> text = archc.source(archc.zoo_path("resnet.arch"))
    >>> code = [line.split("#")[0].strip() for line in text.splitlines()]
    >>> [line for line in code if "num_classes" in line]
    ['def __init__(self, num_classes: int = 1000):', 'nn.Linear(512, num_classes),',
     'def build(num_classes: int = 1000):', 'return Resnet(num_classes=num_classes)']

Where the .arch file writes a value as an expression of a carried parameter (a table cell
`num_classes`, `linear(num_classes)`, an aux head's argument, a constant computed from it), the
network class writes that expression of its argument, checked as every expression the emitter
writes is (compiler/emit_values.py), and so are the channels of what follows it. Block classes
take it as the argument it already is. Where it reaches the network through something the file
cannot write as an expression of it (a condition, a repeat count, a `where` rewrite, a residual
standing in a section, a constant a block reads), the file is written as before, at the built
value, with no argument: an argument that changed only part of the network would build one the
file does not describe.
"""

from __future__ import annotations

from ..dsl import ast
from ..dsl.record import Record, fields
from .evaluate import BUILTINS, names_read
from .lower import TAux, TCall, TIf, TImplicit, TLet, TRepeat, TTable

CARRIED = ("num_classes",)
MAX_CHAIN = 64  # constants computed from one another from a carried parameter: deeper, it is not carried


class Uncarried(Exception):
    """A carried parameter reaches a value the file cannot write as an expression of it."""


def carried_params(graph) -> dict[str, int]:
    """The carried parameters the network declares, with their values (a whole number each)."""
    return {n: graph.params[n] for n in CARRIED if type(graph.params.get(n)) is int}


def derived_lets(lets: dict, carried) -> set[str]:
    """The top-level lets that read a carried parameter, or a let that does (breadth first from the
    parameters: a chain of a thousand lets costs a thousand steps). Raises Uncarried for a chain longer
    than MAX_CHAIN, which the emitter would follow as deep when it writes the expression."""
    readers: dict[str, list[str]] = {}
    for name, value in lets.items():
        for read in set(names_read(value)):
            readers.setdefault(read, []).append(name)
    derived: set[str] = set()
    level, depth = list(carried), 0
    while level:
        level = [r for name in level for r in readers.get(name, ()) if r not in derived]
        derived.update(level)
        depth += 1
        if level and depth > MAX_CHAIN:
            raise Uncarried
    return derived


def check_carried(graph, carried, derived: set[str], lets: dict) -> None:
    """Raise Uncarried where a carried parameter reaches the network other than through the
    expressions that the emitter writes: the elements' parameters (compiler/graph.py `Element.cells`,
    and the arguments of section calls and aux heads, which the emitter checks as it writes them)."""
    tainted = set(carried) | derived

    def reads(node) -> bool:
        return node is not None and bool(set(names_read(node)) & tainted)

    # compared as values, not as objects: a row replayed from an earlier parse (compiler/reuse.py) holds
    # that parse's nodes, equal to this one's (spans included)
    recorded = [node for element in graph.elements for node in element.cells.values() if reads(node)]

    def written(node) -> bool:  # a cell atom: what it reads of the parameter is an element's parameter
        if not reads(node) or any(node == r for r in recorded):
            return True
        if node.kind == "call" and node.func not in BUILTINS:  # an op or block with its arguments
            return all(map(written, list(node.args) + [k.value for k in node.kwargs])) and \
                (node.func not in derived or written(lets[node.func]))
        return node.kind == "name" and node.id in derived and written(lets[node.id])

    def section(body) -> None:
        for stmt in body:
            if isinstance(stmt, TCall):
                continue
            if isinstance(stmt, TAux):
                if reads(stmt.aux.cond):
                    raise Uncarried
            elif isinstance(stmt, TTable):
                if not all(written(atom) for row in stmt.table.rows for cell in row.cells for part in cell.parts
                           for atom in part):
                    raise Uncarried
            elif isinstance(stmt, TLet):  # a section's let is not in the file: its value is written
                if reads(stmt.value):
                    raise Uncarried
            elif isinstance(stmt, TIf):  # the file builds the branch taken
                if reads(stmt.cond):
                    raise Uncarried
                section(stmt.then + stmt.other)
            elif isinstance(stmt, TRepeat):  # and the number of repeats made
                if reads(stmt.count) or (stmt.template is not None and
                                         _reads_any(graph.lowered.blocks[stmt.template].body, tainted)):
                    raise Uncarried
                section(stmt.body if stmt.template is None else ())
            elif isinstance(stmt, TImplicit) and _reads_any(graph.lowered.blocks[stmt.template].body, tainted):
                raise Uncarried  # its class sees no network parameter: it would write the value

    for s in graph.lowered.sections:
        if any(reads(k.value) for k in s.where):
            raise Uncarried
        section(s.body)
    for block in {inst.block for inst in graph.instances.values()} if derived else ():
        template = graph.lowered.blocks[block]
        own = {p.name for p in template.params}
        if not template.implicit and _reads_any(template.body, derived - own):
            raise Uncarried  # a block that reads such a constant gets its value (docs/language.md)


def _reads_any(body, names: set[str]) -> bool:
    """Whether a template's statements read any of `names`, anywhere."""
    todo = list(body)
    while todo:
        item = todo.pop()
        if isinstance(item, ast.Node):
            if set(names_read(item)) & names:
                return True
        elif isinstance(item, (tuple, list)):
            todo.extend(item)
        elif isinstance(item, Record):
            todo.extend(getattr(item, name) for name in fields(item))
    return False


__all__ = ["CARRIED", "MAX_CHAIN", "Uncarried", "carried_params", "check_carried", "derived_lets"]
