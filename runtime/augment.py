"""Augmentation on batches of uint8 tensors, on whatever device holds them.

The data set is cached as uint8 squares (resize the short side, centre crop;
see runtime/cache.py); a training batch is cut from it here with one batched
`grid_sample` per batch: a random resized crop (area fraction and aspect ratio
drawn as torchvision's RandomResizedCrop draws them, clipped to the image
instead of redrawn), a horizontal flip, colour jitter, normalisation. On a GPU
this is the "cache on the GPU, augment there" path of issue 5 §3; the same code
runs on CPU tensors (digits, tests).

The random numbers are drawn on the CPU from the generator passed in, for the
whole global batch, so a batch is the same on any device, any number of
processes (each takes its rows) and after a resume.

    >>> images = torch.randint(0, 256, (4, 3, 40, 40), dtype=torch.uint8)
    >>> params = draw_crops(4, torch.Generator().manual_seed(0), min_scale=0.5, flip=True)
    >>> augment(images, params, (32, 32), {"mean": [0.5] * 3, "std": [0.25] * 3}).shape
    torch.Size([4, 3, 32, 32])
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

RATIO = (3 / 4, 4 / 3)  # RandomResizedCrop's default aspect-ratio range


def draw_crops(count: int, generator: torch.Generator, min_scale: float, flip: bool, jitter: float = 0.0,
               ratio: tuple[float, float] = RATIO) -> torch.Tensor:
    """Per sample: (width, height, centre x, centre y, x sign, brightness, contrast, saturation).

    Widths, heights and centres are fractions of the image in grid_sample's
    [-1, 1] coordinates; x sign is -1 for a flipped sample.
    """
    u = torch.rand(count, 8, generator=generator, dtype=torch.float64)
    area = min_scale + (1 - min_scale) * u[:, 0]
    log_ratio = math.log(ratio[0]) + (math.log(ratio[1]) - math.log(ratio[0])) * u[:, 1]
    aspect = torch.exp(log_ratio)
    width = torch.sqrt(area * aspect).clamp(max=1)
    height = torch.sqrt(area / aspect).clamp(max=1)
    centre_x = (1 - width) * (2 * u[:, 2] - 1)
    centre_y = (1 - height) * (2 * u[:, 3] - 1)
    sign = torch.where(u[:, 4] < 0.5, -1.0, 1.0) if flip else torch.ones(count, dtype=torch.float64)
    factors = 1 + jitter * (2 * u[:, 5:8] - 1)
    return torch.stack([width, height, centre_x, centre_y, sign, *factors.unbind(1)], dim=1).float()


def augment(images: torch.Tensor, params: torch.Tensor, size: tuple[int, int], normalize: dict) -> torch.Tensor:
    """Crop, resize, flip, jitter and normalise a uint8 batch (N×C×S×S) into float32 N×C×H×W."""
    jittered = bool((params[:, 5:8] != 1).any())  # asked of the CPU copy: no wait for the GPU
    params = params.to(images.device, non_blocking=True)
    theta = torch.zeros(len(images), 2, 3, device=images.device)
    theta[:, 0, 0] = params[:, 0] * params[:, 4]  # a negative x scale mirrors the crop
    theta[:, 0, 2] = params[:, 2]
    theta[:, 1, 1] = params[:, 1]
    theta[:, 1, 2] = params[:, 3]
    grid = F.affine_grid(theta, [len(images), images.shape[1], *size], align_corners=False)
    x = F.grid_sample(images.float() / 255, grid, mode="bilinear", padding_mode="border", align_corners=False)
    if jittered:
        x = jitter(x, params[:, 5], params[:, 6], params[:, 7])
    return normalise(x, normalize)


def jitter(x: torch.Tensor, brightness: torch.Tensor, contrast: torch.Tensor, saturation: torch.Tensor) -> torch.Tensor:
    """torchvision's ColorJitter (brightness, contrast, saturation; no hue) with per-sample factors, on [0, 1] floats."""
    x = (x * brightness[:, None, None, None]).clamp(0, 1)
    grey = _grey(x)
    mean = grey.mean(dim=(1, 2, 3), keepdim=True)
    x = ((x - mean) * contrast[:, None, None, None] + mean).clamp(0, 1)
    if x.shape[1] == 3:
        grey = _grey(x)
        x = ((x - grey) * saturation[:, None, None, None] + grey).clamp(0, 1)
    return x


def _grey(x: torch.Tensor) -> torch.Tensor:
    if x.shape[1] != 3:
        return x
    return (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])  # ITU-R 601, as torchvision


def centre_crop(images: torch.Tensor, size: tuple[int, int], normalize: dict) -> torch.Tensor:
    """The eval view of cached squares: the centre H×W, normalised (the cache is already resized to eval_resize)."""
    height, width = size
    top, left = (images.shape[2] - height) // 2, (images.shape[3] - width) // 2
    if top < 0 or left < 0:
        raise ValueError(f"cached images of {images.shape[2]}×{images.shape[3]} are smaller than the input "
                         f"{height}×{width}")
    crop = images[:, :, top:top + height, left:left + width]
    return normalise(crop.float() / 255, normalize)


def normalise(x: torch.Tensor, normalize: dict) -> torch.Tensor:
    mean = torch.tensor(normalize["mean"], device=x.device, dtype=x.dtype)[None, :, None, None]
    std = torch.tensor(normalize["std"], device=x.device, dtype=x.dtype)[None, :, None, None]
    return (x - mean) / std
