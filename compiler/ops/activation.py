"""Element-wise activations: no parameters, output shape = input shape."""

from __future__ import annotations

from .base import Attrs, Op, call_source


class LeakyAttrs(Attrs):
    negative_slope: float = 0.01


class Activation(Op):
    torch_name: str

    def torch_module(self, a, inputs):
        from torch import nn

        return getattr(nn, self.torch_name)(**a.model_dump())

    def source(self, args, c, rank, helpers):
        return call_source(f"nn.{self.torch_name}", [], args, {name: name for name in self.Attrs.model_fields})


def _activation(op_name: str, torch_name: str, attrs: type[Attrs] = Attrs) -> type[Op]:
    return type(op_name.title(), (Activation,), {"name": op_name, "Attrs": attrs, "torch_name": torch_name,
                                                 "doc": f"{op_name}(): torch.nn.{torch_name}"})


ACTIVATIONS = [
    _activation("relu", "ReLU"),
    _activation("relu6", "ReLU6"),
    _activation("hardswish", "Hardswish"),
    _activation("hardsigmoid", "Hardsigmoid"),
    _activation("sigmoid", "Sigmoid"),
    _activation("silu", "SiLU"),
    _activation("gelu", "GELU"),
    _activation("tanh", "Tanh"),
    _activation("leaky_relu", "LeakyReLU", LeakyAttrs),
]
