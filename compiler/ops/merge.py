"""Ops that join tensors; made by `residual`, `concat` and `multiply`, not called by name.
They hold no module: `join` is the forward expression over their inputs, by position."""

from __future__ import annotations

from .base import Op, ShapeError, fmt_shape, free


class Add(Op):
    name = "add"
    callable_ = False
    category = "join"
    keeps_inputs_only = True
    join = "{0} + {1}"
    thop = fvcore = staticmethod(free)  # computed outside any module: neither tool sees it

    def infer(self, a, inputs):
        if inputs[0] != inputs[1]:
            raise ShapeError(f"residual add of {fmt_shape(inputs[0])} and {fmt_shape(inputs[1])}: the shapes differ",
                             hint="add a `shortcut:` body that projects the input", code="E303")
        return inputs[0]


class Concat(Op):
    name = "concat"
    callable_ = False
    category = "join"
    keeps_inputs_only = True
    join = "torch.cat([{all}], 1)"
    thop = fvcore = staticmethod(free)

    def infer(self, a, inputs):
        spatial = {s[1:] for s in inputs}
        if len(spatial) != 1 or any(len(s) != len(inputs[0]) for s in inputs):
            raise ShapeError("concat branches end at different sizes: " + ", ".join(fmt_shape(s) for s in inputs),
                             hint="every branch must keep the same height and width", code="E304")
        return (sum(s[0] for s in inputs), *inputs[0][1:])


class Multiply(Op):
    name = "multiply"
    callable_ = False
    category = "join"
    keeps_inputs_only = True
    join = "{0} * {1}"
    thop = fvcore = staticmethod(free)

    def infer(self, a, inputs):
        x, gate = inputs
        if gate[0] != x[0] or any(g not in (1, d) for g, d in zip(gate[1:], x[1:])):
            raise ShapeError(f"gate {fmt_shape(gate)} cannot scale {fmt_shape(x)}",
                             hint="the gate's channels must equal the input's", code="E304")
        return x
