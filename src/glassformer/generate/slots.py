"""`SlotCache`: the server's batch KV cache, one row per running request, rows come and go.

Continuous batching decodes every running request with one forward per step. Their histories
have different lengths, so the rows are aligned on the right: the newest token of every row
sits in the same slot, and a shorter row starts with padding that is masked out, its positions
counted from its first real token (the left padding of nn/kv_cache.py):

    slot:          0  1  2  3  4  5        size = 6
    row 0 (len 6)  a  b  c  d  e  f        start 0
    row 1 (len 3)  .  .  .  x  y  z        start 3: keys 0-2 hidden, positions 0, 1, 2
    row 2 (len 4)  .  .  p  q  r  s        start 2

- `admit(k, v)`: a request's prompt was prefilled alone (its own batch-1 KVCache); its keys
  and values are copied into the next free row, right-aligned. A prompt longer than `size`
  first shifts every row to the right.
- a decode step is `model(newest ids (n, 1), cache=slots)`: the cache *is* a `KVCache` over
  the n running rows (views of the storage), so every row's key and value land in slot `size`.
- `release(row)`: the last row moves into the freed one (the running rows stay 0..n-1, so a
  step never computes an empty row) and the padding every row shares on the left is dropped.

The storage grows when needed (doubling, up to the model's context), so a server with
`--max-batch 16` on a long-context model does not reserve 16 full contexts up front.

    >>> slots = SlotCache(model, rows=4)                       # doctest: +SKIP
    >>> row = slots.admit(prefill.k[:, 0], prefill.v[:, 0])     # (n_layer, nkv, T, hs) each
    >>> logits, _ = model(newest, cache=slots, last_only=True)  # newest: (slots.batch, 1)
"""

import torch

from glassformer.nn.kv_cache import KVCache


class SlotCache(KVCache):
    """Keys and values of up to `rows` requests; `k`, `v` view the running rows 0..n-1."""

    def __init__(self, model: torch.nn.Module, rows: int, capacity: int = 64):
        c = model.config
        p = next(model.parameters())
        self.limit = c.block_size  # positions beyond the context are never fed
        super().__init__(
            c.n_layer, rows, c.kv_heads, min(capacity, self.limit), c.head_dim, p.dtype, p.device
        )
        self.store_k, self.store_v = self.k, self.v  # (n_layer, rows, nkv, capacity, hs)
        self.starts: list[int] = []  # first real slot of each running row
        self._select()

    @property
    def rows(self) -> int:
        return self.store_k.size(1)

    @property
    def running(self) -> int:
        return len(self.starts)

    def lengths(self) -> list[int]:
        """Tokens in the cache per running row."""
        return [self.size - s for s in self.starts]

    def admit(self, k: torch.Tensor, v: torch.Tensor) -> int:
        """Add a prefilled request, k and v (n_layer, nkv, T, hs); its row (the last one)."""
        if self.running == self.rows:
            raise RuntimeError("no free row: release one first")
        T = k.size(2)
        if T > self.size:
            self._shift_right(T - self.size)
        row = self.running
        self.store_k[:, row, :, self.size - T : self.size] = k
        self.store_v[:, row, :, self.size - T : self.size] = v
        self.starts.append(self.size - T)
        self._select()
        return row

    def reserve(self, T: int) -> None:
        """Make room for T more slots (call before feeding T tokens to the running rows)."""
        self._grow(self.size + T)

    def release(self, row: int) -> int:
        """Free `row`; returns the row whose request now lives there (the old last row)."""
        last = self.running - 1
        if row != last:
            self.store_k[:, row] = self.store_k[:, last]
            self.store_v[:, row] = self.store_v[:, last]
            self.starts[row] = self.starts[last]
        self.starts.pop()
        drop = min(self.starts, default=self.size)  # padding shared by every row
        if drop:
            n, keep = self.running, self.size - drop
            for t in (self.store_k, self.store_v):
                t[:, :n, :, :keep] = t[:, :n, :, drop : self.size].clone()
            self.starts = [s - drop for s in self.starts]
            self.size = keep
        self._select()
        return last

    def _shift_right(self, d: int) -> None:
        """Move every running row d slots to the right (more padding in front of each)."""
        self._grow(self.size + d)
        n = self.running
        for t in (self.store_k, self.store_v):
            t[:, :n, :, d : d + self.size] = t[:, :n, :, : self.size].clone()
        self.starts = [s + d for s in self.starts]
        self.size += d

    def _grow(self, need: int) -> None:
        if need > self.limit:
            raise ValueError(f"{need} slots are more than the model's context ({self.limit})")
        if need <= self.capacity:
            return
        self.capacity = min(self.limit, max(need, 2 * self.capacity))
        shape = (*self.store_k.shape[:3], self.capacity, self.store_k.size(4))
        for name in ("store_k", "store_v"):
            old = getattr(self, name)
            new = old.new_zeros(shape)
            new[:, :, :, : self.size] = old[:, :, :, : self.size]
            setattr(self, name, new)
        self._select()

    def _select(self) -> None:
        """Point the KVCache fields at the running rows: k, v, their padding and valid keys."""
        n = self.running
        self.k, self.v = self.store_k[:, :n], self.store_v[:, :n]  # (n_layer, n, nkv, cap, hs)
        self.seen = self.size  # no rolling here: the next slot is the next position
        device = self.store_k.device
        pad = torch.tensor(self.starts, dtype=torch.long, device=device)  # (n,)
        if n and bool(pad.any()):
            self.pad = pad
            slots = torch.arange(self.capacity, device=device)  # (capacity,)
            self.key_valid = slots[None, :] >= pad[:, None]  # (n, capacity)
        else:
            self.pad = self.key_valid = None
