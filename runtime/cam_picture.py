"""The picture `archc cam` writes: the map over the network's view of the image, a colour bar
with the map's range, and a caption saying what is drawn (class, probability, method, layer, view).

The view is drawn at a whole multiple of its size, at least DISPLAY pixels on its short side (a
32×32 digit is drawn 8×, pixel for pixel); the map is upsampled bilinearly to it.

    >>> import torch
    >>> from PIL import Image
    >>> view = Image.new("RGB", (32, 24), "grey")
    >>> cam = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    >>> drawn = picture(view, cam, 0.5, ["'dog': p = 87.5%"])
    >>> drawn.width > 32 * 10 and drawn.height > 24 * 10   # drawn 10×, with a bar beside and a caption below
    True
"""

from __future__ import annotations

import torch

DISPLAY = 256  # the drawn view's short side is at least this many pixels
BAR, MARGIN = 14, 8  # the colour bar's width and the space around it, in pixels


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
        raise ValueError(f"--alpha is the heat map's opacity in [0, 1], got {alpha}")
    coloured = Image.fromarray(jet(heat).numpy(), "RGB")
    return Image.blend(image.convert("RGB"), coloured, alpha)


def display_scale(size: tuple[int, int]) -> int:
    """The whole factor the view is drawn at."""
    return max(1, DISPLAY // min(size))


def _font():
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=13)  # Pillow 10.1+: a scalable font
    except TypeError:
        return ImageFont.load_default()


def _wrapped(draw, lines: list[str], font, width: int) -> list[str]:
    out = []
    for line in lines:
        current = ""
        for word in line.split(" "):
            trial = f"{current} {word}".strip()
            if current and draw.textlength(trial, font=font) > width:
                out.append(current)
                current = word
            else:
                current = trial
        out.append(current)
    return out


def picture(view, cam: torch.Tensor, alpha: float, caption: list[str]):
    """The view with `cam` [h, w] drawn over it, a colour bar labelled with the map's range, `caption` below."""
    from PIL import Image, ImageDraw

    scale = display_scale(view.size)
    width, height = view.width * scale, view.height * scale
    shown = overlay(view.convert("RGB").resize((width, height), Image.Resampling.NEAREST),
                    normalised(cam.float(), (height, width)), alpha)
    font = _font()
    probe = ImageDraw.Draw(shown)
    low, high = float(cam.min()), float(cam.max())
    labels = [f"{high:.3g}", f"{low:.3g}"]
    label_width = int(probe.textlength("-8.88e+88", font=font)) + MARGIN  # the widest a label gets: one layout
    canvas_width = width + MARGIN + BAR + MARGIN + label_width
    lines = _wrapped(probe, caption, font, canvas_width - 2 * MARGIN)
    line_height = int(font.size * 1.35) if hasattr(font, "size") else 14
    canvas = Image.new("RGB", (canvas_width, height + MARGIN + line_height * len(lines) + MARGIN), "white")
    canvas.paste(shown, (0, 0))
    ramp = torch.linspace(1, 0, height)[:, None].expand(height, BAR)  # high at the top
    canvas.paste(Image.fromarray(jet(ramp).numpy(), "RGB"), (width + MARGIN, 0))
    draw = ImageDraw.Draw(canvas)
    right = width + MARGIN + BAR + MARGIN // 2
    draw.text((right, 0), labels[0], fill="black", font=font)
    draw.text((right, height - line_height), labels[1], fill="black", font=font)
    for i, line in enumerate(lines):
        draw.text((MARGIN, height + MARGIN + i * line_height), line, fill="black", font=font)
    return canvas
