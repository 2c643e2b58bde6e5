"""The state a run's checkpoint carries besides the weights (the random generators), and what makes a
checkpoint good enough to keep.

"The last good checkpoint" is the promise a stopped run makes, so an epoch is saved only when every
tensor of the model (weights and batch-norm statistics) and of the optimizer is finite, and so is
its validation loss: a learning rate of 1e30 can leave the training loss of the epoch's first steps
finite and the weights, running statistics and validation loss NaN.

    >>> import torch
    >>> model = torch.nn.BatchNorm1d(2)
    >>> not_finite(model.state_dict())
    []
    >>> _ = model.running_var.fill_(float("inf"))
    >>> not_finite(model.state_dict())
    ['running_var']
"""

from __future__ import annotations

import math
import random

import torch

SHOWN = 4  # non-finite tensors named in a message


def seed_everything(seed: int) -> None:
    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict:
    import numpy as np

    kind, keys, position, has_gauss, cached = np.random.get_state()
    return {"torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "python": random.getstate(),
            "numpy": [kind, torch.from_numpy(keys.astype("int64")), position, has_gauss, cached]}


def set_rng_state(state: dict) -> None:
    import numpy as np

    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype("uint32"), position, has_gauss, cached))


def not_finite(state: dict, prefix: str = "") -> list[str]:
    """The names of the floating-point tensors in `state` (nested dicts and lists, as an optimizer's
    state_dict nests them) that hold an inf or a NaN. One look per device: on a GPU, one wait, not one a tensor."""
    named = list(_floating(state, prefix))
    by_device: dict[torch.device, list[int]] = {}
    for index, (_, tensor) in enumerate(named):
        by_device.setdefault(tensor.device, []).append(index)
    bad = set()
    for indices in by_device.values():
        finite = torch.stack([torch.isfinite(named[i][1]).all() for i in indices]).cpu()
        bad |= {i for i, ok in zip(indices, finite.tolist()) if not ok}
    return [named[i][0] for i in sorted(bad)]


def _floating(state, prefix: str):
    items = state.items() if isinstance(state, dict) else enumerate(state)
    for key, value in items:
        name = f"{prefix}{key}"
        if isinstance(value, torch.Tensor):
            if value.is_floating_point():
                yield name, value
        elif isinstance(value, (dict, list, tuple)):
            yield from _floating(value, f"{name}.")


def why_not_good(val_loss: float, model_state: dict, optimizer_state: dict) -> str | None:
    """None when the epoch may be saved as good; else what is wrong, in words."""
    bad = not_finite(model_state) + not_finite(optimizer_state.get("state", {}), "optimizer state ")
    if not math.isfinite(val_loss):
        lead = f"the validation loss is {val_loss}"
        return lead + (f" and {_listed(bad)}" if bad else "")
    return _listed(bad) if bad else None


def _listed(names: list[str]) -> str:
    shown = ", ".join(names[:SHOWN]) + (f" and {len(names) - SHOWN} more" if len(names) > SHOWN else "")
    return f"{len(names)} tensor{'s' if len(names) != 1 else ''} {'are' if len(names) != 1 else 'is'} not finite ({shown})"
