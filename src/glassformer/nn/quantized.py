"""Weight-only quantization: Linear layers whose weights are stored in 8 or 4 bits.

Decoding one token reads every weight once and multiplies it by one vector, so its speed is
set by how many bytes the weights take, not by arithmetic. Storing each weight in fewer bits
and expanding it inside the matmul kernel reads fewer bytes; the activations stay in floating
point ("weight-only"). Two formats, both computed by PyTorch's own CPU kernels:

    int8, one scale per output row (per channel):
        s[n]    = max_k |W[n, k]| / 127
        q[n, k] = round(W[n, k] / s[n])                      in [-127, 127]
        W[n, k] ~ q[n, k] * s[n]                             torch.ops.aten._weight_int8pack_mm

    int4, a scale and an offset per group of `group_size` inputs of a row (GGUF's Q4_1 with
    group 32; gpt-fast and torchao use the same kernel):
        lo, hi  = min, max of W[n, g*gs : (g+1)*gs]
        s[n, g] = (hi - lo) / 15
        q[n, k] = round((W[n, k] - lo) / s)                   in [0, 15]
        W[n, k] ~ (q[n, k] - 8) * s[n, g] + z[n, g],  z = lo + 8 s
                                                   torch.ops.aten._weight_int4pack_mm_for_cpu

A (V, C) embedding table is stored as int8 rows (a row's scale is the per-channel scale of
the tied LM head, which can share it); with int4 the LM head stays int8 (see `quantize`).
The kernels take activations in the dtype of the scales; on CPUs bf16 activations run 10-50x
faster in them than fp32 (measured with both the AVX512 and the AVX2 kernels,
docs/performance.md), so a quantized layer rounds its input to bf16 and returns its output in
the input's dtype: the residual stream, the norms and the KV cache keep the model's dtype.

`quantize(model, "int4")` replaces the model's Linear and embedding modules in place (their
float weights are freed); `quantized_copy` leaves the model as it is. The model's own forward
runs unchanged: a quantized layer is called like the Linear it replaces.

    >>> model = quantize(GPT(config), "int4", group_size=32)   # doctest: +SKIP
    >>> logits, _ = model(ids)   # the same forward, on 4-bit weights   # doctest: +SKIP
"""

import copy
import ctypes
import gc
import sys

import torch
from torch import nn

from glassformer.errors import UserError

QUANTIZED_DTYPES = ("int8", "int4")
GROUP_SIZES = (32, 64, 128, 256)


def int8_weights(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row symmetric int8: W (N, K) -> q (N, K) int8, scales (N,) fp32; W ~ q * s[:, None].

    >>> q, s = int8_weights(torch.tensor([[1.0, -0.5], [0.0, 0.0]]))
    >>> q.tolist(), s.tolist()
    ([[127, -64], [0, 0]], [0.007874015718698502, 1.0])
    """
    w = w.detach().float()
    scales = w.abs().amax(dim=1) / 127  # (N,)
    scales = torch.where(scales > 0, scales, torch.ones_like(scales))  # an all-zero row
    q = torch.round(w / scales[:, None]).clamp(-127, 127).to(torch.int8)  # (N, K)
    return q, scales


def int4_weights(w: torch.Tensor, group_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Group-wise asymmetric int4: W (N, K) -> q (N, K) int32 in [0, 15], scales_and_zeros
    (K / gs, N, 2) fp32 with W[n, k] ~ (q[n, k] - 8) * s[k // gs, n] + z[k // gs, n].

    >>> q, sz = int4_weights(torch.tensor([[0.0, 1.5, 3.0, 0.75]]), group_size=4)
    >>> q.tolist(), sz.tolist()
    ([[0, 8, 15, 4]], [[[0.20000000298023224, 1.600000023841858]]])
    """
    N, K = w.shape
    groups = w.detach().float().reshape(N, K // group_size, group_size)  # (N, G, gs)
    lo, hi = groups.amin(dim=-1), groups.amax(dim=-1)  # (N, G)
    scales = ((hi - lo) / 15).clamp(min=1e-8)  # (N, G)
    q = torch.round((groups - lo[..., None]) / scales[..., None]).clamp(0, 15)  # (N, G, gs)
    zeros = lo + 8 * scales  # (N, G): the value of q = 8
    scales_and_zeros = torch.stack((scales, zeros), dim=-1).transpose(0, 1)  # (G, N, 2)
    return q.reshape(N, K).to(torch.int32), scales_and_zeros.contiguous()


class Int8Linear(nn.Module):
    """y = x W^T + b with W stored as int8 rows times one scale per row (see the top)."""

    def __init__(self, q: torch.Tensor, scales: torch.Tensor, bias: torch.Tensor | None):
        super().__init__()
        self.out_features, self.in_features = q.shape
        self.register_buffer("q", q)  # (N, K) int8
        self.register_buffer("scales", scales)  # (N,) in the activations' dtype
        self.register_buffer("bias", bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (..., K) -> (..., N) in the dtype of the scales."""
        x2 = x.reshape(-1, self.in_features).to(self.scales.dtype).contiguous()  # (M, K)
        y = torch.ops.aten._weight_int8pack_mm(x2, self.q, self.scales)  # (M, N)
        if self.bias is not None:
            y = y + self.bias
        return y.view(*x.shape[:-1], self.out_features).to(x.dtype)

    def dequantize(self) -> torch.Tensor:
        """The weight the kernel multiplies by, (N, K) fp32."""
        return self.q.float() * self.scales.float()[:, None]

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int8"


class Int4Linear(nn.Module):
    """y = x W^T + b with W stored as packed 4-bit numbers, a scale and a zero per group."""

    def __init__(
        self,
        packed: torch.Tensor,
        scales_and_zeros: torch.Tensor,
        bias: torch.Tensor | None,
        in_features: int,
        group_size: int,
    ):
        super().__init__()
        self.out_features, self.in_features = packed.size(0), in_features
        self.group_size = group_size
        self.register_buffer("packed", packed)  # (N, K / 2) uint8, the kernel's tiled layout
        self.register_buffer("scales_and_zeros", scales_and_zeros)  # (K / gs, N, 2)
        self.register_buffer("bias", bias)

    @staticmethod
    def fits(out_features: int, in_features: int, group_size: int) -> bool:
        """Can the packed int4 kernel take this shape? (N a multiple of 16, K of the group.)"""
        return out_features % 16 == 0 and in_features % group_size == 0

    @classmethod
    def from_weight(
        cls, w: torch.Tensor, bias: torch.Tensor | None, dtype: torch.dtype, group_size: int
    ) -> "Int4Linear":
        q, scales_and_zeros = int4_weights(w.contiguous(), group_size)
        packed = torch.ops.aten._convert_weight_to_int4pack_for_cpu(q, 1)  # (N, K / 2) uint8
        b = None if bias is None else bias.detach().to(dtype)
        return cls(packed, scales_and_zeros.to(dtype), b, w.size(1), group_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (..., K) -> (..., N) in the dtype of the scales."""
        x2 = x.reshape(-1, self.in_features).to(self.scales_and_zeros.dtype).contiguous()
        y = torch.ops.aten._weight_int4pack_mm_for_cpu(
            x2, self.packed, self.group_size, self.scales_and_zeros
        )  # (M, N)
        if self.bias is not None:
            y = y + self.bias
        return y.view(*x.shape[:-1], self.out_features).to(x.dtype)

    def dequantize(self) -> torch.Tensor:
        """The weight the kernel multiplies by, (N, K) fp32: the fp32 kernel applied to I
        (the packed layout is the kernel's own)."""
        eye = torch.eye(self.in_features)  # (K, K)
        w_t = torch.ops.aten._weight_int4pack_mm_for_cpu(
            eye, self.packed, self.group_size, self.scales_and_zeros.float()
        )  # (K, N)
        return w_t.t().contiguous()

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"int4, group_size={self.group_size}"
        )


class Int8Embedding(nn.Module):
    """A (V, C) lookup table stored as int8 rows times one scale per row."""

    def __init__(self, q: torch.Tensor, scales: torch.Tensor):
        super().__init__()
        self.register_buffer("q", q)  # (V, C) int8
        self.register_buffer("scales", scales)  # (V,) in the activations' dtype

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """ids (B, T) -> vectors (B, T, C)."""
        return self.q[idx].to(self.scales.dtype) * self.scales[idx].unsqueeze(-1)  # (B, T, C)

    def dequantize(self) -> torch.Tensor:
        return self.q.float() * self.scales.float()[:, None]


def _check(dtype: str, group_size: int) -> None:
    if dtype not in QUANTIZED_DTYPES:
        raise UserError(f"unknown quantized dtype {dtype!r}; use one of {QUANTIZED_DTYPES}")
    if group_size not in GROUP_SIZES:
        raise UserError(f"group size {group_size} is not one of {GROUP_SIZES}; pick one of them")


def _targets(model: nn.Module) -> list[tuple[nn.Module, str, nn.Module]]:
    """(parent, attribute name, module) of every Linear and Embedding to quantize."""
    return [
        (parent, name, child)
        for parent in model.modules()
        for name, child in parent.named_children()
        if isinstance(child, (nn.Linear, nn.Embedding))
    ]


def quantize(
    model: nn.Module,
    dtype: str,
    group_size: int = 32,
    activations: torch.dtype = torch.bfloat16,
    embeddings: bool = True,
    int8_layers: tuple[str, ...] = ("lm_head",),
) -> nn.Module:
    """Replace `model`'s Linear layers (and with `embeddings` its Embedding tables) by int8 /
    int4 ones, in place, and return the model. Every other weight (norms, biases of the
    residual stream) stays as it is, so the residual stream keeps its dtype; only the
    quantized matmuls take their input in `activations`.

    With "int4", the Linears named in `int8_layers` stay int8: by default the LM head, whose
    logits are the most sensitive (SmolLM2's perplexity: +0.03% with an int8 head, +4% with
    an int4 one; GGUF's Q4 files keep it in 8 bits too), and so do layers whose shape the
    packed kernel cannot take (out_features not a multiple of 16, in_features not a multiple
    of `group_size`). An embedding and a Linear that share one weight (a tied LM head) share
    its int8 rows.
    """
    _check(dtype, group_size)
    if any(p.device.type != "cpu" for p in model.parameters()):
        raise UserError(
            f"{dtype} weights run on PyTorch's CPU kernels; move the model to the CPU "
            "(--device cpu) or decode in bfloat16"
        )
    model.eval()
    rows: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # id(weight) -> int8 q, scales

    def int8(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if id(w) not in rows:
            rows[id(w)] = int8_weights(w.contiguous())
        return rows[id(w)]

    for parent, name, child in _targets(model):
        w = child.weight  # (N, K); the kernels want it row-major (nn/layout.py may re-stride it)
        new: nn.Module
        if isinstance(child, nn.Embedding):
            if not embeddings:
                continue
            q, scales = int8(w)
            new = Int8Embedding(q, scales.to(w.dtype))
        elif dtype == "int4" and name not in int8_layers and Int4Linear.fits(*w.shape, group_size):
            new = Int4Linear.from_weight(w, child.bias, activations, group_size)
        else:
            q, scales = int8(w)
            bias = None if child.bias is None else child.bias.detach().to(activations)
            new = Int8Linear(q, scales.to(activations), bias)
        setattr(parent, name, new)
    release_freed_memory()
    return model


def release_freed_memory() -> None:
    """Hand memory freed by the replaced float weights back to the system. glibc keeps freed
    heap blocks for reuse otherwise: SmolLM2 quantized in place to int8 measured 714 MB
    resident without this, 400 MB with it (benchmarks/quantized_quality.py --rss)."""
    gc.collect()
    if sys.platform == "linux":
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):  # not glibc (musl): nothing to trim this way
            pass


def quantized_copy(
    model: nn.Module,
    dtype: str,
    group_size: int = 32,
    activations: torch.dtype = torch.bfloat16,
    embeddings: bool = True,
    int8_layers: tuple[str, ...] = ("lm_head",),
) -> nn.Module:
    """`quantize` applied to a copy of `model`; the model keeps its float weights. The copy
    never holds a second float copy of the quantized weights (they are read, not copied)."""
    _check(dtype, group_size)
    targets = [child for _, _, child in _targets(model)]
    kept = [c.weight for c in targets if isinstance(c, nn.Embedding) and not embeddings]
    # the weights `quantize` replaces are shared with the original, not copied; one that
    # stays float in the copy (an embedding kept with embeddings=False) is copied and cast
    shared = {
        id(t): t
        for c in targets
        for t in (c.weight, getattr(c, "bias", None))
        if t is not None and not any(t is k for k in kept)
    }
    copied = copy.deepcopy(model, memo=shared)
    return quantize(copied, dtype, group_size, activations, embeddings, int8_layers)
