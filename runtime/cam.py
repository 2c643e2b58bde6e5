"""Class activation maps (Zhou et al. 2016, "Learning Deep Features for Discriminative
Localization"; seed 004): for a network that ends in global average pooling and a linear
classifier, the logit of class c is b_c + mean over positions of M_c, where

    M_c(x, y) = Σ_k w_ck · f_k(x, y)

f_k is channel k of the last feature map (the pooling's input) and w_c the classifier's row
for c. M_c, upsampled to the image, shows where the evidence for c lies.

Other heads after the pooling (MobileNetV3's linear → hardswish → dropout → linear) get Grad-CAM
(Selvaraju et al. 2017, "Grad-CAM: Visual Explanations from Deep Networks via Gradient-based
Localization", eq. 1–2): α_ck = mean over positions of ∂y_c/∂f_k(x, y), and the map is
ReLU(Σ_k α_ck · f_k). For a GAP + linear head α_ck = w_ck / (h·w), so Grad-CAM is CAM rescaled
with its negative part cut; CAM, exact, is kept there.

The head is read from the checked graph, not guessed from module names: from the network's
output back through layers of one input to a global average pooling. Without a linear layer
(NiN: a 1×1 conv with a channel per class, then the pooling) the pooled channels are the classes,
and M_c is channel c itself. A network with no such pooling, or with a join after it, is refused
with the reason.

The map is drawn on the image as the network saw it, the view `archc predict` and `archc eval`
use (runtime/data.py's load_view: the short side resized to the checkpoint's eval_resize, then a
centre crop to its input), with a colour bar and a caption saying so.

    >>> import torch, archc
    >>> from archc.compiler.check import build_graph
    >>> from archc.runtime.cam import cam_head, class_activation_map
    >>> graph = build_graph(archc.zoo_path("nin.arch"))
    >>> head = cam_head(graph)
    >>> head.pool, head.linear, head.method
    ('classifier.0', None, 'cam')
    >>> model = archc.build(archc.zoo_path("nin.arch")).eval()
    >>> cam, logits, index = class_activation_map(model, head, torch.rand(1, 224, 224), 3)
    >>> cam.shape, bool(torch.isclose(cam.mean(), logits[3], atol=1e-5))   # logit = mean of the map
    (torch.Size([5, 5]), True)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from ..compiler.graph import Graph, Layer
from ..compiler.ops import OPS

def _passes_through(op: str) -> bool:
    """No effect on a pooled vector at eval: what returns its input at eval (dropout, identity, stochastic
    depth: `Op.identity_at_eval`) and what only reshapes it (flatten)."""
    spec = OPS[op]
    return spec.identity_at_eval or spec.reshapes


class CamError(ValueError):
    """The network has no head a class activation map can be read from; the message says why."""


@dataclass(frozen=True)
class CamHead:
    pool: str  # the global average pooling layer: its input is the feature map f
    feature: str  # the layer producing f (for messages)
    linear: str | None  # CAM's classifier whose weights are w; None when the pooled channels are the classes
    channels: int  # K, the feature map's channels
    method: str = "cam"  # "cam" (GAP, then at most one linear layer) or "grad-cam" (any other head)


def _is_global_average(layer: Layer) -> bool:
    if layer.op == "global_avgpool":
        return True
    return layer.op == "adaptive_avgpool" and layer.out_shape[1:] == (1, 1)


def cam_head(graph: Graph, network: str = "the network") -> CamHead:
    """Where the map comes from in `graph`; CamError naming the head's layers when it has no such head."""
    name, linears, seen = graph.result, [], []
    while name != "input":
        layer = graph.layer(name)
        if _is_global_average(layer):
            feature = layer.inputs[0]
            if feature == "input":
                raise CamError(f"{network} pools its input directly: there is no feature map to draw")
            simple = len(linears) <= 1 and all(op == "linear" or _passes_through(op) for op in seen)
            return CamHead(pool=name, feature=feature, linear=linears[0] if simple and linears else None,
                           channels=layer.out_shape[0], method="cam" if simple else "grad-cam")
        if len(layer.inputs) != 1:
            chain = " ← ".join(seen + [layer.op])
            raise CamError(f"{network} joins branches at {name} ({layer.op}) after its last global average pooling "
                           f"(from its output back: {chain}); a class activation map needs one path from the pooling "
                           "to the output")
        seen.append(layer.op)
        if layer.op == "linear":
            linears.append(name)
        name = layer.inputs[0]
    chain = " ← ".join(seen[:8]) + (" ← …" if len(seen) > 8 else "")
    raise CamError(f"{network} has no global average pooling before its output (from its output back: {chain}), "
                   "so it has no class activation map")


def features_and_logits(model: torch.nn.Module, head: CamHead, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(f [K, h, w], logits [classes]) of one image x [C, H, W], `model` in eval mode.

    f is taken with a forward hook on the pooling module, so it is exactly what the classifier saw.
    """
    grabbed: list[torch.Tensor] = []
    pool = model.get_submodule(head.pool)
    hook = pool.register_forward_hook(lambda _module, inputs, _output: grabbed.append(inputs[0]))
    try:
        with torch.no_grad():
            logits = model(x.unsqueeze(0))[0]
    finally:
        hook.remove()
    return grabbed[0][0].float(), logits


def map_of(model: torch.nn.Module, head: CamHead, features: torch.Tensor, class_index: int) -> torch.Tensor:
    """CAM's M_c [h, w] from the feature map: Σ_k w_ck f_k, or channel c itself when the head has no linear layer."""
    if head.linear is None:
        return features[class_index]
    weight = model.get_submodule(head.linear).weight[class_index].detach().float()  # w_c, [K]
    return torch.einsum("k,khw->hw", weight, features)


def grad_cam(model: torch.nn.Module, head: CamHead, x: torch.Tensor,
             choose: Callable[[torch.Tensor], int]) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(Grad-CAM's ReLU(Σ_k α_ck f_k) [h, w], the logits, c = choose(logits)) of one image x [C, H, W].

    f enters the pooling as a fresh leaf (a forward pre-hook), so the gradient is the head's alone
    and no parameter gradient is kept.
    """
    grabbed: list[torch.Tensor] = []

    def leaf(_module, inputs):
        grabbed.append(inputs[0].detach().requires_grad_(True))
        return (grabbed[-1], *inputs[1:])

    hook = model.get_submodule(head.pool).register_forward_pre_hook(leaf)
    try:
        with torch.enable_grad():
            logits = model(x.unsqueeze(0))[0]
            index = choose(logits.detach())
            (gradient,) = torch.autograd.grad(logits[index], grabbed[0])
    finally:
        hook.remove()
    features, gradient = grabbed[0][0].detach().float(), gradient[0].float()
    alpha = gradient.mean(dim=(1, 2))  # α_ck: eq. 1, the gradient averaged over the positions
    return torch.relu(torch.einsum("k,khw->hw", alpha, features)), logits.detach(), index


def class_activation_map(model: torch.nn.Module, head: CamHead, x: torch.Tensor,
                         class_index: int | Callable[[torch.Tensor], int]) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(the map of one image x [C, H, W] at the feature map's resolution [h, w], the logits [classes], the class).

    `class_index`: an index, or a function of the logits choosing one (the predicted class: argmax).
    """
    def choose(logits: torch.Tensor) -> int:
        index = class_index(logits) if callable(class_index) else class_index
        if not 0 <= index < logits.shape[0]:
            raise CamError(f"class index {index} is out of range: the network has {logits.shape[0]} classes")
        return index

    if head.method == "grad-cam":
        return grad_cam(model, head, x, choose)
    features, logits = features_and_logits(model, head, x)
    index = choose(logits)
    return map_of(model, head, features, index), logits, index


# --- from a checkpoint ----------------------------------------------------------------------------


def class_index(choice: str | None, classes: list[str], logits: torch.Tensor) -> int:
    """--class as a name or an index; the predicted class when not given."""
    if choice is None:
        return int(logits.argmax())
    if choice in classes:
        return classes.index(choice)
    if choice.strip().isdigit() and int(choice) < len(classes):
        return int(choice)
    import difflib

    close = difflib.get_close_matches(choice, classes, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else f" (the classes: {', '.join(classes[:20])})"
    raise CamError(f"--class {choice!r} is neither a class name nor an index below {len(classes)}{hint}")


def cam_for_image(checkpoint, image_path, output, class_: str | None = None, alpha: float = 0.5) -> dict:
    """Write the class activation map of `image_path` to `output`: drawn over the view `archc predict`
    classifies (runtime/data.py's load_view), with a colour bar and a caption.

    Returns {"class", "index", "probability", "method", "feature_layer", "map", "view", "notes"}
    (map: at the feature map's resolution, before upsampling and normalising; view: the PIL view).
    """
    from .cam_picture import picture
    from .checkpoint import CheckpointError, graph_of_checkpoint
    from .data import load_view
    from .infer import open_checkpoint

    if not 0.0 <= alpha <= 1.0:
        raise CamError(f"--alpha is the heat map's opacity in [0, 1], got {alpha}")
    model, ckpt = open_checkpoint(checkpoint)
    try:
        graph = graph_of_checkpoint(ckpt)
    except CheckpointError as error:
        raise CamError(f"{checkpoint}: {error}") from None
    head = cam_head(graph, ckpt["network"])
    view = load_view(image_path, ckpt)
    classes = list(ckpt["classes"])
    device = next(model.parameters()).device
    cam, logits, index = class_activation_map(model, head, view.input.to(device),
                                              lambda logits: class_index(class_, classes, logits))
    cam = cam.cpu()
    probability = float(torch.softmax(logits.float(), dim=0)[index])
    _, height, width = ckpt["input"]
    described = f"short side resized to {ckpt['eval_resize']}, centre crop {width}x{height}"  # the font has no ×
    caption = [f"{classes[index]!r}: p = {probability:.1%}; {'Grad-CAM' if head.method == 'grad-cam' else 'CAM'} "
               f"of {head.feature} ({cam.shape[1]}x{cam.shape[0]})",
               f"the view archc predict classifies: {described}"]
    try:
        picture(view.image, cam, alpha, caption).save(output)
    except (OSError, ValueError) as error:  # an unwritable path, an extension PIL does not know
        raise CamError(f"cannot write {output}: {error}") from None
    notes = [view.note] if view.note else []
    if cam.shape[0] * cam.shape[1] == 1:
        notes.append(f"the feature map is 1×1 for this {width}×{height} input, so the map has no spatial "
                     "detail; a larger input (archc train --input) gives one")
    return {"class": classes[index], "index": index, "probability": probability, "method": head.method,
            "feature_layer": head.feature, "map": cam, "view": view.image, "view_described": described,
            "notes": notes}
