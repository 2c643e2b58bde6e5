"""What the source emitter writes for a value, and how it picks an expression.

Every value in the emitted file comes from the IR (compiler/graph.py). Where a
class serves several instances, a value may differ between them; the emitter
then writes an expression of the class's variables, but only one it has
checked gives the IR's value in every instance (`Context.choose`: the
expression the .arch file wrote, or a variable holding the same values). If
none does, the value is the same everywhere (a literal), or it becomes an extra
constructor argument that the caller passes (`hoist`). So the file computes
exactly what the checker decided, whatever the expressions.

Ops passed as values (`nl = hardswish`, `norm = batchnorm(eps = 0.001)`) are
factories the file defines, `def hardswish(c, inplace=False)`, called with the
input channels first as block classes are, and bound with `functools.partial`.
"""

from __future__ import annotations

from collections import ChainMap
from typing import Any

from ..dsl import ast
from ..dsl.diagnostics import Diagnostic
from ..dsl.record import Record
from .evaluate import Ref
from .pyexpr import Call, Lit, Name, PyExpr, holds, names_in, same


class EmitError(Exception):
    def __init__(self, message: str, file: str = "", span: ast.Span = ast.NO_SPAN, hint: str | None = None):
        super().__init__(message)
        self.diagnostic = Diagnostic(code="E500", message=message, file=file, span=span, hint=hint)


class Context(Record, frozen=False):
    """The instances a piece of a class is written for, and what each one's variables hold there."""

    envs: list[dict[str, Any]]  # per instance: variable -> value; "#" is the instance's position in the class
    emission: Any
    taken: set[str] = set()  # the class's variable names
    hoisted: dict[str, dict[int, Any]] = {}  # extra argument -> its value per instance
    recursive: bool = False  # the class calls itself: its signature cannot grow
    reads: set[str] = set()  # the variables the written code reads

    def only(self, keep: list[bool]) -> Context:
        """The same class, for the instances where `keep` holds (the branch of an `if` they take)."""
        return Context([e for e, k in zip(self.envs, keep) if k], self.emission, self.taken, self.hoisted,
                       self.recursive, self.reads)

    def bind(self, var: str, values: list) -> None:
        for env, value in zip(self.envs, values):
            env[var] = value

    def choose(self, values: list, candidates: list[PyExpr | None], hint: str, where=None) -> PyExpr:
        """An expression giving `values[i]` in instance i: a candidate that does, the literal when all
        agree, else an argument of the constructor."""
        expr = self.try_choose(values, candidates)
        if expr is not None:
            return expr
        if not self.envs:  # a statement no instance reaches: nothing depends on what is written
            return Lit(None)
        if self.recursive:
            file, span = where or ("", ast.NO_SPAN)
            raise EmitError("a block that calls itself cannot be written as source where a value differs between "
                            "its uses and is not an expression of its parameters", file, span,
                            hint="compute the value from the block's parameters, or pass it as one")
        return self.hoist(hint, values)

    def try_choose(self, values: list, candidates: list[PyExpr | None]) -> PyExpr | None:
        for candidate in candidates:
            if candidate is not None and holds(candidate, self.envs, values):
                self.reads |= names_in(candidate)
                return candidate
        if values and all(same(values[0], v) for v in values[1:]):
            return self.emission.value(values[0])
        return None

    def hoist(self, hint: str, values: list) -> PyExpr:
        name = hint
        while name in self.taken or name in self.hoisted:
            name += "_"
        self.hoisted[name] = {env["#"]: v for env, v in zip(self.envs, values)}
        self.bind(name, values)
        self.reads.add(name)
        return Name(name)


class ModuleClass(Record):
    """A torch class as a value (`nn.BatchNorm1d`), where the class differs between instances."""

    name: str


class Values:
    """The file-level names values refer to: op factories, block classes, helpers."""

    def __init__(self, graph, classes: dict[str, str]):
        self.graph, self.classes = graph, classes
        self.factories: dict[str, tuple[str, int]] = {}  # factory name -> (op, rank)
        self.helpers: set[str] = set()
        self.names: dict[str, Ref] = {}  # the file's factories and classes, as the values they stand for

    def env(self, values: dict) -> ChainMap:
        """An instance's variables, and behind them the file's names (a check of `nl=relu` reads `relu`)."""
        return ChainMap(values, self.names)

    def value(self, value) -> PyExpr:
        """A value of the IR as the file writes it."""
        if isinstance(value, Ref):
            return self.ref(value)
        if isinstance(value, ModuleClass):
            return Name(value.name)
        if isinstance(value, tuple) and any(isinstance(v, Ref) for v in value):
            raise EmitError("a tuple holding ops cannot be written in the emitted source")
        return Lit(value)

    def ref(self, ref: Ref) -> PyExpr:
        from .ops import OPS

        if ref.kind == "op":
            target, names = Name(self.factory(ref.name)), list(OPS[ref.name].Attrs.model_fields)
        else:
            cls = self.classes.get(ref.name)
            if cls is None:  # a block passed along but never called here: nothing constructs it
                return Lit(None)
            target, names = Name(cls), [p.name for p in self.graph.lowered.blocks[ref.name].params]
        self.names[target.id] = Ref(ref.kind, ref.name)
        if not ref.args and not ref.kwargs:
            return target
        from .lower import local_name

        bound = dict(zip(names, ref.args)) | dict(ref.kwargs)
        self.helpers.add("partial")
        keyword = local_name if ref.kind == "block" else (lambda n: n)
        return Call("partial", (target,), tuple((keyword(k), self.value(v)) for k, v in bound.items()))

    def factory(self, op_name: str) -> str:
        """The file's function building `op_name` from the input channels, for ops passed as values."""
        from .ops import OPS

        op = OPS[op_name]
        rank = 3
        if op.module_vector:
            ranks = {len(l.in_shapes[0]) for l in self.graph.layers() if l.op == op_name and l.via is not None}
            if ranks == {1}:
                rank = 1
            elif len(ranks) > 1:
                raise EmitError(f"the op value '{op_name}' is used on both feature maps and vectors, which the "
                                "emitted source cannot say with one factory",
                                hint=f"pass {op_name} separately for the maps and the vectors")
        name = op_name if rank == 3 else f"{op_name}_1d"
        self.factories[name] = (op_name, rank)
        return name


__all__ = ["Context", "EmitError", "ModuleClass", "Values"]
