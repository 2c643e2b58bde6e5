"""Decode an image folder once into a uint8 tensor of squares, held on the training device.

Each image's short side is resized to `size` and its centre `size`×`size` kept:
the eval view is the centre crop of that square, and training crops are cut
from it by runtime/augment.py. On a GPU, JPEGs are decoded there with nvjpeg in
batches (`torchvision.io.decode_jpeg(..., device="cuda")`, about ten times the
PIL rate of a 16-core machine, issue 5 §3) and resized there; other formats and
any file nvjpeg refuses go through PIL. A file neither can read is skipped and
counted.

    >>> fits_on_device(1000, 3, 256, free_bytes=10**9)
    True

On a CPU the cache spares every epoch the decoding (for seed 000's photos, most of
an epoch's time on two cores): benchmarks/train_throughput.py (b) measured the
cache at 0.94 of the synthetic step rate there, PIL workers at 0.80.
"""

from __future__ import annotations

import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
import torch.nn.functional as F

from .data import Pool, _pil_errors, read_pil, require_every_class

CACHE_SHARE = 0.25  # the cache may take at most this share of the device's free memory
JPEG_BATCH = 128  # files per nvjpeg call


def fits_on_device(count: int, channels: int, size: int, free_bytes: int) -> bool:
    """Whether `count` uint8 squares of `size` take less than CACHE_SHARE of `free_bytes`."""
    return count * channels * size * size < CACHE_SHARE * free_bytes


def free_memory(device: torch.device, processes: int = 1) -> int:
    """Bytes this process may count on for a cache: the GPU's free memory, or the machine's available
    memory (/proc/meminfo's MemAvailable) shared by the `processes` that train on it; 0 when unknown."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo") as meminfo:
            available = next(int(line.split()[1]) * 1024 for line in meminfo if line.startswith("MemAvailable:"))
    except (OSError, StopIteration, ValueError):
        return 0
    return available // max(1, processes)


def cache_pool(pool: Pool, size: int, device: torch.device, workers: int = 4, stats: dict | None = None) -> Pool:
    """The pool with `images` filled (uint8, N×C×size×size on `device`); unreadable files skipped and counted.

    `stats`, if given, receives how many files nvjpeg and PIL decoded.
    """
    if pool.images is not None:
        return pool
    squares: list[torch.Tensor | None] = [None] * len(pool.files)
    problems: dict[int, str] = {}
    todo = list(range(len(pool.files)))
    if device.type == "cuda":
        todo = _decode_on_gpu(pool, size, device, squares)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as threads:
        for i, result in zip(todo, threads.map(lambda i: _pil_square(pool.files[i], pool.channels, size), todo)):
            if isinstance(result, str):
                problems[i] = result
            else:
                squares[i] = result.to(device)
    keep = [i for i in range(len(squares)) if squares[i] is not None]
    if stats is not None:
        stats.update(nvjpeg=len(pool.files) - len(todo), pil=len(todo) - len(problems))
    cached = pool.subset(keep)
    cached.skipped += [(str(pool.files[i]), why) for i, why in sorted(problems.items())]
    cached.images = torch.stack([squares[i] for i in keep]) if keep else torch.empty(0, pool.channels, size, size,
                                                                                      dtype=torch.uint8, device=device)
    require_every_class(cached)
    return cached


def _decode_on_gpu(pool: Pool, size: int, device: torch.device, squares: list) -> list[int]:
    """Decode the JPEGs with nvjpeg into `squares`; returns the positions left for PIL."""
    from torchvision.io import ImageReadMode, decode_jpeg

    mode = ImageReadMode.RGB if pool.channels == 3 else ImageReadMode.GRAY
    left, jpegs = [], []
    for i, path in enumerate(pool.files):
        data = Path(path).read_bytes()
        (jpegs if data[:2] == b"\xff\xd8" else left).append(i)
        if data[:2] == b"\xff\xd8":
            squares[i] = torch.frombuffer(bytearray(data), dtype=torch.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchvision 0.29 marks its decoders deprecated in favour of TorchCodec
        for start in range(0, len(jpegs), JPEG_BATCH):
            chunk = jpegs[start:start + JPEG_BATCH]
            try:
                decoded = decode_jpeg([squares[i] for i in chunk], mode=mode, device=device)
            except RuntimeError:  # one bad file fails the whole call: decode this batch one by one
                decoded = []
                for i in chunk:
                    try:
                        decoded.append(decode_jpeg(squares[i], mode=mode, device=device))
                    except RuntimeError:
                        decoded.append(None)
            for i, image in zip(chunk, decoded):
                squares[i] = None if image is None else resize_square(image, size)
                if image is None:
                    left.append(i)
    return sorted(left)


def resize_square(image: torch.Tensor, size: int) -> torch.Tensor:
    """A C×H×W uint8 image with its short side resized to `size` (antialiased), centre-cropped to size×size."""
    _, height, width = image.shape
    scale = size / min(height, width)
    new = (max(size, round(height * scale)), max(size, round(width * scale)))
    resized = F.interpolate(image[None].float(), size=new, mode="bilinear", antialias=True, align_corners=False)[0]
    top, left = (new[0] - size) // 2, (new[1] - size) // 2
    return resized[:, top:top + size, left:left + size].round().clamp(0, 255).to(torch.uint8)


def _pil_square(path: Path, channels: int, size: int) -> torch.Tensor | str:
    """The file as a uint8 square via PIL, or why it cannot be read."""
    import numpy as np
    from PIL import Image

    try:
        image = read_pil(path, channels)
    except _pil_errors() as error:
        return f"cannot decode: {str(error).splitlines()[0] if str(error) else type(error).__name__}"
    scale = size / min(image.size)
    image = image.resize((max(size, round(image.width * scale)), max(size, round(image.height * scale))),
                         Image.BILINEAR, reducing_gap=None)
    left, top = (image.width - size) // 2, (image.height - size) // 2
    array = np.asarray(image.crop((left, top, left + size, top + size)), dtype=np.uint8)
    array = array[:, :, None] if array.ndim == 2 else array
    return torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous()
