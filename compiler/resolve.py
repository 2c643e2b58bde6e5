"""Name resolution before elaboration: every name in every block and section
must be defined somewhere in reach, and every named argument of a known op
or block must exist. This pass sees code that elaboration never runs (unused
blocks, branches not taken, rows after an error), so one run reports all of
a file's unknown names.
"""

from __future__ import annotations

from ..dsl import ast
from ..dsl.diagnostics import Diagnostic, did_you_mean
from ..dsl.record import replace
from .evaluate import BUILTINS, CompileError
from .ops import CALLABLE, lookup
from .program import Program
from .tables import heading_roles


def resolve(program: Program) -> list[Diagnostic]:
    checker = _Resolver(program)
    for name, (block, file) in program.blocks.items():
        local = {p.name for p in block.params} | {"in"} | _lets(block.body)
        checker.file = file
        for param in block.params:
            if param.default is not None:
                checker.expr(param.default, local)
        checker.stmts(block.body, local)
    checker.file = program.file
    if program.network is not None:
        network = {p.name for p in program.network.params}
        for section in program.sections:
            local = network | _lets(section.body)
            for kwarg in section.where:
                checker.expr(kwarg.value, local | {kwarg.name})
            checker.stmts(section.body, local)
        for variant in program.variants.values():
            for kwarg in variant.kwargs:  # variant values see constants, ops and blocks, as defaults do
                if kwarg.name not in network:
                    checker.report("E202", f"variant '{variant.name}' sets '{kwarg.name}', which "
                                   f"{program.network.name} does not have", kwarg.span,
                                   did_you_mean(kwarg.name, network))
                checker.expr(kwarg.value, set())
    return checker.found


def _lets(body: list) -> set[str]:
    names = set()
    for stmt in body:
        if stmt.kind == "let":
            names.add(stmt.name)
        for inner in _bodies(stmt):
            names |= _lets(inner)
    return names


def _bodies(stmt) -> list[list]:
    kind = stmt.kind
    if kind == "if":
        return [stmt.then, stmt.other]
    if kind == "repeat":
        return [stmt.body]
    if kind == "residual":
        return [stmt.body] + ([stmt.shortcut.body] if stmt.shortcut else [])
    if kind == "concat":
        return [b.body for b in stmt.branches]
    if kind == "multiply":
        return [stmt.body]
    return []


class _Resolver:
    def __init__(self, program: Program):
        self.program = program
        self.globals = set(program.lets) | set(program.blocks) | CALLABLE
        self.found: list[Diagnostic] = []
        self.file = program.file

    def report(self, code: str, message: str, span: ast.Span, hint: str | None = None) -> None:
        self.found.append(Diagnostic(code=code, message=message, file=self.file, span=span, hint=hint))

    def known(self, name: str, local: set[str]) -> bool:
        return name in local or name in self.globals

    def unknown(self, name: str, local: set[str], span: ast.Span, what: str = "name", code: str = "E200") -> None:
        hint = did_you_mean(name, local | self.globals | set(BUILTINS))
        if hint is None and what in ("op or block", "operator"):  # nothing close: say what there is
            blocks = sorted(self.program.blocks)
            hint = f"the ops are {', '.join(sorted(CALLABLE))}" + (
                f"; the blocks in scope: {', '.join(blocks)}" if blocks else "; no block is defined or used")
        self.report(code, f"unknown {what} '{name}'", span, hint)

    def stmts(self, body: list, local: set[str]) -> None:
        for stmt in body:
            self.stmt(stmt, local)

    def stmt(self, stmt, local: set[str]) -> None:
        kind = stmt.kind
        if kind == "call_stmt":
            self.call(stmt.call, local, statement=True)
        elif kind == "let":
            self.expr(stmt.value, local)
        elif kind == "aux":
            self.call(stmt.call, local, statement=True)
            if stmt.cond is not None:
                self.expr(stmt.cond, local)
        elif kind == "table":
            self.table(stmt, local)
        elif kind == "repeat":
            self.expr(stmt.count, local)
            self.stmts(stmt.body, local | {"index"})
        elif kind in ("keep", "from", "join"):
            pass  # tensor names: known only as the block runs (elaboration says which are missing)
        else:
            for attr in ("cond",):
                if getattr(stmt, attr, None) is not None:
                    self.expr(getattr(stmt, attr), local)
            if kind == "residual":
                for kwarg in stmt.kwargs:
                    self.expr(kwarg.value, local)
                if stmt.shortcut is not None and stmt.shortcut.cond is not None:
                    self.expr(stmt.shortcut.cond, local)
            for body in _bodies(stmt):
                self.stmts(body, local)

    def call(self, call: ast.Call, local: set[str], statement: bool = False) -> None:
        if call.func.startswith("op."):  # the primitive op itself, whatever a block or name hides it
            if lookup(call.func[3:]) is None:
                self.report("E201", f"there is no op '{call.func[3:]}'", call.span,
                            did_you_mean(call.func[3:], CALLABLE) or "op.NAME names a primitive op")
            else:
                names = list(lookup(call.func[3:]).fields)
                for kwarg in call.kwargs:
                    if kwarg.name not in names:
                        self.report("E202", f"{call.func} has no parameter '{kwarg.name}'", kwarg.span,
                                    did_you_mean(kwarg.name, names) or f"its parameters: {', '.join(names)}")
            for arg in call.args:
                self.expr(arg, local)
            for kwarg in call.kwargs:
                self.expr(kwarg.value, local)
            return
        if call.func not in BUILTINS or statement:
            if not self.known(call.func, local):
                self.unknown(call.func, local, call.span, "op or block")
            else:
                self.kwargs(call.func, call.kwargs, local)
        for arg in call.args:
            self.expr(arg, local)
        for kwarg in call.kwargs:
            self.expr(kwarg.value, local)

    def kwargs(self, func: str, kwargs: list[ast.Kwarg], local: set[str]) -> None:
        """Named arguments of a statically known op or block must exist."""
        if func in local:
            return  # a parameter holding an op: known only when elaborated
        if func in self.program.blocks:
            names = [p.name for p in self.program.blocks[func][0].params]
        elif lookup(func) is not None:
            names = list(lookup(func).Attrs.model_fields)
        else:
            return
        for kwarg in kwargs:
            if kwarg.name not in names:
                self.report("E202", f"{func} has no parameter '{kwarg.name}'", kwarg.span,
                            did_you_mean(kwarg.name, names) or f"its parameters: {', '.join(names)}")

    def expr(self, node, local: set[str]) -> None:
        kind = node.kind
        if kind == "name":
            if not self.known(node.id, local):
                self.unknown(node.id, local, node.span)
        elif kind == "attr":
            if not self.known(node.obj, local):
                self.unknown(node.obj, local, node.span)
        elif kind == "call":
            self.call(node, local)
        else:
            fields = node.__dict__  # the model's fields: a getattr of one it lacks raises inside pydantic, slowly
            for child in ("left", "right", "operand", "cond", "then", "other"):
                if fields.get(child) is not None:
                    self.expr(fields[child], local)
            for value in fields.get("values") or []:
                self.expr(value, local)

    def table(self, table: ast.Table, local: set[str]) -> None:
        try:
            _headings, roles = heading_roles(table)
        except CompileError:
            return  # reported when the table runs
        for row in table.rows:
            for role, cell in zip(roles, row.cells):
                atoms = [a for part in cell.parts for a in part]
                if role == "op" and atoms:
                    head = atoms[0]
                    if head.kind == "name" and head.id == "output" and len(atoms) == 2:
                        continue  # an output row
                    if head.kind == "name" and not self.known(head.id, local):
                        self.unknown(head.id, local, head.span, "operator", "E201")
                    elif head.kind == "call":
                        self.call(head, local)
                elif role in ("param", "repeat"):
                    before = len(self.found)
                    for atom in atoms:  # a cell may use its block's `index` in the table and the `count`
                        if atom.kind not in ("dims", "kernel"):
                            self.expr(atom, local | {"index", "count"})
                    if role == "repeat" and len(self.found) > before:  # DenseNet's "Layers": no repeat count
                        heading = table.header[roles.index("repeat")].text
                        why = f"the column '{heading}' is the repeat column: head it `{heading} [label]` if it is not"
                        self.found[before:] = [replace(d, hint=f"{d.hint}; {why}" if d.hint else why)
                                               for d in self.found[before:]]
