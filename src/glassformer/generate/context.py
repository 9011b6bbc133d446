"""`Context`: token histories and the model state that goes with them (the engine's memory).

Every decoding strategy asks one question over and over: "given the tokens so far, what are
the logits of the next one?". A `Context` answers it for many rows at once:

    ctx = Context(model, prompt_ids)          # (B, T) ids, optionally left-padded
    logits = ctx.logits()                     # (B, V) after the prompt (the prefill)
    ctx.append(next_ids)                      # (B, 1) the chosen tokens
    logits = ctx.logits()                     # one decode step: only the new token is fed

The engine (engine.py) uses its rows directly, as sequences start and end: `add(ids) -> Row`,
`logits(rows)`, `regroup(rows, keep)` (a search keeps or multiplies rows), `remove(row)`.

All rows live in one `SlotCache` (slots.py). `logits(rows)` feeds each row what it has not
fed yet, three ways:

    fresh rows (nothing cached, within the   one batched prefill: left-padded together, in
    context)                                 chunks of PREFILL_CHUNK tokens; then each row
                                             joins the SlotCache (rows that `score` their
                                             prompt: a batch of their own, the logits of
                                             every position, `_score`)
    rows with one new token                  one decode step for all of them: the newest ids
                                             (n, 1) through the SlotCache
    any other row (a new turn of a chat,     alone: its keys and values are taken out into a
    a row at the end of the context)         batch-1 KVCache, fed, and put back

With `use_cache=False` each `logits()` runs the model over each row's whole window again (the
plain definition; the tests compare the cached path against it).

A prompt longer than `PREFILL_CHUNK` tokens is fed in chunks of that many: the activations of
one chunk are what a long prompt keeps in memory, and each chunk's queries see the cached
keys of the earlier ones (the same logits as one pass). `prefill_precision="bf16"` runs the
multi-token feeds under bf16 autocast (fast where the CPU has AVX512-BF16 or AMX:
core/device.py); the keys and values are stored in the model's dtype, and the one-token
decode steps stay exact fp32 on those.

`decode_model` (optional) is a copy of the model in another dtype that runs the one-token
decode steps while the model itself runs every multi-token prefill. On a CPU whose bf16
matrix-matrix products are slow but whose bf16 matrix-vector products read half the bytes of
fp32 ones, a bf16 copy makes each decode step faster (benchmarks/generate_speed.py) at the
price of bf16 rounding in the logits; the slot cache holds the decode copy's dtype.

Longer than the context (block_size = n):

- Learned or sinusoidal positions (a table of n rows): the model can only see the last n
  tokens, at positions 0..n-1. Once the history exceeds n, every step re-encodes the last n
  tokens from scratch (the row's cache is refilled from position 0), so a step costs a
  prefill of n tokens. With or without the cache the logits are the same.
- Rotary, ALiBi or no positions (no table): the cache rolls. When it is full the oldest entry is
  dropped and positions keep counting; attention depends only on offsets, so each new token
  sees the last n tokens' keys and values as they were computed when those tokens were new.
  This is sliding-window attention of width n over the whole history (each layer's keys of
  old tokens were themselves computed in their own window), which differs from re-encoding
  the last n tokens; without the cache the same banded attention is computed over the whole
  history. A prompt longer than n is cropped to its last n tokens in both cases.
"""

import torch

from glassformer.core.device import autocast
from glassformer.generate.slots import SlotCache
from glassformer.nn.kv_cache import KVCache
from glassformer.nn.positions import POSITIONS

PREFILL_CHUNK = 512  # a longer prompt is fed in chunks of this many tokens


class Row:
    """One token history and what of it the cache holds."""

    def __init__(self, ids: torch.Tensor, inputs: dict[str, torch.Tensor] | None = None):
        self.ids = ids  # (N,) the whole history
        self.fed = 0  # how many of `ids` are in the cache
        self.slot: int | None = None  # its row of the SlotCache while it is there
        self.parked: tuple[torch.Tensor, torch.Tensor, int] | None = None  # k, v, offset
        self.hidden: torch.Tensor | None = None  # (T, C) after the final norm, when asked
        self.inputs = inputs or {}  # per-row model inputs, e.g. an encoder's memory (S, C)
        # k >= 0: score the tokens its next multi-token feed holds (`scores`); None: don't
        self.score: int | None = None
        self.scores: list[tuple[float, list[tuple[int, float]] | None]] = []

    @property
    def new(self) -> int:
        """Tokens appended but not fed yet."""
        return self.ids.size(0) - self.fed

    def append(self, ids: torch.Tensor) -> None:
        self.ids = torch.cat((self.ids, ids.reshape(-1)))


class Context:
    """Rows of token history, their KV cache, and the logits after each."""

    def __init__(
        self,
        model: torch.nn.Module,
        ids: torch.Tensor | None = None,
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
        dtype = next((self.decode_model or model).parameters()).dtype
        self.cache = SlotCache(model, room=room, dtype=dtype)
        self.slotted: list[Row] = []  # slotted[i] is row i of the SlotCache
        self._states: torch.Tensor | None = None  # (B, T, C) of the last forward, if kept
        self._full: torch.Tensor | None = None  # (B, T, V) of the last forward, if kept
        self.rows: list[Row] = []  # the rows of `ids`, in order (what logits() returns)
        for b in range(0 if ids is None else ids.size(0)):
            self.rows.append(self.add(ids[b, 0 if pad is None else int(pad[b]) :]))

    # ---- the rows given at construction, as a batch ----------------------------------------

    @property
    def ids(self) -> torch.Tensor:
        """The histories as one (B, N) tensor, shorter rows padded with 0 on the left."""
        width = max(r.ids.size(0) for r in self.rows)
        out = self.rows[0].ids.new_zeros(len(self.rows), width)
        for b, r in enumerate(self.rows):
            out[b, width - r.ids.size(0) :] = r.ids
        return out

    def append(self, new: torch.Tensor) -> None:
        """Add chosen tokens (B, T) to the histories; they are fed at the next `logits()`."""
        for row, ids in zip(self.rows, new, strict=True):
            row.append(ids)

    # ---- rows that come and go -------------------------------------------------------------

    def add(self, ids: torch.Tensor, inputs: dict[str, torch.Tensor] | None = None) -> Row:
        """A new row with history `ids` (N,), fed at its first `logits`. The model cannot see
        more than its context: a longer history keeps its last block_size tokens."""
        return Row(ids[-self.block :], inputs)

    def remove(self, row: Row) -> None:
        """Forget `row` and free its place in the cache."""
        if row.slot is not None:
            self._release(row)
        row.parked = None

    def regroup(self, rows: list[Row], keep: list[int]) -> list[Row]:
        """Rows that continue rows[keep[0]], rows[keep[1]], ... (the same objects where there
        are enough): beam search keeps its best beams, contrastive search tries k candidates
        after one. The other rows are removed."""
        sources = [rows[j] for j in keep]
        out = list(rows[: len(keep)]) + [Row(rows[0].ids) for _ in range(len(keep) - len(rows))]
        state = [(r.ids, r.fed, r.hidden, r.inputs) for r in sources]
        if self.use_cache:
            for r in sources:
                self._unpark(r)
            for r in out:
                if r.slot is None:
                    r.slot = self.cache.allocate()
                    self.slotted.append(r)
            self.cache.copy([r.slot for r in out], [r.slot for r in sources])
        for r, (ids, fed, hidden, inputs) in zip(out, state, strict=True):
            r.ids, r.fed, r.hidden, r.inputs = ids, fed, hidden, inputs
        for r in rows[len(keep) :]:
            self.remove(r)
        return out

    def logits(self, rows: list[Row] | None = None, hidden: bool = False) -> torch.Tensor:
        """Next-token logits (len(rows), V) after each row's whole history (fp32).

        With `hidden`, each row's `hidden` holds the states after the final norm of the
        tokens this call fed (T, C) (contrastive search compares them)."""
        rows = self.rows if rows is None else rows
        if not self.use_cache:
            return torch.cat([self._window(r, hidden) for r in rows])
        step = {r for r in rows if r.slot is not None and r.new == 1 and self._fits(r)}
        out: dict[Row, torch.Tensor] = {}
        if step:
            for r in [r for r in self.slotted if r not in step]:
                self._park(r)  # a decode step feeds every row it holds: the others wait outside
            logits = self._decode(hidden)  # (n, V), row i of the SlotCache in row i
            if len(rows) == len(self.slotted):  # only the decode step: one gather, no copies
                order = [r.slot for r in rows]
                same = order == list(range(len(rows)))
                return logits if same else logits[torch.tensor(order, device=logits.device)]
            out = {r: logits[i : i + 1] for i, r in enumerate(self.slotted)}
        fresh = [
            r
            for r in rows
            if r.fed == 0 and r.parked is None and r.slot is None and r.ids.size(0) <= self.block
        ]
        for r in rows:
            if r not in out and r not in fresh:
                out[r] = self._alone(r, hidden)
        # rows that score their prompt run as a batch of their own: only theirs computes the
        # logits of every position, the others keep the last-position fast path
        for group in (
            [r for r in fresh if r.score is None],
            [r for r in fresh if r.score is not None],
        ):
            if group:
                out.update(self._prefill(group, hidden))
        return torch.cat([out[r] for r in rows])  # (len(rows), V)

    # ---- the three ways of feeding ---------------------------------------------------------

    def _decode(self, hidden: bool) -> torch.Tensor:
        """One decode step for every row in the SlotCache, its newest token: logits (n, V)."""
        rows = self.slotted
        newest = torch.stack([r.ids[-1:] for r in rows])  # (n, 1)
        self.cache.reserve(1)
        logits = self._run(self.decode_model or self.model, newest, self.cache, rows, hidden)
        for r in rows:
            r.fed += 1
        return logits

    def _prefill(self, rows: list[Row], hidden: bool) -> dict[Row, torch.Tensor]:
        """Fresh rows together: left-padded into one batch, fed in chunks, then slotted."""
        T = max(r.ids.size(0) for r in rows)
        pad = torch.tensor([T - r.ids.size(0) for r in rows], device=rows[0].ids.device)  # (B,)
        idx = torch.zeros(len(rows), T, dtype=torch.long, device=pad.device)  # (B, T)
        for b, r in enumerate(rows):
            idx[b, int(pad[b]) :] = r.ids
        cache = KVCache.for_model(self.model, len(rows), T, pad)
        logits, states = self._chunks(idx, cache, rows, hidden, pad.tolist())
        for b, r in enumerate(rows):
            p = int(pad[b])
            r.fed = T - p
            r.hidden = None if states is None else states[b, p:]
            self._admit(r, cache.k[:, b, :, p:T], cache.v[:, b, :, p:T], 0)
        return {r: logits[b : b + 1] for b, r in enumerate(rows)}

    def _alone(self, row: Row, hidden: bool) -> torch.Tensor:
        """Feed one row what it has not fed, in a batch-1 cache: a new turn's tokens, or a
        step at the end of the context (roll the window, or re-encode the last block)."""
        N = row.ids.size(0)
        cache = self._take(row)
        if cache is None and (self.rolls or N <= self.block):  # the prefill
            cache = self._row_cache(min(self.block, N + self.room))
            logits = self._feed(row, cache, 0, min(N, self.block), hidden)
        elif cache is None or (not self.rolls and cache.size + N - row.fed > self.block):
            cache = self._row_cache(self.block)  # a position table: re-encode from 0
            logits = self._feed(row, cache, N - self.block, N, hidden)
        if cache.size + N - row.fed <= self.block:
            if row.new:
                logits = self._feed(row, cache, row.fed, N, hidden)
        else:
            for t in range(row.fed, N):  # rolling, one at a time: each sees its own window
                cache.roll(cache.size + 1 - self.block)
                logits = self._feed(row, cache, t, t + 1, hidden)
        s = cache.size
        self._admit(row, cache.k[:, 0, :, :s], cache.v[:, 0, :, :s], cache.seen - s)
        return logits

    def _feed(self, row: Row, cache: KVCache, start: int, end: int, hidden: bool) -> torch.Tensor:
        """Run row.ids[start:end] through a batch-1 cache; the logits (1, V) after the last."""
        if end - start == 1:  # a decode step: on the decode copy, if there is one
            model = self.decode_model or self.model
            cache.to(next(model.parameters()).dtype)
            logits = self._run(model, row.ids[None, start:end], cache, [row], hidden)
        else:
            cache.to(next(self.model.parameters()).dtype)
            logits, states = self._chunks(row.ids[None, start:end], cache, [row], hidden, [0])
            if states is not None:
                row.hidden = states[0]  # (end - start, C)
        row.fed = end
        return logits

    def _chunks(
        self, idx: torch.Tensor, cache: KVCache, rows: list[Row], hidden: bool, pads: list[int]
    ):
        """Feed idx (B, T) in chunks of PREFILL_CHUNK: (logits (B, V), states (B, T, C) or None).
        `pads`: each row's left padding. A row with `score` gets its fed tokens scored."""
        states = []
        scoring = [b for b, r in enumerate(rows) if r.score is not None]
        for b in scoring:
            rows[b].scores = []
        with autocast(self.prefill_precision, idx.device):
            for a in range(0, idx.size(1), PREFILL_CHUNK):
                chunk = idx[:, a : a + PREFILL_CHUNK]
                logits = self._run(self.model, chunk, cache, rows, hidden, bool(scoring))
                states.append(self._states)
                for b in scoring:
                    self._score(rows[b], self._full[b], idx[b], a, pads[b])
        self._full = None
        return logits, (torch.cat(states, dim=1) if hidden else None)

    def _score(self, row: Row, logits: torch.Tensor, ids: torch.Tensor, a: int, pad: int) -> None:
        """Add to `row.scores` log p(ids[t + 1] | ids[..t]) for the positions t of a chunk
        (logits (C, V) from position a) that have a next token in `ids` (T,) and are not
        padding, with the row's `score` most likely tokens at each (none for k = 0)."""
        C, T = logits.size(0), ids.size(0)
        lo, hi = max(a, pad), min(a + C, T - 1)  # positions t that predict a fed token
        if hi <= lo:
            return
        logp = torch.log_softmax(logits[lo - a : hi - a].float(), dim=-1)  # (n, V)
        chosen = logp.gather(1, ids[lo + 1 : hi + 1, None])[:, 0].tolist()
        if row.score:
            values, top = logp.topk(min(row.score, logp.size(-1)), dim=-1)
            tops = [
                list(zip(i, v, strict=True))
                for i, v in zip(top.tolist(), values.tolist(), strict=True)
            ]
        else:
            tops = [None] * len(chosen)
        row.scores += list(zip(chosen, tops, strict=True))

    def _window(self, row: Row, hidden: bool) -> torch.Tensor:
        """No cache: run the model over what the row can see and return the last logits."""
        N = row.ids.size(0)
        cache = None
        if N > self.block and self.rolls:  # no position table: banded attention over all
            cache = KVCache.for_model(self.model, 1, N, window=self.block)
            window = row.ids[None]  # (1, N)
        else:
            window = row.ids[None, -self.block :]  # (1, ≤ block)
        full = row.score is not None and row.fed == 0  # its prompt, scored
        logits = self._run(self.model, window, cache, [row], hidden, full)
        if full:
            row.scores = []
            self._score(row, self._full[0], window[0], 0, 0)
            self._full = None
        row.fed = N
        return logits

    def _run(self, model, ids: torch.Tensor, cache, rows: list[Row], hidden: bool, full=False):
        """The model on ids (B, T): the last position's logits (B, V) in fp32; with `hidden`,
        `_states` holds the states after the final norm (B, T, C) and each row's `hidden`;
        with `full`, `_full` holds every position's logits (B, T, V) (the LM head runs on
        all T positions, not only the last: only a batch of rows that score their prompt)."""
        inputs = {k: torch.stack([r.inputs[k] for r in rows]) for k in rows[0].inputs}
        self._states = self._full = None
        if not hidden and not full:
            logits, _ = model(ids, cache=cache, last_only=True, **inputs)
            return logits[:, -1, :].float()
        handle = model.hook_final.add_hook(self._keep) if hidden else None
        try:
            logits, _ = model(ids, cache=cache, **inputs)
        finally:
            if handle is not None:
                handle.remove()
        if hidden:
            for r, h in zip(rows, self._states, strict=True):
                r.hidden = h  # (T, C)
        if full:
            self._full = logits
        return logits[:, -1, :].float()

    def _keep(self, x: torch.Tensor, name: str) -> None:
        self._states = x  # (B, T, C)

    # ---- moving rows in and out of the SlotCache -------------------------------------------

    def _fits(self, row: Row) -> bool:
        """Can the row's next token join the slot cache without passing the context?"""
        return self.cache.size - self.cache.starts[row.slot] < self.block

    def _admit(self, row: Row, k: torch.Tensor, v: torch.Tensor, offset: int) -> None:
        row.slot = self.cache.admit(k, v, offset)
        row.parked = None
        self.slotted.append(row)

    def _release(self, row: Row) -> None:
        i = row.slot
        self.cache.release(i)
        moved = self.slotted.pop()  # the last row moved into row i
        if moved is not row:
            self.slotted[i], moved.slot = moved, i
        row.slot = None

    def _park(self, row: Row) -> None:
        """Take the row out of the SlotCache, keeping its keys and values."""
        row.parked = self.cache.take(row.slot)
        self._release(row)

    def _unpark(self, row: Row) -> None:
        if row.parked is not None:
            self._admit(row, *row.parked)

    def _take(self, row: Row) -> KVCache | None:
        """The row's keys and values in a batch-1 KVCache with room for its new tokens (up to
        the context), or None if it has none yet."""
        if row.slot is not None:
            self._park(row)
        if row.parked is None:
            return None
        k, v, offset = row.parked
        row.parked = None
        T = k.size(2)
        cache = self._row_cache(min(self.block, T + row.new), k.dtype)
        cache.k[:, 0, :, :T], cache.v[:, 0, :, :T] = k, v
        cache.size, cache.seen = T, T + offset
        return cache

    def _row_cache(self, capacity: int, dtype: torch.dtype | None = None) -> KVCache:
        c, p = self.model.config, next(self.model.parameters())
        return KVCache(c.n_layer, 1, c.kv_heads, capacity, c.head_dim, dtype or p.dtype, p.device)
