"""Model FLOPs utilisation: the share of the machine's matmul peak that training turns into
model arithmetic.

    flops per token = 6 * N + 12 * n_layer * block_size * n_embd
    MFU             = flops per token * tokens/s / peak FLOP/s

N counts the weights that multiply activations (every Linear, the LM head once even when it
is tied to the embedding, not the position table): each does 2 FLOPs per token forward and
4 backward. The second term is attention's q k^T and pattern @ v (PaLM, appendix B; nanoGPT
counts the same way). The peak is measured, not read from a spec sheet: the best rate of a
square matmul at the precision training runs in, on the threads torch uses. It is cached
per machine, thread count and dtype, so only the first run of a machine pays the ~0.5 s.

    >>> from glassformer.models.config import GPTConfig
    >>> from glassformer.models.gpt import GPT
    >>> m = GPT(GPTConfig(vocab_size=65, block_size=64, n_layer=4, n_head=4, n_embd=128))
    >>> flops_per_token(m)  # 6 * 794,752 matmul weights + 12 * 4 * 64 * 128
    5161728
"""

import json
import os
import platform
import time

import torch
from torch import nn

from glassformer.core.files import atomic_write_text
from glassformer.core.paths import cache_dir


def matmul_weights(model: nn.Module) -> int:
    """Entries of every distinct Linear weight (a tied head counts once, as the head)."""
    seen = {id(m.weight): m.weight.numel() for m in model.modules() if isinstance(m, nn.Linear)}
    return sum(seen.values())


def flops_per_token(model: nn.Module) -> int:
    """Training FLOPs (forward + backward) per token of a GPT-shaped model."""
    c = model.config
    return 6 * matmul_weights(model) + 12 * c.n_layer * c.block_size * c.n_embd


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def measure_matmul_peak(
    dtype: torch.dtype, device: torch.device, n: int = 1024, repeats: int = 10
) -> float:
    """Best FLOP/s of an (n, n) @ (n, n) product over `repeats` timings (after a warm-up).

    Uses its own random generator, so measuring never shifts the training's random stream.
    """
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=gen).to(device=device, dtype=dtype)
    b = torch.randn(n, n, generator=gen).to(device=device, dtype=dtype)
    for _ in range(2):
        a @ b
    _sync(device)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        _sync(device)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best


def _machine_key(dtype: torch.dtype, device: torch.device) -> str:
    if device.type == "cuda":
        where = torch.cuda.get_device_name(device)
    else:
        where = f"{platform.processor() or platform.machine()}-{os.cpu_count()}cpu"
    return (
        f"{where}|{device.type}|{torch.get_num_threads()}threads|{dtype}|torch{torch.__version__}"
    )


def matmul_peak(dtype: torch.dtype, device: torch.device) -> float:
    """The measured peak FLOP/s for `dtype` on `device`, from the cache when measured before."""
    path = cache_dir() / "matmul_peak.json"
    key = _machine_key(dtype, device)
    try:
        known = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        known = {}
    if key not in known:
        known[key] = measure_matmul_peak(dtype, device)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(known, indent=1))
    return float(known[key])
