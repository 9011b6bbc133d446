"""Where to run and at what precision.

bf16 halves memory traffic, but only some hardware multiplies bf16 fast: CUDA GPUs from
Ampere (sm80) on, and CPUs with AMX or AVX512-BF16. On a plain AVX2 CPU a bf16 matmul is
about 100x slower than fp32, so `auto` precision picks bf16 autocast only where it is fast.
"""

import contextlib
from functools import lru_cache

import torch

from glassformer.errors import UserError


def pick_device(name: str = "auto") -> torch.device:
    """`auto`: cuda, then mps, then cpu; a named device must exist on this machine."""
    if name != "auto":
        return _available(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def _available(name: str) -> torch.device:
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise UserError(f"unknown device {name!r}; pass cpu, cuda, cuda:N, mps or auto") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0 or (device.index or 0) >= count:
            raise UserError(
                f"device {name!r} is not available here ({count} CUDA GPUs); pass cpu or auto"
            )
    elif device.type == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise UserError(
                f"device {name!r} is not available here (no Apple GPU); pass cpu or auto"
            )
    elif device.type != "cpu":
        raise UserError(
            f"device {name!r} is not one glassformer runs on; pass cpu, cuda, mps or auto"
        )
    return device


@lru_cache(maxsize=1)
def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def has_fast_bf16(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported() and torch.cuda.get_device_capability(device)[0] >= 8
    if device.type == "cpu":
        return bool({"amx_bf16", "avx512_bf16"} & _cpu_flags())
    return False


def resolve_precision(precision: str, device: torch.device) -> str:
    """`auto` -> `bf16` where the hardware has fast bf16, else `fp32`."""
    if precision == "auto":
        return "bf16" if has_fast_bf16(device) else "fp32"
    return precision


def autocast(precision: str, device: torch.device):
    """A context that runs matmuls in bf16 for precision `bf16`, and does nothing for fp32."""
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
