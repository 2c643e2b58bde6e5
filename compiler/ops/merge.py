"""Ops that join tensors; made by `residual`, `concat` and `multiply`, not called by name.
They hold no module: `join` is the forward expression over their inputs, by position."""

from __future__ import annotations

from .base import Op, Saved, ShapeError, fmt_shape, free, keeps_nothing, pointwise


class Add(Op):
    name = "add"
    callable_ = False
    category = "join"
    keeps_inputs_only = True
    join = "{0} + {1}"
    # computed outside any module with `+`, `+=`, torch.cat and `*`: no tool sees them (ptflops and calflops
    # patch torch.add and Tensor.add, not the operators)
    thop = fvcore = ptflops = calflops = calflops_flops = staticmethod(free)
    # the inputs at the same position meet (compiler/receptive.py takes the union of their fields)
    window, saved = staticmethod(pointwise), staticmethod(keeps_nothing)

    def infer(self, a, inputs):
        if inputs[0] != inputs[1]:
            raise ShapeError(f"add of {fmt_shape(inputs[0])} and {fmt_shape(inputs[1])}: the shapes differ",
                             hint="in a residual, add a `shortcut:` body that projects the input; with `add a, b`, "
                                  "name two tensors of one size", code="E303")
        return inputs[0]


class Concat(Op):
    name = "concat"
    callable_ = False
    category = "join"
    keeps_inputs_only = True
    join = "torch.cat([{all}], 1)"
    thop = fvcore = ptflops = calflops = calflops_flops = staticmethod(free)
    window, saved = staticmethod(pointwise), staticmethod(keeps_nothing)

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
    thop = fvcore = ptflops = calflops = calflops_flops = staticmethod(free)
    window = staticmethod(pointwise)
    saved = staticmethod(lambda layer, in_place: (Saved("input", 0), Saved("input", 1)))  # each for the other

    def infer(self, a, inputs):
        x, gate = inputs
        if gate[0] != x[0] or any(g not in (1, d) for g, d in zip(gate[1:], x[1:])):
            raise ShapeError(f"gate {fmt_shape(gate)} cannot scale {fmt_shape(x)}",
                             hint="the gate's channels must equal the input's", code="E304")
        return x
