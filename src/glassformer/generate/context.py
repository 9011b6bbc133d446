"""`Context`: the token history of a generation and the model state that goes with it.

Every decoding strategy asks one question over and over: "given the tokens so far, what are
the logits of the next one?". A `Context` answers it, with or without a KV cache:

    ctx = Context(model, prompt_ids)          # (B, T) ids, optionally left-padded
    logits = ctx.logits()                     # (B, V) after the prompt (the prefill)
    ctx.append(next_ids)                      # (B, 1) the chosen tokens
    logits = ctx.logits()                     # one decode step: only the new token is fed

With `use_cache=False` each `logits()` runs the model over the whole window again (the plain
definition; the tests compare the cached path against it).

The cache holds what the generation needs, `room` new tokens after the prompt (the caller's
max_new_tokens), and grows only when a later turn goes past that. A prompt longer than
`PREFILL_CHUNK` tokens is fed in chunks of that many: the activations of one chunk are what a
long prompt keeps in memory, and each chunk's queries see the cached keys of the earlier ones
(the same logits as one pass). `prefill_precision="bf16"` runs the multi-token feeds under bf16
autocast (fast where the CPU has AVX512-BF16 or AMX: core/device.py); the keys and values are
stored in the model's dtype, and the one-token decode steps stay exact fp32 on those.

`decode_model` (optional) is a copy of the model in another dtype that runs the one-token
decode steps while the model itself runs every multi-token prefill. On a CPU whose bf16
matrix-matrix products are slow but whose bf16 matrix-vector products read half the bytes of
fp32 ones, a bf16 copy makes each decode step faster (benchmarks/generate_speed.py) at the
price of bf16 rounding in the logits; the cache is converted between the two dtypes.

Longer than the context (block_size = n):

- Learned or sinusoidal positions (a table of n rows): the model can only see the last n
  tokens, at positions 0..n-1. Once the history exceeds n, every step re-encodes the last n
  tokens from scratch (the cache is refilled from position 0), so a step costs a prefill of
  n tokens. With or without the cache the logits are the same.
- Rotary or no positions (no table): the cache rolls. When it is full the oldest entry is
  dropped and positions keep counting; attention depends only on offsets, so each new token
  sees the last n tokens' keys and values as they were computed when those tokens were new.
  This is sliding-window attention of width n over the whole history (each layer's keys of
  old tokens were themselves computed in their own window), which differs from re-encoding
  the last n tokens; without the cache the same banded attention is computed over the whole
  history. A prompt longer than n is cropped to its last n tokens in both cases.
"""

import torch

from glassformer.core.device import autocast
from glassformer.nn.kv_cache import KVCache
from glassformer.nn.positions import POSITIONS

PREFILL_CHUNK = 512  # a longer prompt is fed in chunks of this many tokens


class Context:
    """Token history (B, N) plus, with `use_cache`, the KV cache of its fed part."""

    def __init__(
        self,
        model: torch.nn.Module,
        ids: torch.Tensor,
        pad: torch.Tensor | None = None,
        use_cache: bool = True,
        decode_model: torch.nn.Module | None = None,
        room: int = 0,
        prefill_precision: str = "fp32",
    ):
        self.model = model
        self.room = room  # tokens the caller will append: the cache is sized for them
        self.prefill_precision = prefill_precision  # "fp32" or "bf16" (autocast)
        self.decode_model = decode_model if use_cache else None
        self.block = model.config.block_size
        self.rolls = not POSITIONS[model.config.pos_emb].max_length  # no table to outgrow
        self.use_cache = use_cache and model.config.causal
        if ids.size(1) > self.block:  # the model cannot see more: keep the last block tokens
            dropped = ids.size(1) - self.block
            ids = ids[:, dropped:]
            pad = None if pad is None else (pad - dropped).clamp(min=0)
        self.ids = ids  # (B, N): the whole history, left padding included
        self.pad = pad if pad is not None and bool(pad.any()) else None  # (B,) or None
        self.cache: KVCache | None = None
        self.fed = 0  # how many tokens of `ids` are in the cache
        self.hidden: torch.Tensor | None = None  # (B, T, C) after the final norm, if kept
        self.keep_hidden = False

    @property
    def batch(self) -> int:
        return self.ids.size(0)

    def append(self, new: torch.Tensor) -> None:
        """Add chosen tokens (B, T) to the history; they are fed at the next `logits()`."""
        self.ids = torch.cat((self.ids, new), dim=1)

    def logits(self) -> torch.Tensor:
        """Next-token logits (B, V) after the whole history."""
        if not self.use_cache:
            return self._forward_window()
        N = self.ids.size(1)
        if self.cache is None and (self.rolls or N <= self.block):  # the prefill
            capacity = min(self.block, N + self.room)
            self.cache = KVCache.for_model(self.model, self.batch, capacity, self.pad)
            logits = self._feed(0, min(N, self.block))
            if N <= self.block:
                return logits
        elif self.cache is None or (not self.rolls and self.cache.size + N - self.fed > self.block):
            self._restart_cache()  # a position table: re-encode the last block tokens from 0
            return self._feed(N - self.block, N)
        if self.cache.size + N - self.fed <= self.block:
            return self._feed(self.fed, N)
        for t in range(self.fed, N):  # rolling, one at a time: each sees its own window
            self.cache.roll(self.cache.size + 1 - self.block)
            logits = self._feed(t, t + 1)
        return logits

    def reorder(self, rows: torch.Tensor) -> None:
        """Keep rows `rows` of the batch, in that order (beam and contrastive search)."""
        self.ids = self.ids.index_select(0, rows)
        if self.pad is not None:
            self.pad = self.pad.index_select(0, rows)
        if self.cache is not None:
            self.cache.reorder(rows)

    def _feed(self, start: int, end: int) -> torch.Tensor:
        """Run ids[:, start:end] through the cache; the logits (B, V) after the last of them."""
        need = self.cache.size + end - start
        if need > self.cache.capacity:  # a later turn past the room: grow once for this turn
            self.cache.grow(min(self.block, max(need + self.room, 2 * self.cache.capacity)))
        if end - start == 1:  # a decode step
            model = self.decode_model or self.model
            if self.decode_model is not None:
                self.cache.to(next(model.parameters()).dtype)
            logits, _ = self._run(self.ids[:, start:end], cache=self.cache, model=model)
        else:
            if self.decode_model is not None:
                self.cache.to(next(self.model.parameters()).dtype)
            hidden = []  # each chunk's hidden states, when kept (contrastive search)
            with autocast(self.prefill_precision, self.ids.device):
                for a in range(start, end, PREFILL_CHUNK):
                    chunk = self.ids[:, a : min(a + PREFILL_CHUNK, end)]
                    logits, _ = self._run(chunk, cache=self.cache)
                    hidden.append(self.hidden)
            if self.keep_hidden:
                self.hidden = torch.cat(hidden, dim=1)  # (B, end - start, C)
        self.fed = end
        return logits[:, -1, :].float()  # (B, V)

    def _restart_cache(self) -> None:
        """Empty the cache, positions from 0 again, padding shifted out with the old tokens."""
        dropped = self.ids.size(1) - self.block
        pad = None if self.pad is None else (self.pad - dropped).clamp(min=0)
        self.cache = KVCache.for_model(self.model, self.batch, self.block, pad)

    def _forward_window(self) -> torch.Tensor:
        """No cache: run the model over what it can see and return the last logits."""
        N = self.ids.size(1)
        if N > self.block and self.rolls:
            return self._banded()
        window = self.ids[:, -self.block :]  # (B, ≤ block)
        pad = None if self.pad is None else (self.pad - max(0, N - self.block)).clamp(min=0)
        cache = None
        if pad is not None and bool(pad.any()):  # padding needs the mask and row positions
            cache = KVCache.for_model(self.model, self.batch, window.size(1), pad)
        logits, _ = self._run(window, cache=cache)
        return logits[:, -1, :]

    def _banded(self) -> torch.Tensor:
        """No cache, past the context, no position table: sliding-window attention over all."""
        N = self.ids.size(1)
        cache = KVCache.for_model(self.model, self.batch, N, self.pad, window=self.block)
        logits, _ = self._run(self.ids, cache=cache)
        return logits[:, -1, :]

    def _run(self, ids: torch.Tensor, cache: KVCache | None, model=None):
        model = model or self.model
        if not self.keep_hidden:
            return model(ids, cache=cache, last_only=True)
        handle = model.hook_final.add_hook(self._keep)
        try:
            return model(ids, cache=cache)
        finally:
            handle.remove()

    def _keep(self, x: torch.Tensor, name: str) -> None:
        self.hidden = x  # (B, T, C)
