"""The optimizer and the learning-rate schedule.

AdamW (Loshchilov & Hutter 2019) keeps running averages of each gradient (m) and of its
square (v) and steps by lr * m / sqrt(v); weight decay shrinks weights toward zero apart
from the gradient. It is applied to matrices (Linear weights, embeddings) only: decaying
biases and norm gains has no regularising effect worth having.

Schedules map a step (and the fraction of training done) to a learning rate:

    warmup:  lr * (step + 1) / warmup_steps                    for the first warmup_steps
    cosine:  min_lr + (lr - min_lr) * (1 + cos(pi * t)) / 2    t: 0 -> 1 after warmup
    wsd:     lr until the last decay_frac of training, then linear down to min_lr
"""

import math

import torch
from torch.distributed.tensor import DTensor

from glassformer.core.device import has_fast_bf16
from glassformer.train.config import TrainConfig
from glassformer.train.muon import Muon, MuonWithAdamW, hidden_matrices


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Two groups: parameters with >= 2 dimensions decay, the rest (biases, gains) do not."""
    params = [p for p in model.parameters() if p.requires_grad]
    return [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig, device: torch.device):
    """AdamW with decay / no-decay groups (the fused kernel where torch has one for `device`);
    for `optimizer="muon"`, Muon on the hidden matrices and that AdamW on the rest."""
    fused = device.type in ("cuda", "cpu")
    if cfg.optimizer == "adamw":
        groups = param_groups(model, cfg.weight_decay)
        if len({isinstance(p, DTensor) for p in model.parameters()}) > 1:
            # tensor parallelism: sharded and whole parameters side by side, which the fused and
            # foreach kernels refuse to mix; AdamW then updates one parameter at a time
            return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), foreach=False)
        return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), fused=fused)
    hidden = hidden_matrices(model)
    hidden_ids = {id(p) for p in hidden}
    rest = [p for p in model.parameters() if p.requires_grad and id(p) not in hidden_ids]
    groups = [
        {"params": [p for p in rest if p.dim() >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in rest if p.dim() < 2], "weight_decay": 0.0},
    ]
    adamw = torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), fused=fused)
    muon = Muon(
        [{"params": hidden, "lr_scale": cfg.muon_lr / cfg.lr}],
        lr=cfg.muon_lr,
        momentum=cfg.muon_momentum,
        ns_dtype=torch.bfloat16 if has_fast_bf16(device) else torch.float32,
    )
    return MuonWithAdamW(muon, adamw)


def learning_rate(cfg: TrainConfig, step: int, progress: float) -> float:
    """LR for optimizer step `step` (0-based); `progress` in [0, 1] is how far training is.

    >>> cfg = TrainConfig(lr=1.0, min_lr=0.0, warmup_steps=10, max_steps=110)
    >>> learning_rate(cfg, 4, 4 / 110), round(learning_rate(cfg, 60, 60 / 110), 6)
    (0.5, 0.5)
    """
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.schedule == "constant":
        return cfg.lr
    warm = cfg.warmup_steps / cfg.max_steps
    t = min(1.0, max(0.0, (progress - warm) / max(1e-12, 1.0 - warm)))  # 0 -> 1 after warmup
    if cfg.schedule == "cosine":
        return cfg.min_lr + (cfg.lr - cfg.min_lr) * 0.5 * (1.0 + math.cos(math.pi * t))
    # wsd: stable at lr, then linear decay over the last decay_frac of training
    decay_t = max(0.0, (progress - (1.0 - cfg.decay_frac)) / cfg.decay_frac)
    return cfg.lr + (cfg.min_lr - cfg.lr) * min(1.0, decay_t)
