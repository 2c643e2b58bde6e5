"""lark's LALR parser, building the AST as it reduces each rule (dsl/parse.py's `_ToAst` has a method per
rule), instead of building lark's tree and then walking it again.

lark gives a rule's callback the rule's children as they stand on its stack, tokens it drops included.
`rule_callback` does what lark's tree builder does with them, in its order: ChildFilter (which children the
rule keeps, `[x]` placeholders as None, `_rule`s and repetitions inlined), ExpandSingleChild (a `?rule` passes
its one child on) and PropagatePositions (where the node is), then calls the rule's method with the node's
place as `meta` and the kept children's values. Parsing the zoo this way took 0.49 s where lark's tree and a
Transformer took 1.14 s, with the same trees, spans and diagnostics.
"""

from __future__ import annotations

import contextlib
import threading

from lark import Lark
from lark.parse_tree_builder import ChildFilterLALR_NoPlaceholders, maybe_create_child_filter

from . import ast
from .diagnostics import ArchError, Diagnostic

# How deep the AST may nest (`- - - 1`, `f(f(f(1)))`: a node per level, an argument list too). The
# elaborator, evaluator, printer and emitters walk it recursively; at 480 levels all of them still ran in a
# fresh process. (lark's tree, transformed recursively, stopped at about 490, fewer from a deeper stack.)
MAX_NESTING = 400


class Built:
    """A reduced rule on the parser's stack: its value and its place, as lark's PropagatePositions
    places a tree: a node starts where its first child's container starts and ends where its last
    child's container ends, dropped tokens (newlines, punctuation) included; a rule that passes its one
    child on (`?expr`, parentheses) widens the child's container, not the child. `depth`: how deep the
    AST under it nests."""

    __slots__ = ("value", "empty", "line", "column", "start_pos", "end_line", "end_column", "end_pos",
                 "c_line", "c_column", "c_start", "c_end_line", "c_end_column", "c_end", "depth")

    def __init__(self, value, first, last, depth: int):
        self.value, self.depth = value, depth
        self.empty = first is None
        if first is not None:
            self.line = self.c_line = first[0]
            self.column = self.c_column = first[1]
            self.start_pos = self.c_start = first[2]
            self.end_line = self.c_end_line = last[0]
            self.end_column = self.c_end_column = last[1]
            self.end_pos = self.c_end = last[2]

    def widen(self, first, last) -> None:
        """A `?rule` passed this node on: its container now spans the rule's children too."""
        if self.empty:
            self.empty = False
            self.line, self.column, self.start_pos = first
            self.end_line, self.end_column, self.end_pos = last
        self.c_line, self.c_column, self.c_start = first
        self.c_end_line, self.c_end_column, self.c_end = last


_FAILED = Built(None, None, None, 0)  # what rules reduce to once a rule's method has refused its text


def _start_of(children):
    """Where the first placed child's container starts (line, column, offset), or None."""
    for c in children:
        if type(c) is Built:
            if not c.empty:
                return c.c_line, c.c_column, c.c_start
        elif c is not None:  # a Token
            return c.line, c.column, c.start_pos
    return None


def _end_of(children):
    for c in reversed(children):
        if type(c) is Built:
            if not c.empty:
                return c.c_end_line, c.c_end_column, c.c_end
        elif c is not None:
            return c.end_line, c.end_column, c.end_pos
    return None


class _Reduction:
    """One parse's state: the object whose methods build the AST, and the first error one of them raised,
    kept until the parse ends, so that a syntax error later in the file is the one reported (as when the
    tree was transformed after parsing)."""

    def __init__(self, methods):
        self.methods, self.error = methods, None


_current: _Reduction | None = None
_one_at_a_time = threading.Lock()  # `_current`, and the parse's other state (its indenter, its comments)


@contextlib.contextmanager
def reducing(methods):
    """The parse inside runs `methods`' rule methods; yields the state whose `error` says, once the parse
    has ended, what one of them refused."""
    global _current
    with _one_at_a_time:
        _current = state = _Reduction(methods)
        try:
            yield state
        finally:
            _current = None


def _first_child(children):
    return children[0]


def rule_callback(rule, method_name: str | None, placeholders: bool):
    """The function the parser calls with a reduced `rule`'s children (see the module's docstring)."""
    to_include, nones_after = [(i, False, 0) for i in range(len(rule.expansion))], 0
    made = maybe_create_child_filter(rule.expansion, rule.options.keep_all_tokens, False,
                                     rule.options.empty_indices if placeholders else None)
    if made is not None:
        if made.func is ChildFilterLALR_NoPlaceholders:
            to_include = [(i, expand, 0) for i, expand in made.args[0]]
        else:
            to_include, nones_after = made.args
    pass_through = rule.options.expand1 and not rule.alias
    inlined = str(rule.origin.name).startswith("_")  # a `_rule` or a repetition: its children join its parent's
    if method_name is None and not inlined and not (pass_through and len(to_include) == 1):
        raise TypeError(f"grammar rule {rule.origin.name!r} has no method to build it")
    if pass_through and len(rule.expansion) == 1 and to_include == [(0, False, 0)] and not nones_after:
        return _first_child  # `?sum: product`, most of the reductions: the child is its own container already

    def reduce(children):
        state = _current
        if state.error is not None:
            return _FAILED
        kept = []
        for i, expand, nones in to_include:
            if nones:
                kept += [None] * nones
            if not expand:
                kept.append(children[i])
            elif kept:
                kept += children[i].value
            else:  # a left-recursive repetition (`item*`) grows its own list, not a copy (lark does so)
                kept = children[i].value
        if nones_after:
            kept += [None] * nones_after
        first = _start_of(children)
        last = _end_of(children) if first is not None else None
        if pass_through and len(kept) == 1:
            if type(kept[0]) is Built and first is not None:
                kept[0].widen(first, last)
            return kept[0]
        depth = max((c.depth for c in children if type(c) is Built), default=0)  # a repetition holds its children's
        if inlined:
            return Built(kept, first, last, depth)
        if depth >= MAX_NESTING:
            state.error = ArchError([Diagnostic(code="E400", span=ast.Span(line=1, col=1, end_line=1, end_col=2),
                                                message="the file nests too deeply to compile")])
            return _FAILED
        node = Built(None, first, last, depth + 1)
        try:
            node.value = getattr(state.methods, method_name)(node, [c.value if type(c) is Built else c for c in kept])
        except ArchError as error:
            state.error = error
            return _FAILED
        return node

    return reduce


class ReducingLark(Lark):
    """lark's parser with `rule_callback`s in place of its tree builder, calling the methods of
    `methods_class` (lark calls `_prepare_callbacks` when it builds the parser and when it loads it
    from its cache)."""

    methods_class: type

    def _prepare_callbacks(self) -> None:
        self._callbacks = {}
        for rule in self.rules:
            name = str(rule.alias or rule.options.template_source or rule.origin.name)
            method = name if callable(getattr(self.methods_class, name, None)) else None
            self._callbacks[rule] = rule_callback(rule, method, self.options.maybe_placeholders)
