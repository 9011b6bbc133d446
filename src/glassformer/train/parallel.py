"""Model parallelism: FSDP2 and tensor parallelism, PyTorch's own engines (`--train.parallel`).

With `ddp` (distributed.py) every process holds the whole model. The two modes here split
the model itself over the N processes of a `torchrun`:

    fsdp  fully_shard (FSDP2): each process keeps 1/N of every parameter, of its gradient and
          of its optimizer state (row blocks of each tensor, as DTensors). Just before a block
          runs forward or backward, its whole weights are all-gathered, used and freed again;
          after its backward the gradients are reduce-scattered: each process keeps the mean
          of its own 1/N. Data-parallel like DDP: each process takes its share of the batch.
    tp    tensor parallelism (Megatron-LM): each process keeps 1/N of every block's matrices
          for good and computes its part of each matmul on the whole batch.

              attention  qkv column-parallel: each process the q, k, v of its own heads
                         proj  row-parallel: partial sums over the heads, one all-reduce
              MLP        fc    column-parallel: each process 1/N of the hidden units
                         proj  row-parallel: partial sums, one all-reduce

          Embeddings, norms and the LM head stay whole and are computed alike everywhere.

The fused qkv Linear is one matrix [q | k | v]; cutting it into N row blocks would give a
process all of q and none of v. `shard_tensor_parallel` first reorders its rows so that row
block r is [q, k, v of the heads of process r] (and SwiGLU's [gate | up] to [gate_r | up_r]);
`TensorParallel.whole` undoes that for checkpoints, which are always whole, unsharded
weights that one process loads. Rotary positions act per head and grouped-query attention
maps consecutive query heads to one K/V head, so a process holding query heads
r*nh/N .. and K/V heads r*nkv/N .. computes exactly its heads' attention.

    torchrun --standalone --nproc-per-node 2 -m glassformer train --train.parallel tp
"""

import torch
from torch import nn
from torch.distributed.device_mesh import DeviceMesh
from torch.distributed.fsdp import fully_shard
from torch.distributed.tensor import DTensor, distribute_tensor
from torch.distributed.tensor.parallel import ColwiseParallel, RowwiseParallel, parallelize_module

from glassformer.errors import UserError


def section_order(sizes: tuple[int, ...], n: int) -> torch.Tensor:
    """The row order that gives each of `n` row blocks its share of every section.

    >>> section_order((4, 2, 2), 2).tolist()   # [q0 q1 q2 q3 | k0 k1 | v0 v1] -> two blocks
    [0, 1, 4, 6, 2, 3, 5, 7]
    """
    starts = torch.tensor((0, *sizes[:-1])).cumsum(0).tolist()
    return torch.cat(
        [
            torch.arange(start + r * size // n, start + (r + 1) * size // n)
            for r in range(n)
            for start, size in zip(starts, sizes, strict=True)
        ]
    )


def shard_fsdp(model: nn.Module, mesh: DeviceMesh) -> None:
    """FSDP2: one all-gather unit per block (`model.blocks`, if any), the rest in the root."""
    for block in getattr(model, "blocks", ()):
        fully_shard(block, mesh=mesh)
    fully_shard(model, mesh=mesh)


class TensorParallel:
    """Shard a GPT's blocks over `mesh` (in place) and remember the reordered rows."""

    def __init__(self, model: nn.Module, mesh: DeviceMesh):
        n = mesh.size()
        c = getattr(model, "config", None)
        if not hasattr(model, "blocks") or getattr(c, "n_head", None) is None:
            raise UserError("--train.parallel tp shards GPT blocks; train this model with fsdp")
        if c.n_head % n or c.kv_heads % n:
            raise UserError(
                f"--train.parallel tp gives each of the {n} processes whole heads, but the model "
                f"has {c.n_head} query and {c.kv_heads} key/value heads; make --model.n_head "
                f"(and --model.n_kv_head) a multiple of {n}"
            )
        if c.cosine_attn:
            raise UserError(
                "--train.parallel tp does not shard cosine attention's per-head temperatures; "
                "train with --model.cosine_attn false or with ddp or fsdp"
            )
        if model.blocks[0].attn.score_bias is not None:
            raise UserError(
                f"--train.parallel tp does not shard the per-head slopes of --model.pos_emb "
                f"{c.pos_emb}; train with ddp or fsdp"
            )
        self.order: dict[str, torch.Tensor] = {}  # parameter name -> its rows' order when sharded
        for i, block in enumerate(model.blocks):
            attn, mlp = block.attn, block.mlp
            hs = attn.head_dim
            hidden = mlp.proj.in_features
            if hidden % n:
                raise UserError(
                    f"--train.parallel tp splits the MLP's {hidden} hidden units over {n} "
                    f"processes; make the hidden width a multiple of {n}"
                )
            fused = {
                "attn.qkv": (attn.n_head * hs, attn.n_kv_head * hs, attn.n_kv_head * hs),
                "mlp.fc": (hidden, hidden) if mlp.gated else (hidden,),
            }
            for name, sizes in fused.items():
                linear = block.get_submodule(name)
                order = section_order(sizes, n)
                with torch.no_grad():
                    for kind, p in linear.named_parameters():
                        p.copy_(p[order])
                        self.order[f"blocks.{i}.{name}.{kind}"] = order
            parallelize_module(
                block,
                mesh,
                {
                    "attn.qkv": ColwiseParallel(),
                    "attn.proj": RowwiseParallel(),
                    "mlp.fc": ColwiseParallel(),
                    "mlp.proj": RowwiseParallel(),
                },
            )
            attn.n_head, attn.n_kv_head = attn.n_head // n, attn.n_kv_head // n  # this process's

    def whole(self, name: str, tensor: torch.Tensor) -> torch.Tensor:
        """Parameter `name`'s gathered tensor (or its optimizer state) in the model's order."""
        order = self.order.get(name)
        return tensor if order is None else tensor[order.argsort()]

    def shard(self, name: str, tensor: torch.Tensor, like: DTensor) -> DTensor:
        """A whole tensor of parameter `name` cut as `like` (the parameter) is cut."""
        order = self.order.get(name)
        tensor = tensor if order is None else tensor[order]
        return distribute_tensor(tensor, like.device_mesh, like.placements)
