"""Batches for the training loop, from a tensor cache or from files through DataLoader workers.

Both sources cut an epoch the same way: a permutation of the training
positions drawn from the epoch's own generator (seeded by the run's seed and
the epoch number, so a resumed run sees the same batches), whole global
batches only, and each process of a DDP run takes its contiguous share of
every global batch. The random crops of a batch are drawn for the whole global
batch too, so one process and N processes train on the same pixels.

    >>> import torch
    >>> source = TensorBatches(torch.zeros(10, 1, 8, 8, dtype=torch.uint8), torch.arange(10), (8, 8),
    ...                        {"mean": [0.5], "std": [0.5]}, min_scale=1.0, flip=False, jitter=0.0)
    >>> [tuple(x.shape) for x, y in source.train_epoch(torch.arange(10), batch=4, epoch=0, seed=0)]
    [(4, 1, 8, 8), (4, 1, 8, 8)]
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from .augment import augment, centre_crop, draw_crops
from .data import _pil_errors, eval_transform, read_pil, train_transform
from .prefetch import prefetched


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """The generator of one epoch's order and crops: a function of (seed, epoch) alone."""
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


def global_batches(positions: torch.Tensor, batch: int, generator: torch.Generator) -> list[torch.Tensor]:
    """The epoch's shuffled positions as whole batches (a last partial batch is dropped: BN needs > 1 sample)."""
    order = positions[torch.randperm(len(positions), generator=generator)]
    return list(order[: len(order) // batch * batch].split(batch))


@dataclass
class Shard:
    """This process's rows of a global batch."""

    rank: int = 0
    world: int = 1

    def rows(self, batch: int) -> slice:
        per = batch // self.world
        return slice(self.rank * per, (self.rank + 1) * per)


class TensorBatches:
    """Batches cut on the device from uint8 squares already there (runtime/cache.py, or the digits)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, size: tuple[int, int], normalize: dict, *,
                 min_scale: float, flip: bool, jitter: float, shard: Shard | None = None):
        self.images, self.labels = images, labels.to(images.device)
        self.size, self.normalize = size, normalize
        self.min_scale, self.flip, self.jitter = min_scale, flip, jitter
        self.shard = shard or Shard()

    def train_epoch(self, positions: torch.Tensor, batch: int, epoch: int, seed: int) -> Iterator:
        batches = self._train_epoch(positions, batch, epoch, seed)
        return prefetched(batches) if self.images.device.type == "cpu" else batches  # see runtime/prefetch.py

    def _train_epoch(self, positions: torch.Tensor, batch: int, epoch: int, seed: int) -> Iterator:
        generator = epoch_generator(seed, epoch)
        for chunk in global_batches(positions, batch, generator):
            params = draw_crops(batch, generator, self.min_scale, self.flip, self.jitter)
            rows = self.shard.rows(batch)
            mine = chunk[rows].to(self.images.device, non_blocking=True)
            yield augment(self.images[mine], params[rows], self.size, self.normalize), self.labels[mine]

    def eval_batches(self, positions: torch.Tensor, batch: int) -> Iterator:
        mine = positions[self.shard.rank::self.shard.world].to(self.images.device)
        for chunk in mine.split(batch):
            yield centre_crop(self.images[chunk], self.size, self.normalize), self.labels[chunk]


class FileImages(torch.utils.data.Dataset):
    """Files read with PIL in DataLoader workers. Items are (position, seed): each sample's
    augmentation is seeded on its own, so results do not depend on the number of workers."""

    def __init__(self, files, labels: torch.Tensor, channels: int, transform):
        self.files, self.labels, self.channels, self.transform = files, labels, channels, transform

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, key: tuple[int, int]):
        position, seed = key
        try:
            image = read_pil(self.files[position], self.channels)
        except _pil_errors() as error:  # it decoded when the data set was scanned; a file changed since
            print(f"archc: warning: {self.files[position]} no longer decodes ({error}); a blank image stands in",
                  file=sys.stderr)
            from PIL import Image

            image = Image.new("RGB" if self.channels == 3 else "L", (32, 32))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self.transform(image), self.labels[position]


class _EpochBatches:
    """A batch sampler whose epoch is set before each pass: the worker processes stay up between epochs."""

    def __init__(self, positions: torch.Tensor, batch: int, seed: int, shard: Shard):
        self.positions, self.batch, self.seed, self.shard, self.epoch = positions, batch, seed, shard, 0

    def __iter__(self):
        generator = epoch_generator(self.seed, self.epoch)
        for chunk in global_batches(self.positions, self.batch, generator):
            seeds = torch.randint(0, 2**62, (self.batch,), generator=generator)
            rows = self.shard.rows(self.batch)
            yield list(zip(chunk[rows].tolist(), seeds[rows].tolist()))

    def __len__(self) -> int:
        return len(self.positions) // self.batch


class LoaderBatches:
    """Batches from files through DataLoader workers: the path for data sets that do not fit the device."""

    def __init__(self, files, labels: torch.Tensor, channels: int, size: tuple[int, int], normalize: dict,
                 eval_resize: int, *, min_scale: float, flip: bool, jitter: float, workers: int, pin: bool,
                 shard: Shard | None = None):
        ckpt_like = {"input": [channels, *size], "eval_resize": eval_resize, "normalize": normalize}
        self.train_set = FileImages(files, labels, channels, train_transform(size, normalize, min_scale, flip, jitter))
        self.eval_set = FileImages(files, labels, channels, eval_transform(ckpt_like))
        self.workers, self.pin, self.shard = workers, pin, shard or Shard()
        self._train_loader = None

    def train_epoch(self, positions: torch.Tensor, batch: int, epoch: int, seed: int) -> Iterator:
        if self._train_loader is None:
            self._sampler = _EpochBatches(positions, batch, seed, self.shard)
            self._train_loader = self._loader(self.train_set, self._sampler, persistent=True)
        self._sampler.epoch = epoch
        return iter(self._train_loader)

    def eval_batches(self, positions: torch.Tensor, batch: int) -> Iterator:
        mine = positions[self.shard.rank::self.shard.world].tolist()
        chunks = [[(p, 0) for p in mine[i:i + batch]] for i in range(0, len(mine), batch)]
        return iter(self._loader(self.eval_set, chunks, persistent=False))

    def _loader(self, dataset, batch_sampler, persistent: bool):
        return torch.utils.data.DataLoader(dataset, batch_sampler=batch_sampler, num_workers=self.workers,
                                           pin_memory=self.pin, persistent_workers=persistent and self.workers > 0,
                                           prefetch_factor=4 if self.workers > 0 else None)
