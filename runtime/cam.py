"""Class activation maps (Zhou et al. 2016, "Learning Deep Features for Discriminative
Localization"; seed 004): for a network that ends in global average pooling and a linear
classifier, the logit of class c is b_c + mean over positions of M_c, where

    M_c(x, y) = Σ_k w_ck · f_k(x, y)

f_k is channel k of the last feature map (the pooling's input) and w_c the classifier's row
for c. M_c, upsampled to the image, shows where the evidence for c lies.

The head is read from the checked graph, not guessed from module names: from the network's
output back through flatten/dropout/identity layers to at most one linear layer and then a
global average pooling. Without a linear layer (NiN: a 1×1 conv with a channel per class, then
the pooling) the pooled channels are the classes, and M_c is channel c itself. Any other head
(MobileNetV3's linear → hardswish → dropout → linear) is refused with the reason.

    >>> import torch, archc
    >>> from archc.compiler.check import build_graph
    >>> from archc.runtime.cam import cam_head, class_activation_map
    >>> graph = build_graph(archc.zoo_path("nin.arch"))
    >>> head = cam_head(graph)
    >>> head.pool, head.linear
    ('classifier.0', None)
    >>> model = archc.build(archc.zoo_path("nin.arch")).eval()
    >>> cam, logits = class_activation_map(model, head, torch.rand(1, 224, 224), 3)
    >>> cam.shape, bool(torch.isclose(cam.mean(), logits[3], atol=1e-5))   # logit = mean of the map
    (torch.Size([5, 5]), True)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..compiler.graph import Graph, Layer

PASS_THROUGH = ("flatten", "dropout", "identity", "stochastic_depth")  # no effect on a pooled vector at eval


class CamError(ValueError):
    """The network has no head a class activation map can be read from; the message says why."""


@dataclass(frozen=True)
class CamHead:
    pool: str  # the global average pooling layer: its input is the feature map f
    feature: str  # the layer producing f (for messages)
    linear: str | None  # the classifier whose weights are w; None when the pooled channels are the classes
    channels: int  # K, the feature map's channels


def _is_global_average(layer: Layer) -> bool:
    if layer.op == "global_avgpool":
        return True
    return layer.op == "adaptive_avgpool" and layer.out_shape[1:] == (1, 1)


def cam_head(graph: Graph, network: str = "the network") -> CamHead:
    """Where the CAM comes from in `graph`; CamError naming the head's layers when it has no such head."""
    name, linear, seen = graph.result, None, []
    while name != "input":
        layer = graph.layer(name)
        seen.append(layer.op)
        if _is_global_average(layer):
            feature = layer.inputs[0]
            if feature == "input":
                raise CamError(f"{network} pools its input directly: there is no feature map to draw")
            return CamHead(pool=name, feature=feature, linear=linear, channels=layer.out_shape[0])
        if layer.op == "linear" and linear is None:
            linear = name
        elif layer.op not in PASS_THROUGH:
            chain = " ← ".join(seen)
            why = ("a second linear layer" if layer.op == "linear" else f"{layer.op!r} at {name}")
            raise CamError(
                f"a class activation map needs a network that ends in global average pooling followed by at most "
                f"one linear layer (flatten, dropout between are fine); {network} ends, from its output back, "
                f"in {chain}: {why} is in the way")
        name = layer.inputs[0]
    raise CamError(f"{network} has no global average pooling before its output, so it has no class activation map")


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
    """M_c [h, w] from the feature map: Σ_k w_ck f_k, or channel c itself when the head has no linear layer."""
    if head.linear is None:
        return features[class_index]
    weight = model.get_submodule(head.linear).weight[class_index].detach().float()  # w_c, [K]
    return torch.einsum("k,khw->hw", weight, features)


def class_activation_map(model: torch.nn.Module, head: CamHead, x: torch.Tensor,
                         class_index: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(M_c of one image x [C, H, W] at the feature map's resolution [h, w], the logits [classes])."""
    features, logits = features_and_logits(model, head, x)
    if not 0 <= class_index < logits.shape[0]:
        raise CamError(f"class index {class_index} is out of range: the network has {logits.shape[0]} classes")
    return map_of(model, head, features, class_index), logits


def normalised(cam: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """M_c upsampled bilinearly to size (H, W) and scaled to [0, 1]; all zeros when M_c is flat (a 1×1 map,
    say), where scaling would only blow the interpolation's rounding up to full range."""
    low, high = cam.min(), cam.max()
    if high - low <= 1e-6 * max(1.0, float(high.abs())):
        return torch.zeros(size)
    up = torch.nn.functional.interpolate(cam[None, None], size=size, mode="bilinear", align_corners=False)[0, 0]
    low, high = up.min(), up.max()
    return (up - low) / (high - low)


def jet(values: torch.Tensor) -> torch.Tensor:
    """matplotlib's 'jet' colormap, written out: [H, W] in [0, 1] -> [H, W, 3] uint8, blue (0) to red (1)."""
    v = values.clamp(0, 1)[..., None]
    centres = torch.tensor([3.0, 2.0, 1.0])  # red, green, blue peak at 3/4, 1/2, 1/4
    rgb = (1.5 - (4 * v - centres).abs()).clamp(0, 1)
    return (rgb * 255).round().to(torch.uint8)


def overlay(image, heat: torch.Tensor, alpha: float = 0.5):
    """The PIL image with the jet-coloured heat map [H, W] in [0, 1] blended over it (alpha: the map's weight)."""
    from PIL import Image

    if not 0.0 <= alpha <= 1.0:
        raise CamError(f"--alpha is the heat map's opacity in [0, 1], got {alpha}")
    coloured = Image.fromarray(jet(heat).numpy(), "RGB")
    return Image.blend(image.convert("RGB"), coloured, alpha)


# --- from a checkpoint ----------------------------------------------------------------------------


def graph_of_checkpoint(ckpt: dict) -> Graph:
    """The checked graph of a checkpoint's network, rebuilt from its stored .arch sources
    (as runtime/checkpoint.py's build_from_checkpoint rebuilds the module)."""
    import tempfile
    from pathlib import Path

    from ..compiler.check import build_graph

    # the one check that the stored names stay inside the folder
    from .checkpoint import _safe_parts

    sources, main = ckpt["arch_sources"], ckpt["arch_file"]
    with tempfile.TemporaryDirectory(prefix="archc-cam-") as folder:
        for name, text in sources.items():
            target = Path(folder, *_safe_parts(name))
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        return build_graph(Path(folder, *_safe_parts(main)), variant=ckpt.get("variant"), input=tuple(ckpt["input"]),
                           **dict(ckpt.get("params") or {}))


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
    hint = f"; did you mean {close[0]!r}?" if close else f" (the classes: {', '.join(classes)})"
    raise CamError(f"--class {choice!r} is neither a class name nor an index below {len(classes)}{hint}")


def image_input(path, ckpt: dict):
    """(the PIL image as read, the network input [C, H', W']): the whole image with its short side resized to
    eval_resize and normalised, not centre-cropped: a GAP network takes any size, and the map covers it all."""
    from torchvision.transforms import functional as F

    from .data import DataError, _pil_errors, read_pil

    try:
        image = read_pil(path, ckpt["input"][0])
    except FileNotFoundError:
        raise CamError(f"no such image: {path}") from None
    except _pil_errors() as error:
        raise DataError(f"cannot read {path} as an image: {error}") from None
    x = F.to_tensor(F.resize(image, int(ckpt["eval_resize"]), antialias=True))
    return image, F.normalize(x, ckpt["normalize"]["mean"], ckpt["normalize"]["std"])


def cam_for_image(checkpoint, image_path, output, class_: str | None = None, alpha: float = 0.5) -> dict:
    """Write the class activation map of `image_path` over the image, at the image's size, to `output`.

    Returns {"class", "index", "probability", "feature_layer", "map"} (map: M_c at the feature map's
    resolution, before upsampling and normalising).
    """
    from .infer import open_checkpoint

    model, ckpt = open_checkpoint(checkpoint)
    head = cam_head(graph_of_checkpoint(ckpt), ckpt.get("network") or "the network")
    image, x = image_input(image_path, ckpt)
    device = next(model.parameters()).device
    features, logits = features_and_logits(model, head, x.to(device))
    index = class_index(class_, list(ckpt["classes"]), logits)
    cam = map_of(model, head, features, index)
    heat = normalised(cam.cpu(), (image.height, image.width))
    try:
        overlay(image, heat, alpha).save(output)
    except (OSError, ValueError) as error:  # an unwritable path, an extension PIL does not know
        raise CamError(f"cannot write {output}: {error}") from None
    probability = float(torch.softmax(logits.float(), dim=0)[index])
    note = ""
    if cam.shape[0] * cam.shape[1] == 1:
        note = (f"the feature map is 1×1 for this {x.shape[1]}×{x.shape[2]} input, so the map has no spatial "
                "detail; a larger input (archc train --input) gives one")
    return {"class": ckpt["classes"][index], "index": index, "probability": probability,
            "feature_layer": head.feature, "map": cam.cpu(), "note": note}
