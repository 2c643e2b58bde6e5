"""What autograd really saves for backward in one training step: the oracle that compiler/train_memory.py's
static figure is compared with (tests/test_train_memory.py, benchmarks/train_memory.py).

`torch.autograd.graph.saved_tensors_hooks` sees every tensor a backward function keeps. A storage is
counted once however many tensors view it (an in-place ReLU's output is its input's storage), and the
model's own parameters and buffers are left out: they exist whether or not the step trains.
"""

from __future__ import annotations

from types import SimpleNamespace

import torch
from torch import nn

from .trainer import _loss


def measured_saved_bytes(model: nn.Module, shape, batch: int, amp: bool = False, channels_last: bool = False,
                         smoothing: float = 0.0) -> int:
    """Bytes of the distinct storages autograd saves in one training step (forward, the trainer's loss,
    backward) of `model` on a random batch of `batch` inputs of `shape`, on the CPU; bfloat16 autocast
    when `amp`."""
    torch.manual_seed(0)
    model.train()
    x = torch.rand(batch, *shape)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    state = {t.untyped_storage().data_ptr() for t in [*model.parameters(), *model.buffers()]}
    seen, held = {}, []

    def pack(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in state:
            seen[storage.data_ptr()] = storage.nbytes()
        held.append(t)  # alive until the step ends: no storage is freed and its address reused meanwhile
        return t

    plan = SimpleNamespace(cfg=SimpleNamespace(label_smoothing=smoothing, aux_weight=0.3))
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), \
            torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
        output = model(x)
        classes = (output[0] if isinstance(output, tuple) else output).shape[1]
        labels = torch.randint(0, classes, (batch,))
        loss, _ = _loss(plan, output, labels)
    loss.backward()
    return sum(seen.values())
