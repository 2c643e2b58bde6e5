"""Training memory, statically: what autograd saves for backward in a training step, the weights, their
gradients and the optimizer's state, and from them a training peak and the largest batch that trains in
a memory budget.

The saved-for-backward figure is exact: it is what `torch.autograd.graph.saved_tensors_hooks` records in
a training step of the module `archc.build` returns (train mode, the trainer's in-place activations and
adds, compiler/inplace.py), and of the trainer's loss (cross-entropy on the float32 logits of every head),
counted once per storage, less the model's own parameters and buffers, which exist anyway
(tests/test_train_memory.py compares the two for every zoo network at two batch sizes). Each op's spec
says what its backward keeps (`Op.saved`, compiler/ops/): its input, its output, or tensors it makes (a
dropout mask, max-pool indices, batch norm's batch statistics, a copy of an input an in-place op
overwrites). A tensor that several layers keep (a block's input, read by every branch's first conv) is
counted once, and so is a storage that several values share (an in-place ReLU's output is its input's
storage; flatten is a view). Under bfloat16 autocast conv and linear layers keep bfloat16 copies of a
float32 input and of their weights, and compute in bfloat16; the ops torch's autocast runs in float32
(`Op.autocast`) keep float32. channels_last changes no size.

The peak adds what a step holds besides: gradients as large as the weights, the optimizer's state
(SGD with momentum: one tensor per weight; Adam and AdamW: two, and a step count), and while backward runs
the gradients flowing through the largest layer (twice its largest output). It is an estimate of what
`torch.cuda.max_memory_allocated` reports, not exact: the allocator rounds blocks up and keeps freed ones.
On a card, the budget given with --memory also holds what the CUDA context and libraries take before the
first tensor (`CUDA_CONTEXT` below: an assumption, stated in docs/language.md).

    >>> from archc.compiler.check import build_graph
    >>> from archc.compiler.program import library_dir
    >>> graph = build_graph(library_dir() / "nin.arch")
    >>> saved = saved_bytes(graph)
    >>> saved.total(2), saved.total(3)
    (15355860, 23033788)
"""

from __future__ import annotations

from math import prod

from ..dsl.record import Record
from .graph import Graph
from .inplace import in_place_layers

DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "int64": 8, "bool": 1}
OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")
# Assumptions for a budget on a card (docs/language.md, "Training memory"), not measured here (no GPU was
# lent to the work that wrote this): what the CUDA context, cuDNN and cuBLAS take before the first tensor,
# and how much more than its tensors' bytes the caching allocator holds for a batch's tensors (it rounds
# and splits blocks; reserved memory commonly exceeds allocated by 10-30%). With them the largest training
# batches of seed 000's 6 GB card come within 9% (tests/test_train_memory.py).
CUDA_CONTEXT = 512 * 2**20
ALLOCATOR_OVERHEAD = 1.15


class Recipe(Record):
    """The trainer's settings that change what a step holds (runtime/config.py's names)."""

    amp: bool = False  # bfloat16 autocast
    channels_last: bool = False
    optimizer: str = "adamw"
    momentum: float = 0.9  # SGD's and RMSprop's
    label_smoothing: float = 0.0


class Saved(Record, frozen=False):
    """The saved-for-backward bytes of a training step as a line in the batch: per layer (each storage
    counted at the first layer that keeps it) and for the loss, (bytes per sample, bytes in all)."""

    layers: dict[str, tuple[int, int]] = {}
    loss: tuple[int, int] = (0, 0)

    def at(self, batch: int) -> dict[str, int]:
        """Each layer's bytes at `batch`."""
        return {name: batch * per + fixed for name, (per, fixed) in self.layers.items()}

    def total(self, batch: int) -> int:
        per = sum(p for p, _ in self.layers.values()) + self.loss[0]
        fixed = sum(f for _, f in self.layers.values()) + self.loss[1]
        return batch * per + fixed

    def loss_at(self, batch: int) -> int:
        return batch * self.loss[0] + self.loss[1]


def saved_bytes(graph: Graph, recipe: Recipe = Recipe()) -> Saved:
    """What autograd keeps for backward in one training step (see the module's docstring): every tensor
    is a whole number of samples' worth, or of a fixed size (batch statistics, bfloat16 weight copies)."""
    in_place = in_place_layers(graph)
    storage = {"input": "input"}  # value -> the storage it lives in
    dtype = {"input": "float32"}
    storage_bytes = {"input": prod(graph.input_shape) * DTYPE_BYTES["float32"]}  # per sample: a view (chunk)
    # saved keeps all of its storage alive
    for name, shape in graph.placeholders.items():  # after an error, a row's stated input (compiler/tables.py)
        storage[name], dtype[name], storage_bytes[name] = name, "float32", prod(shape) * DTYPE_BYTES["float32"]
    kept: set = set()
    result = Saved()

    def size(value: str) -> int:  # per sample
        return prod(graph.shape_of(value)) * DTYPE_BYTES[dtype[value]]

    for layer in graph.layers():
        spec = layer.spec
        kinds = [dtype[i] for i in layer.inputs]
        if recipe.amp and spec.autocast == "lower":
            compute = "bfloat16"
        elif recipe.amp and spec.autocast == "float32":
            compute = "float32"
        else:
            compute = "float32" if "float32" in kinds else "bfloat16"
        dtype[layer.name] = compute
        if layer.name in in_place:
            storage[layer.name] = storage[layer.inputs[in_place[layer.name]]]
        elif spec.returns_input(layer):
            storage[layer.name] = storage[layer.inputs[0]]
        else:
            storage[layer.name] = layer.name
            storage_bytes[layer.name] = size(layer.name)
        per_sample = fixed = 0
        for n, item in enumerate(spec.saved(layer, layer.name in in_place)):
            if item.of == "weight":
                if not recipe.amp or spec.autocast != "lower":
                    continue  # the parameter itself
                key, nbytes, scales = (layer.name, "weight"), prod(layer.params["weight"]) * 2, False
            elif item.of in ("input", "output"):
                value = layer.inputs[item.index] if item.of == "input" else layer.name
                if item.of == "input" and spec.autocast == "lower" and compute != dtype[value]:
                    # autocast's copy of a float32 input in bfloat16
                    key, nbytes = (layer.name, "cast", item.index), prod(graph.shape_of(value)) * DTYPE_BYTES[compute]
                else:
                    key = storage[value]
                    nbytes = storage_bytes[key]
                scales = True
            else:
                key, scales = (layer.name, n), item.per_sample
                nbytes = prod(item.shape) * DTYPE_BYTES[compute if item.dtype == "compute" else item.dtype]
            if key not in kept:
                kept.add(key)
                if scales:
                    per_sample += nbytes
                else:
                    fixed += nbytes
        result.layers[layer.name] = (per_sample, fixed)
    result.loss = loss_bytes(graph, recipe)
    return result


def loss_bytes(graph: Graph, recipe: Recipe = Recipe()) -> tuple[int, int]:
    """The trainer's loss (runtime/trainer.py `_loss`), (per sample, in all): per head, log_softmax keeps its
    float32 result and nll_loss a scalar total weight (with label smoothing also a mask of the ignored
    labels and a count); the labels, int64, once."""
    heads = [graph.result, *graph.aux.values()]
    smoothing = recipe.label_smoothing > 0
    per_sample = sum(prod(graph.shape_of(h)) * 4 for h in heads) + 8 + (len(heads) if smoothing else 0)
    return per_sample, len(heads) * (4 + (8 if smoothing else 0))


class Step(Record):
    """The memory of one training step: bytes of each part, and the estimated peak."""

    batch: int
    params: int
    buffers: int
    gradients: int
    optimizer: int
    saved: int
    transient: int

    @property
    def peak(self) -> int:
        return self.params + self.buffers + self.gradients + self.optimizer + self.saved + self.transient


def optimizer_bytes(graph: Graph, recipe: Recipe) -> int:
    """The optimizer's state for float32 weights: momentum buffers, Adam's two moments and step counts."""
    params = sum(l.param_count for l in graph.layers())
    tensors = sum(len(l.params) for l in graph.layers())
    if recipe.optimizer == "sgd":
        return 4 * params if recipe.momentum > 0 else 0
    if recipe.optimizer in ("adam", "adamw"):
        return 8 * params + 4 * tensors
    if recipe.optimizer == "rmsprop":
        return 4 * params * (2 if recipe.momentum > 0 else 1) + 4 * tensors
    raise ValueError(f"unknown optimizer {recipe.optimizer!r}: one of {', '.join(OPTIMIZERS)}")


def step_memory(graph: Graph, batch: int, recipe: Recipe = Recipe(), saved: Saved | None = None) -> Step:
    """The step at `batch` (`saved`: the graph's saved_bytes under `recipe`, where the caller has it)."""
    saved = saved or saved_bytes(graph, recipe)
    layers = graph.layers()
    params = 4 * sum(l.param_count for l in layers)
    buffers = sum(4 * prod(s) if s else 8 for l in layers for s in l.buffers.values())  # the step count: int64
    compute = 2 if recipe.amp else 4
    largest = max((prod(l.out_shape) for l in layers), default=0)
    return Step(batch=batch, params=params, buffers=buffers, gradients=params, optimizer=optimizer_bytes(graph, recipe),
                saved=saved.total(batch), transient=2 * batch * largest * compute)


def largest_batch(graph: Graph, budget: int, recipe: Recipe = Recipe(), context: int = CUDA_CONTEXT,
                  overhead: float = ALLOCATOR_OVERHEAD, saved: Saved | None = None) -> int:
    """The largest batch whose estimated training peak fits `budget` bytes less `context`, the batch's
    tensors taking `overhead` times their bytes (0 where not even one sample fits). Every part of a step
    is affine in the batch, so two steps give the line."""
    saved = saved or saved_bytes(graph, recipe)
    one, two = step_memory(graph, 1, recipe, saved).peak, step_memory(graph, 2, recipe, saved).peak
    per_sample, fixed = two - one, 2 * one - two
    room = budget - context - fixed
    return max(0, int(room // (per_sample * overhead))) if per_sample > 0 else 0
