"""The data sets `archc train` reads, and the one way an image becomes a network input.

Two sources, both read into a `Pool` (every sample, its label, the class names):

- the embedded digits (scikit-learn's 1,797 handwritten 8×8 digits, upscaled to
  1×32×32), held in memory as a uint8 tensor;
- an ImageFolder tree: `DIR/train` + `DIR/val` (seed 000's layout, a fixed split)
  or one folder per class (split by `--val` and the seed). Files that are not
  readable images are skipped and counted, never a crash; an empty class folder
  or train/val trees with different classes is a `DataError` before training.

Eval and predict read a file with `load_image(path, ckpt)`: resize the short side
to `ckpt["eval_resize"]`, centre crop to the input, normalise — as validation does.

    >>> pool = digits_pool((32, 32))
    >>> pool.images.shape, len(pool.classes)
    (torch.Size([1797, 1, 32, 32]), 10)
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .files import IMAGE_SUFFIXES as IMAGE_EXTENSIONS  # torchvision's ImageFolder extensions
from .files import list_files, subfolders
from .images import DECODE_ERRORS, decode, short_side_to

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
DIGITS_SIZE = 32  # the 8×8 digits upscaled 4×, large enough for networks that downsample 5 times


def _pil_errors() -> tuple[type[BaseException], ...]:
    """What PIL raises for a file that is not a readable image (runtime/images.py keeps the list)."""
    return DECODE_ERRORS


class DataError(Exception):
    """The data cannot be trained on (an empty class, train/val classes that differ, no images)."""


class ImageError(DataError):
    """One file that is not a readable image; `reason` says why without the path."""

    def __init__(self, path, reason: str):
        super().__init__(f"cannot read {path} as an image: {reason}")
        self.reason = reason


@dataclass
class Pool:
    """Every sample of a data set. Either `images` (uint8, N×C×H×W, in memory) or `files` holds the samples."""

    name: str
    classes: list[str]
    labels: torch.Tensor  # int64, N
    channels: int
    images: torch.Tensor | None = None
    files: list[Path] | None = None
    fixed_split: tuple[list[int], list[int]] | None = None  # DIR/train + DIR/val: (train, val) positions
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, why)

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, keep: list[int]) -> Pool:
        """The pool restricted to positions `keep` (in order); a fixed split is renumbered."""
        where = {old: new for new, old in enumerate(keep)}
        split = None
        if self.fixed_split is not None:
            split = tuple([where[i] for i in part if i in where] for part in self.fixed_split)
        return Pool(self.name, self.classes, self.labels[keep], self.channels,
                    images=None if self.images is None else self.images[keep],
                    files=None if self.files is None else [self.files[i] for i in keep],
                    fixed_split=split, skipped=list(self.skipped))


def normalization(channels: int, digits: bool = False) -> dict[str, list[float]]:
    """ImageNet's mean and std for RGB (grey: their averages); the digits' own, measured once."""
    if digits:
        # mean and std of the 1,797 digits upscaled to 32×32 (pixel values / 255)
        return {"mean": [0.3052], "std": [0.3236]}
    if channels == 3:
        return {"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)}
    return {"mean": [round(sum(IMAGENET_MEAN) / 3, 4)] * channels, "std": [round(sum(IMAGENET_STD) / 3, 4)] * channels}


def eval_resize_for(size: tuple[int, int], digits: bool = False) -> int:
    """The short side resized to before the centre crop: 256 for 224 (the ImageNet ratio); the input for digits."""
    return max(size) if digits else round(max(size) * 256 / 224)


# --- the embedded digits ---------------------------------------------------------------------------------------

def digits_pool(size: tuple[int, int] = (DIGITS_SIZE, DIGITS_SIZE)) -> Pool:
    """scikit-learn's digits (values 0–16) upscaled bilinearly to `size`, as uint8 0–255."""
    import torch.nn.functional as F
    from sklearn.datasets import load_digits

    digits = load_digits()
    small = torch.tensor(digits.images, dtype=torch.float32)[:, None] / 16
    images = F.interpolate(small, size=size, mode="bilinear", align_corners=False)
    images = (images.clamp(0, 1) * 255).round().to(torch.uint8)
    return Pool("digits", [str(c) for c in digits.target_names], torch.tensor(digits.target, dtype=torch.int64),
                1, images=images)


# --- ImageFolder trees -----------------------------------------------------------------------------------------

def folder_pool(root: str | Path, channels: int = 3, check_decode: bool = True, workers: int = 4) -> Pool:
    """The images under `root`: `root/train` + `root/val` (a fixed split) or `root/<class>/...`.

    Files without an image extension are skipped and counted; with
    `check_decode`, so are files that do not decode (each is decoded once at
    reduced size, in threads). Raises DataError for an empty class folder or
    train and val trees with different classes.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"no such folder: {root}")
    trees = [root / "train", root / "val"]
    if all(t.is_dir() for t in trees):
        (train_classes, train_files, skipped), (val_classes, val_files, val_skipped) = map(_scan_tree, trees)
        if train_classes != val_classes:
            only_train = sorted(set(train_classes) - set(val_classes))
            only_val = sorted(set(val_classes) - set(train_classes))
            raise DataError(f"{trees[0]} and {trees[1]} have different classes: only in train: "
                            f"{', '.join(only_train) or 'none'}; only in val: {', '.join(only_val) or 'none'}")
        files = train_files + val_files
        split = (list(range(len(train_files))), list(range(len(train_files), len(files))))
        skipped += val_skipped
        classes = train_classes
    else:
        classes, files, skipped = _scan_tree(root)
        split = None
    if len(classes) < 2:
        raise DataError(f"{root} has {len(classes)} class folder{'s' if len(classes) != 1 else ''}; "
                        "a classifier needs at least 2 (one folder of images per class)")
    pool = Pool(str(root), classes, torch.tensor([label for _, label in files], dtype=torch.int64), channels,
                files=[path for path, _ in files], fixed_split=split, skipped=skipped)
    if check_decode:
        pool = drop_unreadable(pool, workers)
    require_every_class(pool)
    return pool


def _scan_tree(tree: Path) -> tuple[list[str], list[tuple[Path, int]], list[tuple[str, str]]]:
    """(class names, (file, label) pairs, skipped (entry, why)): listed by runtime/files.py, as the data tools list."""
    folders, skipped = subfolders(tree)
    skipped = [(str(path), why) for path, why in skipped]
    files = []
    for label, folder in enumerate(folders):
        listing = list_files(folder)
        skipped += [(str(path), why) for path, why in listing.skipped]
        if not listing.files:
            left = f" ({len(listing.skipped)} entries in it skipped: {listing.skipped[0][1]}, ...)" \
                if listing.skipped else ""
            raise DataError(f"the class folder {folder} is empty{left}: every class needs at least one image")
        for path in listing.files:
            if path.suffix.lower() in IMAGE_EXTENSIONS:
                files.append((path, label))
            else:
                skipped.append((str(path), f"not an image file ({path.suffix or 'no extension'})"))
    return [folder.name for folder in folders], files, skipped


def require_every_class(pool: Pool) -> None:
    """Each class must keep at least one image after unreadable files are dropped."""
    counts = torch.bincount(pool.labels, minlength=len(pool.classes))
    empty = [pool.classes[i] for i in range(len(pool.classes)) if counts[i] == 0]
    if empty:
        raise DataError(f"no readable image in the class folder{'s' if len(empty) > 1 else ''} "
                        f"{', '.join(empty)} of {pool.name}")


def drop_unreadable(pool: Pool, workers: int = 4) -> Pool:
    """The pool without the files that do not decode; each is counted in `pool.skipped`."""
    with ThreadPoolExecutor(max_workers=max(1, workers)) as threads:
        problems = list(threads.map(_decode_problem, pool.files))
    keep = [i for i, problem in enumerate(problems) if problem is None]
    kept = pool.subset(keep)
    kept.skipped += [(str(pool.files[i]), problem) for i, problem in enumerate(problems) if problem is not None]
    return kept


def _decode_problem(path: Path) -> str | None:
    """None if the file decodes; else why not. JPEGs decode at 1/8 size (PIL's draft mode): the whole stream is
    read. Through runtime/images.py, as every image: a FIFO is refused, a very large image warns no raw warning."""
    try:
        decode(path, target=lambda width, height: (max(1, width // 16), max(1, height // 16)))  # draft: 1/8
    except _pil_errors() as error:
        return f"cannot decode: {str(error).splitlines()[0] if str(error) else type(error).__name__}"
    return None


def read_pil(path: str | Path, channels: int):
    """The file as a PIL image in the mode the network takes (RGB or L), decoded at full size
    (runtime/images.py: a regular file only; a very large image without PIL's raw warning)."""
    return decode(path, "RGB" if channels == 3 else "L").image


# --- transforms (the DataLoader path; the tensor path is runtime/augment.py) -------------------------------------

def train_transform(size: tuple[int, int], normalize: dict, min_scale: float, flip: bool, jitter: float):
    """RandomResizedCrop + horizontal flip + optional colour jitter + normalise (seeds 000 and 001)."""
    from torchvision import transforms as T

    steps = [T.RandomResizedCrop(size, scale=(min_scale, 1.0), antialias=True)]
    if flip:
        steps.append(T.RandomHorizontalFlip())
    if jitter > 0:
        steps.append(T.ColorJitter(brightness=jitter, contrast=jitter, saturation=jitter))
    steps += [T.ToTensor(), T.Normalize(normalize["mean"], normalize["std"])]
    return T.Compose(steps)


def eval_view_steps(ckpt: dict[str, Any]) -> list:
    """What validation does to a PIL image before it becomes a tensor: the short side resized to the
    checkpoint's eval_resize, then a centre crop to its input (`archc cam` draws on this view)."""
    from torchvision import transforms as T

    _, height, width = ckpt["input"]
    return [T.Resize(int(ckpt["eval_resize"]), antialias=True), T.CenterCrop((height, width))]


def eval_transform(ckpt: dict[str, Any]):
    """Resize the short side to the checkpoint's eval_resize, centre crop to its input, normalise."""
    from torchvision import transforms as T

    normalize = T.Normalize(ckpt["normalize"]["mean"], ckpt["normalize"]["std"])
    return T.Compose([*eval_view_steps(ckpt), T.ToTensor(), normalize])


@dataclass
class View:
    """One image file as eval, predict and cam see it."""

    image: Any  # the PIL view: resized and centre-cropped, before normalising
    input: torch.Tensor  # the network's normalised C×H×W input
    note: str = ""  # runtime/images.py's word on a very large file


def load_view(path: str | Path, ckpt: dict[str, Any]) -> View:
    """The file as validation prepares it, decoded no larger than the view needs (runtime/images.py:
    an image at least 4× the view's size is reduced by a whole factor first). DataError if unreadable."""
    from torchvision import transforms as T

    try:
        decoded = decode(path, "RGB" if ckpt["input"][0] == 3 else "L", short_side_to(int(ckpt["eval_resize"])))
    except FileNotFoundError:
        raise ImageError(path, "no such file") from None
    except _pil_errors() as error:
        raise ImageError(path, str(error) or type(error).__name__) from None
    view = T.Compose(eval_view_steps(ckpt))(decoded.image)
    x = T.Normalize(ckpt["normalize"]["mean"], ckpt["normalize"]["std"])(T.functional.to_tensor(view))
    return View(view, x, decoded.note)


def load_image(path: str | Path, ckpt: dict[str, Any]) -> torch.Tensor:
    """One image file as the network's normalised C×H×W input, exactly as validation prepares it.

    Raises DataError when the file is not a readable image.
    """
    return load_view(path, ckpt).input


# --- splits ----------------------------------------------------------------------------------------------------

def holdout_split(pool: Pool, val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """(train, val) positions: the tree's own split if it has one, else stratified by class and seed."""
    if pool.fixed_split is not None:
        return pool.fixed_split
    from sklearn.model_selection import train_test_split

    if not 0 < val_fraction < 1:
        raise DataError(f"--val must be a fraction between 0 and 1, got {val_fraction}")
    positions = list(range(len(pool)))
    labels = pool.labels.tolist()
    try:
        train, val = train_test_split(positions, test_size=val_fraction, random_state=seed, stratify=labels)
    except ValueError as error:  # too few images of a class to put one on each side
        raise DataError(f"cannot split {pool.name} {1 - val_fraction:.0%}/{val_fraction:.0%} by class: {error}") from None
    return sorted(train), sorted(val)


def kfold_splits(pool: Pool, k: int, seed: int) -> list[tuple[list[int], list[int]]]:
    """K stratified (train, val) splits over the whole pool (a tree's own train/val split is pooled, as seed 000 did)."""
    from sklearn.model_selection import StratifiedKFold

    counts = torch.bincount(pool.labels, minlength=len(pool.classes))
    if k < 2 or k > int(counts.min()):
        raise DataError(f"--kfold {k}: needs 2 ≤ K ≤ the smallest class's image count ({int(counts.min())})")
    folds = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    return [(sorted(train.tolist()), sorted(val.tolist()))
            for train, val in folds.split(torch.zeros(len(pool)).numpy(), pool.labels.numpy())]
