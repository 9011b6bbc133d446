"""The key/value cache: decode one token without recomputing the whole prefix.

In causal self-attention the keys and values of earlier positions never change when a token
is appended. So generation runs the prompt once (the *prefill*), keeps every layer's k and v,
and then feeds only the newest token (the *decode step*): its query attends to the stored keys
plus its own. A step then costs one pass over the weights instead of one pass per position.

    prefill:  ids (B, T0) --model--> logits; cache holds k, v for positions 0..T0-1
    decode:   id  (B, 1)  --model--> logits; cache appends k, v for position T0, T0+1, ...

Layout: one preallocated tensor per kind, (n_layer, B, n_kv_head, capacity, head_dim), filled
left to right; `size` slots are in use. Only the key/value heads are stored: with grouped-query
attention (n_kv_head < n_head) the cache is n_head / n_kv_head times smaller. Nothing is
allocated per step: a step writes its k, v into the next slot and attention reads the view
`[..., :size, :]`.

The capacity is what the generation needs (prompt + new tokens), not the model's context:
SmolLM2's 8192 positions would be 380 MB per sequence, its 5-token prompt + 128 new tokens
are 6 MB. A conversation that goes on past it calls `grow` (one copy, then room again).

Left padding (batches of prompts with different lengths) is described by `pad` (B,): row b
starts with pad[b] padding tokens. Those keys are masked out, and row b's positions count from
its first real token, so a padded row computes what it would compute alone.

When the cache is full, `roll(n)` drops the n oldest entries (a sliding window). That is only
meaningful for position schemes without a table (rotary, ALiBi, none): see generate/context.py.

    >>> cache = KVCache(n_layer=2, batch=1, n_kv_head=4, capacity=16, head_dim=8)
    >>> cache.size, cache.seen
    (0, 0)
"""

import torch


class LayerKV:
    """One layer's view of a `KVCache`; attention calls `update` with the new k, v."""

    def __init__(self, cache: "KVCache", layer: int):
        self.cache, self.layer = cache, layer

    def update(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store k, v (B, nkv, T, hs) after the cached ones; return all keys and values so far."""
        c = self.cache
        start, end = c.size, c.size + k.size(2)
        c.k[self.layer, :, :, start:end] = k
        c.v[self.layer, :, :, start:end] = v
        return c.k[self.layer, :, :, :end], c.v[self.layer, :, :, :end]  # (B, nkv, Tk, hs)

    def attention_mask(self) -> tuple[torch.Tensor | None, bool]:
        """(mask, causal) for this forward pass: computed once by `KVCache.begin`."""
        return self.cache.step_mask

    def key_positions(self, Tq: int) -> torch.Tensor:
        """Positions of the keys `update` returned to Tq new queries: see `KVCache`."""
        return self.cache.key_positions(Tq)


class KVCache:
    """Preallocated keys and values for every layer, plus the bookkeeping of positions.

    `size`: slots in use (≤ capacity). `seen`: tokens fed so far (the next token's position,
    before subtracting the row's padding); seen > size once the window has rolled.
    """

    def __init__(
        self,
        n_layer: int,
        batch: int,
        n_kv_head: int,
        capacity: int,
        head_dim: int,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
        pad: torch.Tensor | None = None,
        window: int | None = None,
    ):
        shape = (n_layer, batch, n_kv_head, capacity, head_dim)
        self.k = torch.zeros(shape, dtype=dtype, device=device)
        self.v = torch.zeros(shape, dtype=dtype, device=device)
        self.capacity, self.size, self.seen = capacity, 0, 0
        self.window = window  # if set, a query sees only the `window` most recent keys
        self.layers = [LayerKV(self, i) for i in range(n_layer)]
        self.step_mask: tuple[torch.Tensor | None, bool] = (None, True)
        self.pad = None if pad is None or not bool(pad.any()) else pad.to(device)
        # key_valid[b, j]: slot j of row b holds a real token (not padding)
        self.key_valid = None
        if self.pad is not None:
            self.key_valid = torch.zeros(batch, capacity, dtype=torch.bool, device=device)

    @classmethod
    def for_model(
        cls,
        model: torch.nn.Module,
        batch: int,
        capacity: int,
        pad: torch.Tensor | None = None,
        window: int | None = None,
    ) -> "KVCache":
        """A cache of `capacity` positions shaped for `model` (a GPT): its K/V heads."""
        c = model.config
        p = next(model.parameters())
        return cls(
            c.n_layer, batch, c.kv_heads, capacity, c.head_dim, p.dtype, p.device, pad, window
        )

    @property
    def batch(self) -> int:
        return self.k.size(1)

    def positions(self, T: int) -> torch.Tensor:
        """Positions of the next T tokens: (T,), or (B, T) when rows have padding."""
        pos = torch.arange(self.seen, self.seen + T, device=self.k.device)  # (T,)
        if self.pad is None:
            return pos
        return (pos[None, :] - self.pad[:, None]).clamp(min=0)  # (B, T)

    def key_positions(self, Tq: int) -> torch.Tensor:
        """Positions of the size + Tq keys that the next Tq queries see: (Tk,), or (B, Tk).

        Slot j holds the (seen - size + j)-th token fed, so after `roll` the oldest key is not
        at position 0; with padding a row's positions count from its first real token (its
        padding keys, masked anyway, get 0). A position scheme that biases the attention
        scores by distance (ALiBi) reads these.
        """
        pos = torch.arange(self.seen - self.size, self.seen + Tq, device=self.k.device)  # (Tk,)
        if self.pad is None:
            return pos
        return (pos[None, :] - self.pad[:, None]).clamp(min=0)  # (B, Tk)

    def begin(self, T: int) -> None:
        """Called by the model before feeding T tokens: mark which new slots are real tokens."""
        if self.size + T > self.capacity:
            raise ValueError(
                f"the cache holds {self.capacity} tokens; {self.size} are used and {T} more "
                f"were fed; roll it or start a new one"
            )
        if self.key_valid is not None:
            pos = torch.arange(self.seen, self.seen + T, device=self.k.device)  # (T,)
            self.key_valid[:, self.size : self.size + T] = pos[None, :] >= self.pad[:, None]
        self.step_mask = self.attention_mask(T)

    def end(self, T: int) -> None:
        """Called by the model after all layers stored their k, v for T new tokens."""
        self.size += T
        self.seen += T

    def attention_mask(self, Tq: int) -> tuple[torch.Tensor | None, bool]:
        """What the Tq newest queries may see among the size + Tq keys, as (mask, causal).

        Query i (the i-th new token) sees keys 0..size+i: a causal mask aligned to the bottom
        right. SDPA's `is_causal` aligns top-left, which is right only for an empty cache.
        With `window` w, query i sees only keys size+i-w+1..size+i (a band).
        """
        Tk = self.size + Tq
        banded = self.window is not None and Tk > self.window
        if self.key_valid is None and not banded:
            if Tq == 1:
                return None, False  # one new token may see every cached key
            if self.size == 0:
                return None, True
        ones = torch.ones(Tq, Tk, dtype=torch.bool, device=self.k.device)
        causal = ones.tril(Tk - Tq)
        if banded:  # sliding window: hide keys more than `window` - 1 positions back
            causal = causal & ~ones.tril(Tk - Tq - self.window)
        if self.key_valid is None:
            return causal, False  # (Tq, Tk)
        allowed = causal & self.key_valid[:, None, :Tk]  # (B, Tq, Tk)
        # every query sees at least itself: a padding query's row of -inf would give NaN
        allowed = allowed | causal.triu(Tk - Tq)  # the diagonal
        return allowed[:, None], False  # (B, 1, Tq, Tk)

    def grow(self, capacity: int) -> None:
        """Hold up to `capacity` positions (≥ the current one); the cached entries are kept."""
        if capacity <= self.capacity:
            return
        for name in ("k", "v"):
            old = getattr(self, name)
            new = old.new_zeros((*old.shape[:3], capacity, old.size(4)))
            new[:, :, :, : self.size] = old[:, :, :, : self.size]
            setattr(self, name, new)
        if self.key_valid is not None:
            valid = self.key_valid.new_zeros(self.batch, capacity)
            valid[:, : self.size] = self.key_valid[:, : self.size]
            self.key_valid = valid
        self.capacity = capacity

    def roll(self, n: int) -> None:
        """Forget the n oldest entries (shift the rest left); positions keep counting."""
        if n <= 0:
            return
        keep = self.size - n
        for t in (self.k, self.v):
            t[:, :, :, :keep] = t[:, :, :, n : self.size].clone()
        if self.key_valid is not None:
            self.key_valid[:, :keep] = self.key_valid[:, n : self.size].clone()
        self.size = keep

    def to(self, dtype: torch.dtype) -> "KVCache":
        """Hold keys and values in `dtype` (a bf16 decode model after an fp32 prefill)."""
        if self.k.dtype != dtype:
            self.k, self.v = self.k.to(dtype), self.v.to(dtype)
        return self

    def reorder(self, rows: torch.Tensor) -> None:
        """Keep rows `rows` (B',) of the batch, in that order (beam search, contrastive search).

        Only the `size` filled slots are copied: the rest of the capacity is written before it
        is read. (Copying all of it moved 1.5 GB a step of beam 4 on SmolLM2, whose context
        is 8192: 32 tokens took 113 s instead of 15 s on a busy 2-core CPU.)
        """
        shape = (self.k.size(0), len(rows), *self.k.shape[2:])  # (L, B', nkv, capacity, hs)
        k, v = self.k.new_empty(shape), self.v.new_empty(shape)
        k[:, :, :, : self.size] = self.k[:, rows, :, : self.size]
        v[:, :, :, : self.size] = self.v[:, rows, :, : self.size]
        self.k, self.v = k, v
        if self.pad is not None:
            self.pad = self.pad.index_select(0, rows)
            self.key_valid = self.key_valid.index_select(0, rows)
