"""Which layers may overwrite a tensor they are given: the emitters build those activations
with `inplace=True` and run those residual adds as `x += shortcut`.

torchvision writes `nn.ReLU(inplace=True)` (and Hardswish, SiLU) after every conv + batch norm
and `out += identity` at every residual join: no new tensor each time, which on a CPU makes a
training step faster (measured on this project's 2-core machine, one thread, batch 8 at 128 px:
in-place activations +3.7% for MobileNetV3-Large and +2.3% for ResNet-50; in-place adds a
further +2% for ResNet-50). A layer may do so when nothing else can see the value it overwrites:

- an activation needs an in-place form that computes the same bits, forward and backward
  (`Op.in_place`: relu, relu6, hardswish, hardsigmoid, silu, leaky_relu; not sigmoid, tanh or
  gelu); an add can write into either of its inputs (a + b and b + a are the same bits);
- the value it overwrites is read by nothing else: one consumer in the graph, not the network's
  input (the caller's tensor), not an output or an aux head's tap;
- and it was made by an op that does not keep its output for its own backward (activations
  do): conv, batch norm, linear, add, multiply and concat keep only their inputs, or nothing
  (`Op.keeps_inputs_only`). identity, dropout and stochastic depth may return the very tensor
  they were given in eval mode (`Op.identity_at_eval`), so through them the same holds for
  their input.
"""

from __future__ import annotations

from collections import Counter

from .graph import Graph


def in_place_layers(graph: Graph) -> dict[str, int]:
    """The layers that can run in place: name -> the position of the input they overwrite."""
    readers = Counter(name for layer in graph.layers() for name in layer.inputs)
    returned = {graph.result, *graph.outputs.values(), *graph.aux.values()}

    def writable(name: str) -> bool:
        while True:
            producer = graph.nodes.get(name)
            if producer is None or readers[name] != 1 or name in returned:  # "input" has no producer
                return False
            if producer.spec.keeps_inputs_only:
                return True
            if not producer.spec.identity_at_eval:
                return False
            name = producer.inputs[0]

    found = {}
    for layer in graph.layers():
        if layer.spec.in_place and len(layer.inputs) == 1 and writable(layer.inputs[0]):
            found[layer.name] = 0
        elif layer.op == "add":
            position = next((i for i, name in enumerate(layer.inputs) if writable(name)), None)
            if position is not None:
                found[layer.name] = position
    return found
