"""Training across the processes of a `torchrun --nproc_per_node N`: data-parallel (DDP),
fully sharded (FSDP2) or tensor-parallel, as `--train.parallel` says.

With `ddp` every process holds a full copy of the model and computes gradients on its own
share of each step's micro-batches; DistributedDataParallel averages the gradients
(all-reduce) so every copy takes the same optimizer step. `fsdp` and `tp` split the model
itself over the processes (parallel.py). gloo carries the collectives on CPUs, NCCL on GPUs.

Whatever the mode, a checkpoint holds whole weights (and a whole optimizer state) in the
one-process layout: one process loads it, and any mode resumes it.
"""

import os
from contextlib import nullcontext
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.tensor import DTensor, distribute_tensor
from torch.nn.parallel import DistributedDataParallel

from glassformer.errors import UserError
from glassformer.train.parallel import TensorParallel, shard_fsdp


@dataclass
class Distributed:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    parallel: str = "ddp"  # how the processes share the work: ddp, fsdp or tp
    _tp: TensorParallel | None = field(default=None, repr=False)
    _plain: type | None = field(default=None, repr=False)  # the model's class before sharding
    # id -> name of each sharded parameter (fsdp swaps in whole ones while a forward runs)
    _names: dict[int, str] = field(default_factory=dict, repr=False)

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def sharded(self) -> bool:
        return self.enabled and self.parallel in ("fsdp", "tp")

    @property
    def data_world(self) -> int:
        """How many shares each step's batch is cut into (tp: one, every process sees it all)."""
        return 1 if self.parallel == "tp" else self.world_size

    @property
    def data_rank(self) -> int:
        return 0 if self.parallel == "tp" else self.rank

    @classmethod
    def from_env(cls, device_type: str, parallel: str = "ddp") -> "Distributed":
        """Join the process group that `torchrun` describes in RANK / WORLD_SIZE, if any."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls(parallel=parallel)
        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", world))
        if device_type == "cpu":  # share the cores instead of oversubscribing them
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // local_world))
        return cls(dist.get_rank(), int(os.environ.get("LOCAL_RANK", "0")), world, parallel)

    # -- the model ---------------------------------------------------------------------------

    def shard(self, model: nn.Module, optimizer: str) -> nn.Module:
        """Split `model` (in place) over the processes for fsdp or tp; call before making
        the optimizer, which must see the sharded parameters."""
        if not self.sharded:
            return model
        if optimizer != "adamw":
            raise UserError(
                f"--train.parallel {self.parallel} shards every matrix, and {optimizer} needs "
                "whole ones; use --train.optimizer adamw or --train.parallel ddp"
            )
        self._plain = type(model)
        device = next(model.parameters()).device
        mesh = init_device_mesh(device.type, (self.world_size,))
        if self.parallel == "fsdp":
            shard_fsdp(model, mesh)
        else:
            self._tp = TensorParallel(model, mesh)
        self._names = {id(p): name for name, p in model.named_parameters()}
        return model

    def forward_module(self, model: nn.Module) -> nn.Module:
        """What the training step calls: DDP around the model, or the (sharded) model."""
        if self.enabled and self.parallel == "ddp":
            return DistributedDataParallel(model)
        return model

    def gradient_sync(self, forward: nn.Module, last: bool):
        """Context for one micro-batch's forward and backward: gradients are averaged over
        the processes only after the step's last micro-batch."""
        if self.enabled and self.parallel == "ddp" and not last:
            return forward.no_sync()
        if self.sharded and self.parallel == "fsdp":
            forward.set_requires_gradient_sync(last)
        return nullcontext()

    def clip_grad_norm(self, params: list[nn.Parameter], max_norm: float) -> None:
        """Scale the gradients so that their global norm is at most `max_norm`."""
        if self.parallel != "tp" or not self.sharded:
            torch.nn.utils.clip_grad_norm_(params, max_norm, foreach=True)
            return
        # tp mixes sharded (DTensor) and whole gradients, which torch's clip does not take
        grads = [p.grad for p in params if p.grad is not None]
        norms = [torch.linalg.vector_norm(g) for g in grads]
        norms = [n.full_tensor() if isinstance(n, DTensor) else n for n in norms]
        total = torch.linalg.vector_norm(torch.stack(norms))
        scale = torch.clamp(max_norm / (total + 1e-6), max=1.0).item()
        for g in grads:
            g.mul_(scale)

    def weights_finite(self, params: list[nn.Parameter]) -> bool:
        """No NaN or infinity in any process's parameters (one reduction each)."""
        local = [p.detach().to_local() if isinstance(p, DTensor) else p.detach() for p in params]
        ok = torch.isfinite(torch.nn.utils.get_total_norm(local)).float()
        if self.sharded:
            dist.all_reduce(ok, op=dist.ReduceOp.MIN)
        return bool(ok)

    # -- whole weights and optimizer state, for checkpoints -------------------------------------

    def whole_model(self, model: nn.Module) -> nn.Module | None:
        """`model` itself, or (fsdp, tp) an unsharded copy on the main process and None on the
        others: every process must call this, as the shards are gathered."""
        if not self.sharded:
            return model
        options = StateDictOptions(full_state_dict=True, cpu_offload=True)
        state = get_model_state_dict(model, options=options)
        if not self.is_main:
            return None
        with torch.random.fork_rng():  # building it draws initial weights: keep the stream
            plain = self._plain(model.config)
        plain.load_state_dict({k: self._whole(k, v) for k, v in state.items()})
        return plain.eval()

    def optimizer_state(self, optimizer: torch.optim.Optimizer) -> dict:
        """`optimizer.state_dict()` with whole tensors (fsdp, tp: gathered on every process)."""
        saved = optimizer.state_dict()
        if not self.sharded:
            return saved
        names = self._param_names(optimizer)
        saved["state"] = {
            i: {
                k: self._whole(names[i], v.full_tensor()) if isinstance(v, DTensor) else v
                for k, v in s.items()
            }
            for i, s in saved["state"].items()
        }
        return saved

    def load_optimizer_state(self, optimizer: torch.optim.Optimizer, saved: dict) -> None:
        """Load a whole `optimizer_state` (from any mode), cut as the parameters are; an
        AdamW's kernel (fused, foreach) stays this run's choice (tp cannot use the fused one).
        Muon with AdamW (never sharded) loads its parts as they were saved."""
        if not isinstance(optimizer, torch.optim.Optimizer):
            optimizer.load_state_dict(saved)
            return
        kernels = ("fused", "foreach")
        pairs = zip(saved["param_groups"], optimizer.param_groups, strict=True)
        groups = [{**old, **{k: group[k] for k in kernels if k in group}} for old, group in pairs]
        saved = {**saved, "param_groups": groups}
        if self.sharded:
            names = self._param_names(optimizer)
            params = [p for group in optimizer.param_groups for p in group["params"]]
            saved = {**saved, "state": {
                i: {k: self._shard(names[i], v, params[i]) for k, v in s.items()}
                for i, s in saved["state"].items()
            }}  # fmt: skip
        optimizer.load_state_dict(saved)

    def _param_names(self, optimizer: torch.optim.Optimizer) -> list[str]:
        """The name of each parameter in the optimizer's order (its state_dict's indices)."""
        return [self._names[id(p)] for group in optimizer.param_groups for p in group["params"]]

    def _whole(self, name: str, tensor: torch.Tensor) -> torch.Tensor:
        return tensor if self._tp is None else self._tp.whole(name, tensor)

    def _shard(self, name: str, tensor, param: nn.Parameter):
        if not isinstance(param, DTensor) or not torch.is_tensor(tensor) or tensor.dim() == 0:
            return tensor  # a whole parameter's state, or AdamW's step count
        if self._tp is not None:
            return self._tp.shard(name, tensor, param)
        return distribute_tensor(tensor, param.device_mesh, param.placements)

    # -- collectives -------------------------------------------------------------------------

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
