"""LoRA: fine-tune a large Linear layer through a small low-rank update (Hu et al., 2021).

A pretrained layer computes y = W x with W of shape (out, in). Full fine-tuning learns a new W:
out * in numbers per layer, each with an AdamW state twice its size. LoRA keeps W frozen and
learns only a low-rank correction

    y = W x + (alpha / r) * B A x          A: (r, in), B: (out, r), r << min(in, out)

so a layer trains r * (in + out) numbers instead of out * in: for SmolLM2's 576 -> 1536 MLP
matrix at r = 8, 16,896 instead of 884,736 (2%). The product B A is never formed while
training: x goes down to r numbers (A x) and back up (B ...), which costs 2 r (in + out)
multiply-adds per token beside the frozen layer's 2 in * out.

- B starts at zero, so B A = 0 and the wrapped model is exactly the pretrained one at step 0;
  A starts random (Kaiming-uniform, as nn.Linear), so B's gradient (dL/dy)(A x)^T is not zero.
- alpha / r scales the update, so changing r does not change how far one step moves the
  output: tune the learning rate once, then try ranks.
- Merging folds the update into the weight, W' = W + (alpha / r) B A, a plain nn.Linear again:
  the merged model is as fast as the original and any reader of our checkpoints (or of a
  Hugging Face export) loads it without knowing LoRA existed.

    >>> layer = nn.Linear(8, 6, bias=False)
    >>> lora = LoRALinear(layer, rank=2, alpha=4.0)
    >>> x = torch.randn(3, 8)
    >>> bool(torch.equal(lora(x), layer(x)))              # B = 0: the same function
    True
    >>> sum(p.numel() for p in lora.parameters() if p.requires_grad)   # 2 * (8 + 6)
    28
"""

import copy
import math

import torch
from torch import nn

# the Linear layers of a transformer block that get adapters: the fused q/k/v projection
# (one adapter for all three: A is shared, B's rows split into q, k and v), the attention
# output, and the MLP's two matrices. Embeddings, norms and the LM head stay frozen.
TARGETS = ("attn.qkv", "attn.proj", "mlp.fc", "mlp.proj")


class LoRAMatmul(torch.autograd.Function):
    """y = x W^T + b + s (x A^T) B^T for x (M, in), and its gradients, with the frozen W and b.

    What autograd would do with the same lines, with three savings: the update is added into
    the base product in place (`addmm_`: no (M, out) temporary, no separate sum), the scale s
    multiplies inside that product, and every product with a thin (r-wide) matrix puts the
    thin factor on the left, the orientation the CPU's matmul kernels run fast: A x^T, an
    (r, M) result, instead of x A^T, (M, r) (the latter measured 2-8x slower in fp32 and up
    to 1.8x in bf16 for these shapes). W and b get no gradients: they are frozen.

        down^T = A x^T                   (r, M)     up^T = B^T dy^T                    (r, M)
        y  = x W^T + b + s down B^T      (M, out)   dx   = dy W + s up A               (M, in)
                                                    dA   = s up^T x                    (r, in)
                                                    dB   = s (down^T dy)^T             (out, r)
    """

    @staticmethod
    def forward(ctx, x, weight, bias, A, B, scale):
        down_t = A @ x.t()  # (r, M)
        y = x @ weight.t() if bias is None else torch.addmm(bias, x, weight.t())  # (M, out)
        y.addmm_(down_t.t(), B.t(), alpha=scale)  # + s down B^T
        ctx.save_for_backward(x, weight, A, B, down_t)
        ctx.scale = scale
        return y

    @staticmethod
    def backward(ctx, dy):
        x, weight, A, B, down_t = ctx.saved_tensors
        s = ctx.scale
        up_t = B.t() @ dy.t()  # (r, M)
        dx = None
        if ctx.needs_input_grad[0]:
            dx = (dy @ weight).addmm_(up_t.t(), A, alpha=s)  # (M, in)
        dA = (up_t @ x).mul_(s)  # (r, in)
        dB = (down_t @ dy).mul_(s).t()  # (r, out) -> (out, r)
        return dx, None, None, dA, dB, None


class LoRALinear(nn.Module):
    """A frozen `base` Linear plus the trainable low-rank update (alpha / rank) B A.

    Under autocast (bf16 training) the matmuls run in autocast's dtype, as nn.Linear's would;
    the frozen weight's cast is made once and kept (autocast would cast it again at every
    forward), and made again only if the weight changes (a load, a move to another device).
    """

    def __init__(self, base: nn.Linear, rank: int, alpha: float):
        super().__init__()
        self.base = base
        base.requires_grad_(False)
        self.rank, self.alpha, self.scale = rank, alpha, alpha / rank
        like = {"dtype": base.weight.dtype, "device": base.weight.device}
        self.A = nn.Parameter(torch.empty(rank, base.in_features, **like))
        self.B = nn.Parameter(torch.zeros(base.out_features, rank, **like))
        nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))  # nn.Linear's own init
        self._cast: tuple[tuple, torch.Tensor, torch.Tensor | None] | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kind = x.device.type
        dtype = torch.get_autocast_dtype(kind) if torch.is_autocast_enabled(kind) else x.dtype
        weight, bias = self._frozen(dtype)
        with torch.autocast(kind, enabled=False):  # dtypes chosen above
            y = LoRAMatmul.apply(
                x.reshape(-1, x.size(-1)).to(dtype),  # (M, in)
                weight, bias, self.A.to(dtype), self.B.to(dtype), self.scale,
            )  # fmt: skip
        return y.view(*x.shape[:-1], y.size(-1))  # (..., out)

    def _frozen(self, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The base's weight and bias in `dtype` (cast once while the weight stays as it is)."""
        w, b = self.base.weight, self.base.bias
        if dtype == w.dtype:
            return w, b
        key = (dtype, w.device, w.data_ptr(), w._version)
        if self._cast is None or self._cast[0] != key:
            self._cast = (key, w.detach().to(dtype), None if b is None else b.detach().to(dtype))
        return self._cast[1], self._cast[2]

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_cast": None}  # a copy (merged_copy) re-casts if it needs to

    def merged(self) -> nn.Linear:
        """A plain Linear computing the same function: W' = W + (alpha / r) B A."""
        layer = copy.deepcopy(self.base)
        with torch.no_grad():
            layer.weight += (self.B @ self.A) * self.scale  # (out, r) @ (r, in) = (out, in)
        return layer.requires_grad_(True)


def add_lora(model: nn.Module, rank: int, alpha: float) -> int:
    """Freeze `model` and wrap every Linear named in TARGETS in a LoRALinear, in place.

    Returns the number of trainable parameters (the adapters'). Raises ValueError when the
    rank is not in 1 .. the smallest side of a wrapped matrix (a larger rank is no longer
    low-rank: it costs more than the matrix it corrects).
    """
    targets = [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, nn.Linear) and name.endswith(TARGETS)
    ]
    if not targets:
        raise ValueError("the model has no attention or MLP Linear layers to adapt")
    widest = min(min(m.in_features, m.out_features) for _, m in targets)
    if not 1 <= rank <= widest:
        raise ValueError(f"the LoRA rank must be between 1 and {widest} (the model's width)")
    model.requires_grad_(False)
    for name, module in targets:
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name), child, LoRALinear(module, rank, alpha))
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def merge_lora(model: nn.Module) -> nn.Module:
    """Replace every LoRALinear of `model` by its merged Linear, in place; returns `model`."""
    wrapped = [(n, m) for n, m in model.named_modules() if isinstance(m, LoRALinear)]
    for name, module in wrapped:
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name), child, module.merged())
    return model


def merged_copy(model: nn.Module) -> nn.Module:
    """A copy of `model` with every adapter merged (the original keeps training)."""
    return merge_lora(copy.deepcopy(model))
