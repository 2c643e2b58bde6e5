"""Run an iterator one or two items ahead in a thread.

The tensor cache cuts and augments each batch with torch ops (runtime/augment.py). On a GPU
they are queued asynchronously, so the next batch is prepared while the step runs; on a CPU
they would run between steps, on the training thread. Made in a thread instead (torch ops
release the GIL), the next batch's crops overlap this step's training: on the 2-core machine
benchmarks/train_throughput.py (b) measures. The thread is the only reader of the iterator,
so what it yields (and the random crops it draws) does not change.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator

_END = object()


class _Raised:
    def __init__(self, error: BaseException):
        self.error = error


def prefetched(items: Iterator, depth: int = 2) -> Iterator:
    """`items`, made up to `depth` ahead in a daemon thread; an exception there is raised here. Closing
    (or abandoning) this generator stops the thread at its next item."""
    ready: queue.Queue = queue.Queue(depth)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(_END)
        except BaseException as error:  # noqa: BLE001 - handed to the consumer, which raises it
            put(_Raised(error))

    thread = threading.Thread(target=produce, name="archc-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = ready.get()
            if item is _END:
                return
            if isinstance(item, _Raised):
                raise item.error
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)
