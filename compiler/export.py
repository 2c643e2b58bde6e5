"""Exports of a built network: ONNX (with what a runtime needs to prepare its images in the model's
metadata), weights ported from a reference, and which settings of a file fit a set of weights.

All import torch (and onnx, onnxscript for ONNX: the `onnx` extra).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .emit_torch import port


def export_onnx(model: nn.Module, input_shape: tuple[int, ...], path: str | Path, batch: int = 2,
                metadata: dict[str, str] | None = None) -> None:
    """Write `model` (in eval mode) as ONNX with a dynamic batch dimension; `metadata` goes into the model's
    metadata_props (onnxruntime: `session.get_modelmeta().custom_metadata_map`)."""
    model = model.eval()
    example = torch.zeros(batch, *input_shape)
    torch.onnx.export(model, (example,), str(path), dynamo=True, input_names=["input"], output_names=["logits"],
                      dynamic_shapes={"x": {0: torch.export.Dim("batch", min=1)}}, external_data=False, verbose=False)
    if metadata:
        import onnx

        exported = onnx.load(str(path))
        for key, value in metadata.items():
            entry = exported.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.save(exported, str(path))


def fitting_settings(path: str | Path, state: dict[str, torch.Tensor], params: dict[str, Any],
                     input: tuple[int, int, int] | None = None) -> tuple[list[str], dict[str, int]]:
    """(the settings of `path` whose network takes `state` position by position, written as command-line
    flags; the tensor count of each variant). Every candidate is built, on the meta device (no weights
    are allocated): each variant, and each with `num_classes` set to the classifier width `state` ends with.

        >>> import archc, torch
        >>> with torch.device("meta"):
        ...     state = archc.build(archc.zoo_path("resnet.arch"), variant="resnet50", num_classes=4).state_dict()
        >>> fitting_settings(archc.zoo_path("resnet.arch"), state, {})[0]
        ['--variant resnet50 --set num_classes=4']
    """
    from .check import build_graph

    graph = build_graph(path, input=input, **params)
    variants = [None, *graph.program.variants]
    widths = {int(t.shape[0]) for t in list(state.values())[-2:] if t.ndim >= 1}  # the classifier's weight, bias
    declares_classes = "num_classes" in graph.params
    shapes = [tuple(t.shape) for t in state.values()]
    fits, counts = [], {}
    for variant in variants:
        for classes in [None, *sorted(widths)] if declares_classes else [None]:
            chosen = {**params, **({"num_classes": classes} if classes is not None else {})}
            ours = _meta_shapes(path, variant, input, chosen)
            if classes is None:
                counts[variant or "(default)"] = len(ours)
            if ours == shapes:
                flags = ([f"--variant {variant}"] if variant else []) + \
                        ([f"--set num_classes={classes}"] if classes is not None else [])
                fits.append(" ".join(flags) or "the file's defaults")
                break
    return fits, counts


def _meta_shapes(path, variant, input, params) -> list[tuple[int, ...]]:
    import archc

    from .check import UsageError
    from ..dsl.diagnostics import ArchError

    try:
        with torch.device("meta"):
            model = archc.build(path, variant=variant, input=input, **params)
        return [tuple(t.shape) for t in model.state_dict().values()]
    except (ArchError, UsageError, ValueError):  # a setting this variant does not take
        return []


def torchvision_reference(name: str, pretrained: bool = False) -> nn.Module:
    """torchvision's builder `name`, randomly initialised unless `pretrained` (which downloads)."""
    import torchvision

    try:
        builder = torchvision.models.get_model_builder(name)
    except ValueError:
        choices = ", ".join(sorted(torchvision.models.list_models(torchvision.models)))
        raise ValueError(f"torchvision has no model '{name}' (it has: {choices})") from None
    with warnings.catch_warnings():
        # GoogLeNet's and Inception v3's "default weight initialization will be changed" FutureWarning: their
        # initial weights are overwritten by the port (random ones) or are the pretrained weights
        warnings.filterwarnings("ignore", message="The default weight initialization", category=FutureWarning)
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
