"""The in-memory emitter: a torch.nn.Module built from the checked graph.

    >>> import torch, archc
    >>> model = archc.build(archc.zoo_path("nin.arch")).eval()
    >>> model(torch.zeros(2, 1, 224, 224)).shape
    torch.Size([2, 10])

Every layer's module comes from its op spec (`Op.torch_module`), placed at the
layer's dotted path, so parameters are registered in the order the network
computes them and the state_dict keys read like torchvision's
(`features.1.conv2d_1.conv.weight`: row 1's block, its second
`conv2d` statement, the conv in it; see compiler/naming.py). Shapes come from the graph; nothing is inferred here.
`forward` runs the graph's layers in build order; the joins (residual add,
concat, gate multiply) are the only computation written here. Activations
and residual adds whose input nothing else reads run in place, as
torchvision's do (compiler/inplace.py; the source emitter does the same).
"""

from __future__ import annotations

import torch
from torch import nn

from .graph import Graph
from .inplace import in_place_layers


class Network(nn.Module):
    """A network built from a checked graph.

    In eval mode it returns the logits; in training mode, when the graph has
    auxiliary heads, a tuple of the logits and each head's output in the order
    the heads are declared (GoogLeNet and Inception v3 train on both).
    """

    def __init__(self, graph: Graph, name: str = "network"):
        super().__init__()
        self.network_name = name
        index = {"input": 0}
        steps = []
        in_place = in_place_layers(graph)  # activations and adds that may overwrite an input, as torchvision's
        for layer in graph.layers():
            module = None
            if layer.spec.callable_:
                extra = {"inplace": True} if layer.name in in_place else {}
                module = layer.spec.torch_module(layer.attrs, layer.in_shapes, **extra)
                _place(self, layer.name, module)
            index[layer.name] = len(index)
            inputs = tuple(index[i] for i in layer.inputs)
            op = layer.op
            if op == "add" and layer.name in in_place:  # into the input nothing else reads: a += b
                written = in_place[layer.name]
                op, inputs = "add_", (inputs[written], *inputs[:written], *inputs[written + 1:])
            steps.append((op, module, inputs, layer.aux))
        self._output = index[graph.result]
        self._aux = [index[name] for name in graph.aux.values()]
        # Drop each value after its last use, as a hand-written forward does by
        # reassigning x: held to the end, resnet18's unused activations cost
        # 7% of a CPU training step (benchmarks/emit_overhead.py).
        keep = {self._output, *self._aux}
        last_use = {}
        for step, (_op, _module, inputs, _aux) in enumerate(steps):
            for value in inputs:
                last_use[value] = step
        frees: list[list[int]] = [[] for _ in steps]
        for value, step in last_use.items():
            if value not in keep:
                frees[step].append(value)
        self._steps = [(op, module, inputs, aux, tuple(free)) for (op, module, inputs, aux), free in zip(steps, frees)]

    def forward(self, x: torch.Tensor):
        values = [x]
        with_aux = self.training and bool(self._aux)
        for op, module, inputs, aux, free in self._steps:
            if aux and not with_aux:
                values.append(None)  # training-only heads are skipped in eval mode
                continue
            if module is not None:
                values.append(module(values[inputs[0]]))
            elif op == "add":
                values.append(values[inputs[0]] + values[inputs[1]])
            elif op == "add_":
                values.append(values[inputs[0]].add_(values[inputs[1]]))
            elif op == "concat":
                values.append(torch.cat([values[i] for i in inputs], dim=1))
            else:  # multiply: a gate scales the feature map
                values.append(values[inputs[0]] * values[inputs[1]])
            for value in free:
                values[value] = None
        if with_aux:
            return (values[self._output], *[values[i] for i in self._aux])
        return values[self._output]


def _place(root: nn.Module, path: str, module: nn.Module) -> None:
    """Put `module` at the dotted `path`, creating plain container modules on the way."""
    *parents, leaf = path.split(".")
    node = root
    for part in parents:
        child = node._modules.get(part)
        if child is None:
            child = nn.Module()
            node.add_module(part, child)
        node = child
    node.add_module(leaf, module)


def port(model: nn.Module, reference: dict[str, torch.Tensor] | nn.Module) -> list[tuple[str, str]]:
    """Copy a reference's weights into `model`, tensor by tensor in registration order.

    Returns the (model key, reference key) pairs. Raises ValueError naming the
    first tensor whose shape does not fit, or when the counts differ.
    """
    theirs = reference.state_dict() if isinstance(reference, nn.Module) else reference
    ours = model.state_dict()
    if len(ours) != len(theirs):
        raise ValueError(f"the model has {len(ours)} tensors, the reference {len(theirs)}")
    pairs, new_state = [], {}
    for (key, mine), (ref_key, value) in zip(ours.items(), theirs.items()):
        if tuple(mine.shape) != tuple(value.shape):
            raise ValueError(f"{key} {tuple(mine.shape)} does not fit the reference's {ref_key} {tuple(value.shape)}")
        new_state[key] = value.detach().clone()
        pairs.append((key, ref_key))
    model.load_state_dict(new_state)
    return pairs
