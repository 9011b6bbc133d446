"""Token ids on disk and random batches from them.

The corpus is tokenized once and the ids are cached as flat binary files (uint16 when the
vocabulary fits, else uint32) that are memory-mapped, so a corpus larger than RAM still
trains. A batch is `B` random windows of `T + 1` consecutive ids: inputs are the first `T`,
targets the same window shifted by one.

    ids:     [5, 9, 2, 7, 3, ...]    window at 1 of length T + 1 = 4: [9, 2, 7, 3]
    x = [9, 2, 7]    y = [2, 7, 3]   (predict each next id)
"""

import hashlib
import os

import numpy as np
import torch

from glassformer.core.files import atomic_write_bytes
from glassformer.core.paths import cache_dir
from glassformer.errors import UserError
from glassformer.tokenizers import Tokenizer


def cached_token_ids(text: str, tokenizer: Tokenizer, key: str) -> np.memmap:
    """Encode `text` once; later calls with the same text and tokenizer map the cached file."""
    dtype = np.uint16 if tokenizer.vocab_size <= 2**16 else np.uint32
    digest = hashlib.sha256(text.encode("utf-8") + key.encode("utf-8")).hexdigest()[:24]
    path = cache_dir() / "tokens" / f"{digest}.{np.dtype(dtype).name}.bin"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        ids = np.asarray(tokenizer.encode_ordinary(text), dtype=dtype)  # specials as text
        atomic_write_bytes(path, ids.tobytes())
    return np.memmap(path, dtype=dtype, mode="r")


def machine_memory() -> int | None:
    """This machine's physical memory in bytes (None where the OS does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def check_batch_fits(rows: int, block_size: int, itemsize: int, memory: int | None) -> None:
    """Refuse a step whose token ids alone cannot fit in `memory` bytes, before allocating.

    A step gathers `rows` windows of `block_size + 1` ids (in the memmap's dtype, then as
    int64), plus one int64 start per row: a lower bound on what it needs, since the model's
    activations come on top. 10**11 rows of 33 ids: 3.6e13 bytes, refused in one sentence
    instead of a traceback from the allocator.
    """
    need = rows * ((block_size + 1) * (itemsize + 8) + 8)
    if memory is not None and need > memory:
        raise UserError(
            f"a step of {rows:,} sequences of {block_size + 1} tokens (train.batch_size x "
            f"train.grad_accum) needs {need / 2**30:,.1f} GiB for its token ids alone, more "
            f"than this machine's {memory / 2**30:,.1f} GiB of memory; lower --train.batch_size"
        )


class Batches:
    """Random (x, y) windows from a 1-D array of ids, drawn with a seeded generator.

    >>> b = Batches(np.arange(100), block_size=4)
    >>> x, y = b.sample(2, torch.Generator().manual_seed(0))
    >>> bool((x[:, 1:] == y[:, :-1]).all())
    True
    """

    def __init__(self, ids: np.ndarray, block_size: int):
        self.ids, self.block_size = ids, block_size
        self._offsets = np.arange(block_size + 1)  # (T + 1,)

    def __len__(self) -> int:
        return len(self.ids)

    def sample(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        starts = torch.randint(len(self.ids) - self.block_size, (batch_size,), generator=generator)
        windows = self.ids[starts.numpy()[:, None] + self._offsets]  # (B, T + 1) gathered at once
        windows = torch.from_numpy(windows.astype(np.int64))
        return windows[:, :-1], windows[:, 1:]  # (B, T), (B, T)


def split_ids(ids: np.ndarray, val_fraction: float, block_size: int) -> tuple[np.ndarray, ...]:
    """The first (1 - val_fraction) of the ids train, the rest validates."""
    n_val = int(len(ids) * val_fraction)
    train, val = ids[: len(ids) - n_val], ids[len(ids) - n_val :]
    need = block_size + 1
    if len(val) < need or len(train) < need:
        raise UserError(
            f"the corpus is too short: {len(ids)} tokens, but each split needs more than the "
            f"context of {block_size} tokens; use a longer text or a smaller "
            f"--model.block_size (at most {max(1, min(len(train), len(val)) - 1)})"
        )
    return train, val
