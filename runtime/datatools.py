"""Seed 000's two data chores as library calls: split a class-per-folder tree
into train/val(/test), and resize a tree once so that training decodes small
images (it halved their epoch time).

    >>> from archc.runtime.datatools import split_dataset, resize_tree
    >>> report = split_dataset("ori_photo", "data", val=0.2, seed=0)    # doctest: +SKIP
    >>> report.counts["cloth_mask"]                                      # doctest: +SKIP
    {'train': 760, 'val': 190, 'test': 0}
    >>> resize_tree("data", max_side=500).resized                       # doctest: +SKIP
    7941

Both raise DataToolError, with the path at fault, for anything a user can get
wrong; the CLI prints it without a traceback.
"""

from __future__ import annotations

import os
import random
import shutil
import stat
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from .files import IMAGE_SUFFIXES, is_image_name, list_files, subfolders

SPLITS = ("train", "val", "test")
EXAMPLES_SHOWN = 5  # paths listed per kind of skipped file; the rest are counted


class DataToolError(Exception):
    """A bad path or option; the message names it."""


def _images_under(folder: Path) -> tuple[list[Path], list[Path], list[tuple[Path, str]]]:
    """(images, other files, entries not followed) below `folder`, listed as training lists them (runtime/files.py)."""
    listing = list_files(folder)
    images = [p for p in listing.files if is_image_name(p)]
    return images, [p for p in listing.files if not is_image_name(p)], listing.skipped


# --- split ----------------------------------------------------------------------------------------


@dataclass
class SplitReport:
    counts: dict[str, dict[str, int]]  # class -> {"train": n, "val": n, "test": n}
    not_images: list[Path] = field(default_factory=list)  # files left out of the split
    not_followed: list[tuple[Path, str]] = field(default_factory=list)  # links to folders, FIFOs, ... (files.py)
    warnings: list[str] = field(default_factory=list)


def _fractions(val: float, test: float) -> None:
    for name, value in (("--val", val), ("--test", test)):
        if not 0.0 <= value < 1.0:
            raise DataToolError(f"{name} is a fraction in [0, 1), got {value}")
    if val + test >= 1.0:
        raise DataToolError(f"--val {val} and --test {test} leave nothing to train on (their sum must be below 1)")


def _class_folders(src: Path) -> tuple[list[Path], list[tuple[Path, str]]]:
    """(the class folders of SRC, the linked folders among them: not followed, as training does not)."""
    if not src.is_dir():
        raise DataToolError(f"{src}: no such folder")
    classes, linked = subfolders(src)
    if not classes:
        loose = sum(1 for p in list_files(src).files if p.parent == src and is_image_name(p))
        hint = f" ({loose} images lie directly in it: move each class's images into its own folder)" if loose else ""
        hint += f" ({len(linked)} links to folders are not followed)" if linked else ""
        raise DataToolError(f"{src}: no class folders; expected {src}/<class>/<images>{hint}")
    _refuse_a_split_tree(src, classes)
    return classes, linked


def _refuse_a_split_tree(src: Path, classes: list[Path]) -> None:
    """SRC/train/<class>/ + SRC/val/<class>/ is a split already: splitting it again would make "train" and
    "val" two classes of one data set."""
    names = {p.name for p in classes}
    if "train" not in names or not names & {"val", "test"}:
        return
    inner = subfolders(src / "train")[0]
    if not inner:
        return
    shown = ", ".join(p.name for p in inner[:3]) + (", ..." if len(inner) > 3 else "")
    splits = ", ".join(f"{name}/" for name in SPLITS if name in names)
    raise DataToolError(f"{src}: is split already ({splits} hold the class folders "
                        f"{shown}); `archc train --data {src}` reads that split as it is; to split again, split the "
                        "original class folders")


def _fresh_destination(src: Path, dst: Path) -> None:
    if dst.exists() and (not dst.is_dir() or any(dst.iterdir())):
        raise DataToolError(f"{dst}: already exists and is not empty; give a new or empty folder")
    if dst.resolve().is_relative_to(src.resolve()):
        raise DataToolError(f"{dst}: is inside the source {src}; it would become one of its classes")


def _share(n: int, fraction: float) -> int:
    return int(n * fraction + 0.5)  # round half up: 5 images at 0.1 keep one for validation


def split_dataset(src: str | Path, dst: str | Path, *, val: float = 0.2, test: float = 0.0, seed: int = 0,
                  mode: str = "copy") -> SplitReport:
    """Split SRC/<class>/... into DST/train/<class>/, DST/val/<class>/ (and DST/test/), per class.

    Each class is shuffled by its own generator, seeded by `seed` and the class
    name, so the split of one class does not change when another is added. DST
    is written into a temporary sibling folder and renamed at the end: an
    interrupted split leaves no half-filled DST. mode: "copy", or "link"
    (symbolic links to the source files, which must then stay where they are).
    """
    src, dst = Path(src), Path(dst)
    _fractions(val, test)
    if mode not in ("copy", "link"):
        raise DataToolError(f"mode must be copy or link, got {mode!r}")
    classes, linked = _class_folders(src)
    _fresh_destination(src, dst)

    plan, report = [], SplitReport(counts={}, not_followed=list(linked))
    for folder in classes:
        images, others, not_followed = _images_under(folder)
        report.not_images += others
        report.not_followed += not_followed
        if not images:
            raise DataToolError(f"{folder}: the class {folder.name!r} has no images "
                                f"(looked for {', '.join(IMAGE_SUFFIXES)})")
        order = list(images)
        random.Random(f"{seed}:{folder.name}").shuffle(order)
        n_val, n_test = _share(len(order), val), _share(len(order), test)
        if n_val + n_test >= len(order):  # tiny classes: keep at least one training image
            n_val, n_test = max(0, min(n_val, len(order) - 1)), max(0, min(n_test, len(order) - 1 - n_val))
        parts = {"val": order[:n_val], "test": order[n_val:n_val + n_test], "train": order[n_val + n_test:]}
        report.counts[folder.name] = {name: len(parts[name]) for name in SPLITS}
        for name, files in parts.items():
            plan += [(path, Path(name) / folder.name / path.relative_to(folder)) for path in files]
        if val > 0 and not parts["val"]:
            report.warnings.append(f"class {folder.name!r} has {len(order)} images: none went to val")

    dst.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dst.name}.partial-", dir=dst.parent))
    try:
        for split in SPLITS if test > 0 else SPLITS[:2]:
            for folder in classes:
                (staging / split / folder.name).mkdir(parents=True)
        for source, relative in plan:
            target = staging / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            if mode == "link":
                target.symlink_to(source.resolve())
            else:
                shutil.copy2(source, target)
        if dst.exists():
            dst.rmdir()  # empty, checked above; rename needs the name free
        staging.rename(dst)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return report


# --- resize ---------------------------------------------------------------------------------------


@dataclass
class ResizeReport:
    resized: int = 0  # longer side was above max_side
    rotated: int = 0  # rewritten only to apply an EXIF orientation
    unchanged: int = 0  # small enough and upright: copied (with OUT) or left alone (in place)
    not_images: list[Path] = field(default_factory=list)  # skipped by name
    corrupt: list[tuple[Path, str]] = field(default_factory=list)  # skipped: PIL could not decode them
    not_followed: list[tuple[Path, str]] = field(default_factory=list)  # links to folders, FIFOs, ... (files.py)
    notes: list[str] = field(default_factory=list)  # very large images (runtime/images.py)

    @property
    def skipped(self) -> int:
        return len(self.not_images) + len(self.corrupt) + len(self.not_followed)


def target_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """(w, h) with the longer side max_side and the aspect ratio kept, each side at least 1."""
    scale = max_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


class _Undecodable(Exception):
    """PIL could not read the file: it is skipped and counted, not fatal."""


def _resize_one(source: Path, target: Path, max_side: int) -> tuple[str, str]:
    """Rewrite one image; (outcome: "resized", "rotated" or "unchanged"; a note on a very large image)."""
    from PIL import Image, ImageOps

    from .images import DECODE_ERRORS, decode

    try:  # decoded at reduced size where that leaves twice the target (runtime/images.py)
        decoded = decode(source, target=lambda w, h: target_size(w, h, max_side))
    except DECODE_ERRORS as error:
        raise _Undecodable(str(error) or type(error).__name__) from None
    image, fmt, too_big = decoded.image, decoded.format, max(decoded.full_size) > max_side
    if not too_big and decoded.orientation == 1:
        if target != source:
            shutil.copy2(source, target)
        return "unchanged", decoded.note
    image = ImageOps.exif_transpose(image)
    if too_big:
        image = image.resize(target_size(*image.size, max_side), Image.Resampling.LANCZOS)
    options = {"quality": 95} if fmt in ("JPEG", "MPO") else {}
    if fmt in ("JPEG", "MPO") and image.mode not in ("RGB", "L", "CMYK"):
        image = image.convert("RGB")
    # temp file then rename: an interrupted run never leaves a half-written image, in place or not;
    # the temp file gets the source's permissions (mkstemp makes it 0600)
    handle, temporary = tempfile.mkstemp(prefix=".resize-", suffix=target.suffix, dir=target.parent)
    os.close(handle)
    try:
        image.save(temporary, format="JPEG" if fmt == "MPO" else fmt, **options)
        os.chmod(temporary, stat.S_IMODE(os.stat(source).st_mode))
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return ("resized" if too_big else "rotated"), decoded.note


def _one_entry_per_file(images: list[Path]) -> tuple[list[Path], int]:
    """(one entry per real file, the number of other entries): in place, a link and the file it points to are
    one image, rewritten once through the file itself (two threads rewriting it at once would race). A link
    to a file outside the tree is rewritten as a resized copy where the link was; the file is left alone."""
    chosen: dict[str, Path] = {}
    for path in images:
        real = os.path.realpath(path)
        if real not in chosen or (chosen[real].is_symlink() and not path.is_symlink()):
            chosen[real] = path
    kept = set(chosen.values())
    return [path for path in images if path in kept], len(images) - len(kept)


def resize_tree(folder: str | Path, *, max_side: int = 500, out: str | Path | None = None,
                workers: int | None = None) -> ResizeReport:
    """Resize every image under `folder` whose longer side exceeds `max_side`, keeping its aspect ratio.

    With `out`, the tree is mirrored there (small images copied as they are,
    non-images and corrupt files left out); without it, images are rewritten in
    place. EXIF orientation is applied to every image rewritten, and an image
    that only needs rotating is rewritten too, so the result is upright for
    loaders that ignore EXIF. Non-images and undecodable files are skipped and
    counted, never a crash.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataToolError(f"{folder}: no such folder")
    if max_side < 1:
        raise DataToolError(f"--max-side must be at least 1, got {max_side}")
    target_root = Path(out) if out is not None else folder
    if out is not None:
        if target_root.resolve() == folder.resolve():
            raise DataToolError(f"-o {out}: is the folder itself; leave -o out to resize in place")
        if target_root.resolve().is_relative_to(folder.resolve()):
            raise DataToolError(f"-o {out}: is inside {folder}; give a folder outside it")
        if target_root.exists() and (not target_root.is_dir() or any(target_root.iterdir())):
            raise DataToolError(f"-o {out}: already exists and is not empty; give a new or empty folder")
    images, others, not_followed = _images_under(folder)
    report = ResizeReport(not_images=others, not_followed=not_followed)
    if out is None:
        images, aliases = _one_entry_per_file(images)
        report.unchanged += aliases

    def work(source: Path) -> tuple[Path, str, str]:
        target = target_root / source.relative_to(folder)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            return source, *_resize_one(source, target, max_side)
        except _Undecodable as error:
            return source, "corrupt", str(error)

    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:  # PIL decodes without the GIL
        for source, outcome, words in pool.map(work, images):
            if outcome == "corrupt":
                report.corrupt.append((source, words))
                continue
            setattr(report, outcome, getattr(report, outcome) + 1)
            if words:
                report.notes.append(words)
    return report
