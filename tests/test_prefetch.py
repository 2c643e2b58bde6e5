"""runtime/prefetch.py: the tensor cache's CPU batches made ahead in a thread, unchanged."""

import threading
import time

import pytest

torch = pytest.importorskip("torch")

from archc.runtime.batches import TensorBatches
from archc.runtime.prefetch import prefetched


def test_the_same_items_in_the_same_order():
    assert list(prefetched(iter(range(100)), depth=3)) == list(range(100))
    assert list(prefetched(iter([]))) == []


def test_an_error_in_the_thread_is_raised_in_the_consumer_after_the_items_before_it():
    def items():
        yield 1
        yield 2
        raise ValueError("unreadable batch")

    got = []
    with pytest.raises(ValueError, match="unreadable batch"):
        for item in prefetched(items()):
            got.append(item)
    assert got == [1, 2]


def test_closing_early_stops_the_thread():
    def endless():
        n = 0
        while True:
            n += 1
            yield n

    batches = prefetched(endless())
    assert [next(batches) for _ in range(3)] == [1, 2, 3]
    batches.close()
    deadline = time.monotonic() + 5
    while any(t.name == "archc-prefetch" for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not any(t.name == "archc-prefetch" for t in threading.enumerate())


def test_cpu_tensor_batches_are_the_unprefetched_ones():
    """The thread draws the same crops in the same order: a resumed run still sees the same pixels."""
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (40, 3, 20, 20), dtype=torch.uint8, generator=g)
    source = TensorBatches(images, torch.arange(40) % 4, (16, 16), {"mean": [0.5] * 3, "std": [0.25] * 3},
                           min_scale=0.3, flip=True, jitter=0.2)
    positions = torch.arange(40)
    ahead = list(source.train_epoch(positions, 8, epoch=3, seed=7))
    direct = list(source._train_epoch(positions, 8, epoch=3, seed=7))
    assert len(ahead) == len(direct) == 5
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(ahead, direct))
