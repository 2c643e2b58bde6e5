"""Element-wise activations: no parameters, output shape = input shape."""

from __future__ import annotations

from .base import Attrs, Op


class LeakyAttrs(Attrs):
    negative_slope: float = 0.01


def _activation(op_name: str, torch_name: str, attrs: type[Attrs] = Attrs) -> type[Op]:
    return type(op_name.title(), (Op,), {"name": op_name, "Attrs": attrs, "doc": f"{op_name}(): torch.nn.{torch_name}",
                                          "torch_name": torch_name})


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
