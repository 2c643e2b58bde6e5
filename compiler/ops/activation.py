"""Element-wise activations: no parameters, output shape = input shape."""

from __future__ import annotations

from .base import Attrs, Op, call_source


class LeakyAttrs(Attrs):
    negative_slope: float = 0.01


class Activation(Op):
    torch_name: str

    def torch_module(self, a, inputs, inplace: bool = False):
        from torch import nn

        return getattr(nn, self.torch_name)(**a.model_dump(), **({"inplace": True} if inplace else {}))

    def source(self, args, c, rank, helpers, inplace: str | None = None):
        """`inplace`: the source of the inplace argument, if the module is built with one."""
        args = {**args, "inplace": inplace} if inplace else args
        names = {name: name for name in self.Attrs.model_fields} | ({"inplace": "inplace"} if inplace else {})
        return call_source(f"nn.{self.torch_name}", [], args, names)


def _activation(op_name: str, torch_name: str, attrs: type[Attrs] = Attrs, in_place: bool = False) -> type[Op]:
    return type(op_name.title(), (Activation,), {"name": op_name, "Attrs": attrs, "torch_name": torch_name,
                                                 "in_place": in_place, "doc": f"{op_name}(): torch.nn.{torch_name}"})


# in_place: torch's inplace form gives the same bits, forward and backward (tests/test_inplace.py);
# sigmoid, tanh and gelu have none
ACTIVATIONS = [
    _activation("relu", "ReLU", in_place=True),
    _activation("relu6", "ReLU6", in_place=True),
    _activation("hardswish", "Hardswish", in_place=True),
    _activation("hardsigmoid", "Hardsigmoid", in_place=True),
    _activation("sigmoid", "Sigmoid"),
    _activation("silu", "SiLU", in_place=True),
    _activation("gelu", "GELU"),
    _activation("tanh", "Tanh"),
    _activation("leaky_relu", "LeakyReLU", LeakyAttrs, in_place=True),
]
