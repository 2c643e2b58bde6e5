"""Element-wise activations: no parameters, output shape = input shape."""

from __future__ import annotations

from .base import Arg, Attrs, Op, Saved, free, input_elements, keeps_input, keeps_output, pointwise


class LeakyAttrs(Attrs):
    negative_slope: float = 0.01


class Activation(Op):
    category = "activation"
    # thop knows ReLU, ReLU6 and LeakyReLU and prices them at zero; fvcore skips them all; calflops counts
    # no MACs for any
    thop = fvcore = calflops = staticmethod(free)
    window = staticmethod(pointwise)


def twice(layer, batch: int) -> int:
    """ptflops on nn.ReLU and nn.GELU: its module hook counts the output's elements, and its patch of F.relu
    (F.gelu), which the module's forward calls, counts the input's again."""
    return 2 * input_elements(layer, batch)


def keeps_a_copy_in_place(layer, in_place: bool) -> tuple[Saved, ...]:
    """The backward needs the input; run in place (hardtanh_, hardswish_, hardsigmoid_, silu_), autograd
    keeps a copy of the input the op overwrites."""
    return (Saved("new", shape=layer.in_shapes[0]),) if in_place else (Saved("input"),)


def _activation(op_name: str, torch_name: str, attrs: type[Attrs] = Attrs, in_place: bool = False,
                args: tuple[Arg, ...] = (), ptflops=free, calflops_flops=free, saved=keeps_input) -> type[Op]:
    return type(op_name.title(), (Activation,), {"name": op_name, "Attrs": attrs, "module": f"nn.{torch_name}",
                                                 "args": args, "in_place": in_place,
                                                 "doc": f"{op_name}(): torch.nn.{torch_name}",
                                                 "ptflops": staticmethod(ptflops),
                                                 "calflops_flops": staticmethod(calflops_flops),
                                                 "saved": staticmethod(saved)})


# in_place: torch's inplace form gives the same bits, forward and backward (tests/test_inplace.py);
# sigmoid, tanh and gelu have none.
# ptflops (0.7.5, its default pytorch backend): module hooks for ReLU, ReLU6, LeakyReLU and GELU (one per
# output element) and patches of F.relu, F.gelu and F.silu (one per input element); nn.ReLU6 calls
# F.hardtanh, nn.LeakyReLU F.leaky_relu, which it does not patch. calflops (0.3.2) patches F.relu,
# F.leaky_relu, F.silu and F.gelu (a FLOP per element), not F.hardtanh, F.hardswish, F.hardsigmoid,
# sigmoid or tanh.
# saved: what each backward reads, its input or its output (tests/test_train_memory.py)
ACTIVATIONS = [
    _activation("relu", "ReLU", in_place=True, ptflops=twice, calflops_flops=input_elements, saved=keeps_output),
    _activation("relu6", "ReLU6", in_place=True, ptflops=input_elements, saved=keeps_a_copy_in_place),
    _activation("hardswish", "Hardswish", in_place=True, saved=keeps_a_copy_in_place),
    _activation("hardsigmoid", "Hardsigmoid", in_place=True, saved=keeps_a_copy_in_place),
    _activation("sigmoid", "Sigmoid", saved=keeps_output),
    _activation("silu", "SiLU", in_place=True, ptflops=input_elements, calflops_flops=input_elements,
                saved=keeps_a_copy_in_place),
    _activation("gelu", "GELU", ptflops=twice, calflops_flops=input_elements),
    _activation("tanh", "Tanh", saved=keeps_output),
    # in place, leaky_relu_ keeps its result, which is its input's storage
    _activation("leaky_relu", "LeakyReLU", LeakyAttrs, in_place=True, ptflops=input_elements,
                calflops_flops=input_elements, args=(Arg("negative_slope", "negative_slope", default=0.01),)),
]
