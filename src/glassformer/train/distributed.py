"""Data-parallel training across processes (`torchrun --nproc_per_node N`).

Every process holds a full copy of the model and computes gradients on its own share of
each step's micro-batches; DistributedDataParallel averages the gradients (all-reduce) so
every copy takes the same optimizer step. gloo carries the all-reduce on CPUs, NCCL on GPUs.
"""

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class Distributed:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls, device_type: str) -> "Distributed":
        """Join the process group that `torchrun` describes in RANK / WORLD_SIZE, if any."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", world))
        if device_type == "cpu":  # share the cores instead of oversubscribing them
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // local_world))
        return cls(dist.get_rank(), int(os.environ.get("LOCAL_RANK", "0")), world)

    def mean(self, value: torch.Tensor) -> torch.Tensor:
        """The mean of `value` over all processes."""
        if self.enabled:
            value = value.clone()
            dist.all_reduce(value)
            value /= self.world_size
        return value

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def close(self) -> None:
        if self.enabled and dist.is_initialized():
            dist.destroy_process_group()
