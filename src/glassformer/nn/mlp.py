"""The MLP (feed-forward) sublayer: the same two-layer network applied to every position.

    h = act(x W_in + b_in)        (T, hidden): hidden = mlp_ratio * d_model, usually 4x,
                                  or `mlp_hidden` when set (SmolLM2: 1536 for d_model 576)
    y = h W_out + b_out           (T, d_model)

Attention moves information between positions; the MLP transforms it within each position.
SwiGLU (Shazeer 2020) gates the hidden layer: h = silu(x W_gate) * (x W_up), and uses 2/3 of
the hidden width so that its parameter count matches the two-matrix MLP.
"""

import torch
import torch.nn.functional as F
from torch import nn

from glassformer.nn.config import TransformerConfig
from glassformer.nn.hooks import HookPoint

ACTIVATIONS = {
    "gelu": nn.GELU(),
    "gelu_tanh": nn.GELU(approximate="tanh"),
    "relu": nn.ReLU(),
    "relu2": lambda x: F.relu(x).square(),
    "silu": nn.SiLU(),
}


def mlp_hidden_size(config: TransformerConfig) -> int:
    """`mlp_hidden` if set, else mlp_ratio * n_embd, times 2/3 for SwiGLU (rounded to 8s)."""
    if config.mlp_hidden:
        return config.mlp_hidden
    hidden = config.mlp_ratio * config.n_embd
    if config.activation == "swiglu":
        hidden = 2 * hidden / 3
        return max(8, int(round(hidden / 8)) * 8)
    return int(hidden)


class MLP(nn.Module):
    def __init__(self, config: TransformerConfig):
        super().__init__()
        hidden = mlp_hidden_size(config)
        self.gated = config.activation == "swiglu"
        # SwiGLU: one fused Linear makes both the gate and the up projection
        self.fc = nn.Linear(config.n_embd, (2 if self.gated else 1) * hidden, bias=config.bias)
        self.act = F.silu if self.gated else ACTIVATIONS[config.activation]
        self.proj = nn.Linear(hidden, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)
        self.hook_pre = HookPoint()  # (B, T, hidden) before the activation (SwiGLU: the gate)
        self.hook_post = HookPoint()  # (B, T, hidden) after it: the "neurons"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc(x)  # (B, T, hidden) or (B, T, 2 * hidden)
        if self.gated:
            gate, up = h.chunk(2, dim=-1)  # 2 x (B, T, hidden)
            h = self.hook_post(self.act(self.hook_pre(gate)) * up)
        else:
            h = self.hook_post(self.act(self.hook_pre(h)))
        return self.dropout(self.proj(h))
