"""DDP under `torchrun`: the process group, and sums over processes.

`torchrun --nproc_per_node N -m archc train ...` sets RANK, WORLD_SIZE and
LOCAL_RANK; without them, a run is one process and every function here is a
no-op. The backend is NCCL on GPUs and gloo on CPUs; only rank 0 writes files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init(device: torch.device) -> Dist:
    """Join the process group that torchrun set up (a Dist of one process otherwise)."""
    if not launched_by_torchrun():
        return Dist()
    import torch.distributed as dist

    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local = int(os.environ.get("LOCAL_RANK", rank))
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=rank, world_size=world)
    return Dist(rank, world, local)


def all_sum(tensor: torch.Tensor, group: Dist) -> torch.Tensor:
    """The tensor summed over every process (in place)."""
    if group.world > 1:
        import torch.distributed as dist

        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def barrier(group: Dist) -> None:
    if group.world > 1:
        import torch.distributed as dist

        dist.barrier()


def shutdown(group: Dist) -> None:
    if group.world > 1:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def broadcast(value, group: Dist):
    """Rank 0's `value` on every process (a run folder named by rank 0's clock, say)."""
    if group.world == 1:
        return value
    import torch.distributed as dist

    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]
