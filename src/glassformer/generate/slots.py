"""`SlotCache`: the engine's KV cache, one row per sequence being decoded; rows come and go.

One forward decodes every running row at once. Their histories have different lengths, so
the rows are aligned on the right: the newest token of every row sits in the same slot, and a
shorter row starts with padding that is masked out (the left padding of nn/kv_cache.py):

    slot:          0  1  2  3  4  5        size = 6
    row 0 (len 6)  a  b  c  d  e  f        start 0
    row 1 (len 3)  .  .  .  x  y  z        start 3: keys 0-2 hidden
    row 2 (len 4)  .  .  p  q  r  s        start 2

A row's positions count from its first real token, plus its `offset`: the tokens that rolled
out of a sliding window before it (generate/context.py), so a rolled row keeps counting.

- `admit(k, v, offset)`: a row prefilled elsewhere (a batch `KVCache`) joins, right-aligned;
  a row longer than `size` first shifts every row to the right.
- a decode step is `model(newest ids (n, 1), cache=slots)`: the cache *is* a `KVCache` over
  the n running rows (views of the storage), so every row's key and value land in slot `size`.
- `release(row)`: the last row moves into the freed one (the running rows stay 0..n-1, so a
  step never computes an empty row) and the padding every row shares on the left is dropped.
- `take(row)`: a copy of a row's keys and values (to feed it several tokens alone);
  `copy(dst, src)`: rows take other rows' contents (beam search keeps its best beams).

The storage grows when needed, in rows and in slots (up to the model's context, each time to
`room` slots past the need, or double), so one sequence costs what it uses and a server with
16 rows on a long-context model does not reserve 16 full contexts up front.

    >>> slots = SlotCache(model)                                # doctest: +SKIP
    >>> row = slots.admit(prefill.k[:, 0], prefill.v[:, 0])     # (n_layer, nkv, T, hs) each
    >>> logits, _ = model(newest, cache=slots, last_only=True)  # newest: (slots.batch, 1)
"""

import torch

from glassformer.nn.kv_cache import KVCache


class SlotCache(KVCache):
    """Keys and values of the running rows; `k`, `v` view rows 0..n-1 of the storage."""

    def __init__(
        self,
        model: torch.nn.Module,
        rows: int = 1,
        capacity: int = 0,
        room: int = 0,
        dtype: torch.dtype | None = None,
    ):
        c = model.config
        p = next(model.parameters())
        self.limit = c.block_size  # positions beyond the context are never fed
        self.room = room  # slots added past the need when the storage grows
        super().__init__(
            c.n_layer,
            rows,
            c.kv_heads,
            min(capacity, self.limit),
            c.head_dim,
            dtype or p.dtype,
            p.device,
        )
        self.store_k, self.store_v = self.k, self.v  # (n_layer, rows, nkv, capacity, hs)
        self.starts: list[int] = []  # first real slot of each running row
        self.offsets: list[int] = []  # position of that slot (tokens rolled out before it)
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

    def admit(self, k: torch.Tensor, v: torch.Tensor, offset: int = 0) -> int:
        """Add a prefilled row, k and v (n_layer, nkv, T, hs); its index (the last one)."""
        T = k.size(2)
        row = self.allocate()
        if T > self.size:
            self._shift_right(T - self.size)
        self.store_k[:, row, :, self.size - T : self.size] = k
        self.store_v[:, row, :, self.size - T : self.size] = v
        self.starts[row], self.offsets[row] = self.size - T, offset
        self._select()
        return row

    def allocate(self) -> int:
        """A new running row holding nothing (all padding); its index."""
        if self.running == self.rows:
            self._resize(2 * self.rows, self.capacity)
        self.starts.append(self.size)
        self.offsets.append(0)
        self._select()
        return self.running - 1

    def take(self, row: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        """A copy of row `row`: its k, v (n_layer, nkv, T, hs) and its offset."""
        s = self.starts[row]
        k = self.store_k[:, row, :, s : self.size].clone()
        v = self.store_v[:, row, :, s : self.size].clone()
        return k, v, self.offsets[row]

    def copy(self, dst: list[int], src: list[int]) -> None:
        """Row dst[i] becomes a copy of what row src[i] holds (all at once: they may overlap)."""
        if not dst:
            return
        d = torch.tensor(dst, device=self.store_k.device)
        s = torch.tensor(src, device=self.store_k.device)
        for t in (self.store_k, self.store_v):
            t[:, d, :, : self.size] = t[:, s, :, : self.size]  # the right side is a copy
        starts, offsets = list(self.starts), list(self.offsets)
        for i, j in zip(dst, src, strict=True):
            self.starts[i], self.offsets[i] = starts[j], offsets[j]
        self._select()

    def begin(self, T: int) -> None:
        """Before a forward of T tokens per row: every new slot holds a real token."""
        if self.size + T > self.capacity:
            raise ValueError(f"reserve {T} slots before feeding them ({self.size} used)")
        self.step_mask = self.attention_mask(T)

    def reserve(self, T: int) -> None:
        """Make room for T more slots (call before feeding T tokens to the running rows)."""
        self._grow(self.size + T)

    def release(self, row: int) -> int:
        """Free `row`; returns the row whose contents now live there (the old last row)."""
        last = self.running - 1
        if row != last:
            self.store_k[:, row] = self.store_k[:, last]
            self.store_v[:, row] = self.store_v[:, last]
            self.starts[row], self.offsets[row] = self.starts[last], self.offsets[last]
        self.starts.pop()
        self.offsets.pop()
        self._compact()
        self._select()
        return last

    def _compact(self) -> None:
        """Drop the padding every running row shares on the left."""
        drop = min(self.starts, default=self.size)
        if drop:
            n, keep = self.running, self.size - drop
            for t in (self.store_k, self.store_v):
                t[:, :n, :, :keep] = t[:, :n, :, drop : self.size].clone()
            self.starts = [s - drop for s in self.starts]
            self.size = keep

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
        self.capacity = min(self.limit, max(need + self.room, 2 * self.capacity))
        self._resize(self.rows, self.capacity)

    def _resize(self, rows: int, capacity: int) -> None:
        shape = (self.store_k.size(0), rows, self.store_k.size(2), capacity, self.store_k.size(4))
        n = self.running
        for name in ("store_k", "store_v"):
            old = getattr(self, name)
            new = old.new_zeros(shape)
            new[:, :n, :, : self.size] = old[:, :n, :, : self.size]
            setattr(self, name, new)
        self._select()

    def _select(self) -> None:
        """Point the KVCache fields at the running rows: k, v, their positions, valid keys."""
        n = self.running
        self.k, self.v = self.store_k[:, :n], self.store_v[:, :n]  # (n_layer, n, nkv, cap, hs)
        self.seen = self.size  # the next slot; a row's position is this minus its `pad`
        device = self.store_k.device
        starts = torch.tensor(self.starts, dtype=torch.long, device=device)  # (n,)
        offsets = torch.tensor(self.offsets, dtype=torch.long, device=device)  # (n,)
        pad = starts - offsets  # (n,): position = slot - pad
        self.pad = pad if n and bool(pad.any()) else None
        if n and bool(starts.any()):
            slots = torch.arange(self.capacity, device=device)  # (capacity,)
            self.key_valid = slots[None, :] >= starts[:, None]  # (n, capacity)
        else:
            self.key_valid = None
