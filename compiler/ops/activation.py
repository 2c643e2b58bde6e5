"""Element-wise activations: no parameters, output shape = input shape."""

from __future__ import annotations

from .base import Arg, Attrs, Op, free


class LeakyAttrs(Attrs):
    negative_slope: float = 0.01


class Activation(Op):
    category = "activation"
    # thop knows ReLU, ReLU6 and LeakyReLU and prices them at zero; fvcore skips them all
    thop = fvcore = staticmethod(free)


def _activation(op_name: str, torch_name: str, attrs: type[Attrs] = Attrs, in_place: bool = False,
                args: tuple[Arg, ...] = ()) -> type[Op]:
    return type(op_name.title(), (Activation,), {"name": op_name, "Attrs": attrs, "module": f"nn.{torch_name}",
                                                 "args": args, "in_place": in_place,
                                                 "doc": f"{op_name}(): torch.nn.{torch_name}"})


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
    _activation("leaky_relu", "LeakyReLU", LeakyAttrs, in_place=True,
                args=(Arg("negative_slope", "negative_slope", default=0.01),)),
]
