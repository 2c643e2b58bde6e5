"""Exports of a built network: ONNX, and weights ported from a reference.

Both import torch (and onnx, onnxscript for ONNX: the `onnx` extra).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .emit_torch import port


def export_onnx(model: nn.Module, input_shape: tuple[int, ...], path: str | Path, batch: int = 2) -> None:
    """Write `model` (in eval mode) as ONNX with a dynamic batch dimension."""
    model = model.eval()
    example = torch.zeros(batch, *input_shape)
    torch.onnx.export(model, (example,), str(path), dynamo=True, input_names=["input"], output_names=["logits"],
                      dynamic_shapes={"x": {0: torch.export.Dim("batch", min=1)}}, external_data=False, verbose=False)


def torchvision_reference(name: str, pretrained: bool = False) -> nn.Module:
    """torchvision's builder `name`, randomly initialised unless `pretrained` (which downloads)."""
    import torchvision

    try:
        builder = torchvision.models.get_model_builder(name)
    except ValueError:
        choices = ", ".join(sorted(torchvision.models.list_models(torchvision.models)))
        raise ValueError(f"torchvision has no model '{name}' (it has: {choices})") from None
    return builder(weights="DEFAULT" if pretrained else None)


def port_and_compare(model: nn.Module, reference: nn.Module, input_shape: tuple[int, ...], seed: int = 0) -> float:
    """Port the reference's weights into `model`, then return the largest eval-logit
    difference on a seeded random batch, relative to the logits' largest magnitude."""
    port(model, reference)
    model.eval()
    reference.eval()
    x = torch.randn(2, *input_shape, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        expected, actual = reference(x), model(x)
    if isinstance(expected, tuple):
        expected = expected[0]
    scale = float(expected.abs().max()) or 1.0
    return float((expected - actual).abs().max()) / scale
