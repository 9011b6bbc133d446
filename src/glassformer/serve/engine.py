"""The engine: one thread owns the model and decodes every running request together.

Continuous batching, one loop iteration at a time:

    take new requests and cancellations        (from any thread: `submit`, `cancel`, `call`)
    drop cancelled requests                    a disconnected client's row is free at once
    admit waiting requests while rows are free prefill each alone (batch 1), choose its
                                               first token, copy its keys and values into a
                                               row of the SlotCache (slots.py)
    one decode step for all running rows       model(newest ids (n, 1), cache=slots): (n, V)
                                               logits; each row chooses with its own options
                                               and random generator; a row that stops leaves
    advance each search by one token           beam / contrastive search run alone (their own
                                               Context), interleaved with the batch
    run queued calls                           the explorer's views (they hook the model, so
                                               they run here, between steps)

A request is decoded by exactly the pieces `Session` uses: its `GenerationOptions`, the
registry's strategy (`TokenRule.choose` on its row of the logits), a seeded generator per
request and a `TextStream` with its stop strings. So a request gives the same tokens whether
it runs alone or beside fifteen others (up to float rounding of the batched matmuls; greedy
decoding is checked to be exact by the tests).

Events go back through the request's `emit` callback, called on the engine thread: a `Token`
per chosen token (its text piece, which may be "" while a character or a stop string is
unfinished, and its log-probabilities when asked for), then one `Finish`. After each phase of
an iteration the engine calls its `listeners`: a server hands the phase's events to its event
loop there, with one wake-up for all of them.
"""

import queue
import threading
import traceback
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

import torch

from glassformer.generate.context import Context
from glassformer.generate.options import GenerationOptions
from glassformer.generate.session import make_generator
from glassformer.generate.strategies import STRATEGIES
from glassformer.generate.strategy import Strategy
from glassformer.generate.streaming import TextStream
from glassformer.nn.kv_cache import KVCache
from glassformer.serve.slots import SlotCache


@dataclass
class Token:
    id: int
    text: str  # the text this token completes ("" while a character or stop string is open)
    logprob: float | None = None  # log p(token) under the model (before temperature)
    top: list[tuple[int, float]] | None = None  # the most likely tokens and their log p


@dataclass
class Finish:
    reason: str  # "stop" (stop id or stop string), "length", "cancelled" or "error"
    text: str  # the text held back until the end (a partial stop string, unfinished bytes)
    prompt_tokens: int
    completion_tokens: int
    error: str | None = None


@dataclass(eq=False)
class Request:
    """One sequence to generate. `top_logprobs`: None for no log-probabilities, k >= 0 for the
    chosen token's and the k most likely ones'."""

    ids: list[int]
    opts: GenerationOptions
    emit: Callable[[Token | Finish], None]
    stop: Sequence[str] = ()
    top_logprobs: int | None = None
    cancelled: bool = False


@dataclass(eq=False)
class Running:
    """A request being decoded: its history, random generator and text stream."""

    req: Request
    limit: int  # tokens it may still generate: max_tokens, or fewer if the context ends first
    generator: torch.Generator | None
    text: TextStream
    history: torch.Tensor  # (1, prompt + limit) ids; the first `length` are filled
    length: int
    count: int = 0  # tokens generated
    pending: int = -1  # the last chosen token, fed at the next step
    rule: Strategy | None = None  # the request's strategy (a TokenRule or a search)
    search: Iterator[torch.Tensor] | None = None  # a search strategy's token iterator
    stops: frozenset[int] = field(default_factory=frozenset)


class Engine:
    """`submit` requests, `cancel` them, `call` a function between steps; `close` at the end."""

    def __init__(self, model: torch.nn.Module, tokenizer, max_batch: int = 8):
        self.model, self.tokenizer = model.eval(), tokenizer
        self.block = model.config.block_size
        self.device = next(model.parameters()).device
        self.slots = SlotCache(model, max_batch)
        self.max_batch = max_batch
        self.rows: list[Running] = []  # row i of the SlotCache
        self.searches: list[Running] = []
        self.waiting: list[Request] = []
        self.calls: list[tuple[Callable[[], object], Future]] = []
        self.inbox: queue.SimpleQueue = queue.SimpleQueue()
        self.listeners: list[Callable[[], None]] = []  # called after each phase (engine thread)
        self.closed = False
        self.thread = threading.Thread(target=self._loop, name="glassformer-engine", daemon=True)
        self.thread.start()

    # ---- the other threads' side ---------------------------------------------------------

    def submit(self, req: Request) -> None:
        self.inbox.put(req)

    def cancel(self, req: Request) -> None:
        """Stop `req` before the next step (its row is freed; it gets Finish("cancelled"))."""
        req.cancelled = True
        self.inbox.put(None)  # wake the loop if it waits

    def call(self, fn: Callable[[], object]) -> Future:
        """Run `fn()` on the engine thread between two steps; a Future of its result."""
        future: Future = Future()
        self.inbox.put((fn, future))
        return future

    def close(self) -> None:
        self.closed = True
        self.inbox.put(None)
        self.thread.join(timeout=10)

    @property
    def load(self) -> int:
        """Requests running or waiting."""
        return len(self.rows) + len(self.searches) + len(self.waiting)

    # ---- the engine thread ---------------------------------------------------------------

    def _loop(self) -> None:
        with torch.inference_mode():
            while not self.closed:
                self._take(wait=not (self.rows or self.searches or self.waiting or self.calls))
                if self.closed:
                    break
                self._drop_cancelled()
                self._admit()
                self._notify()  # the first tokens go out before the decode step
                if self.rows:
                    self._guard(self._decode, self.rows)
                for run in list(self.searches):
                    self._guard(lambda run=run: self._advance(run), [run])
                self._notify()
                calls, self.calls = self.calls, []
                for fn, future in calls:
                    if future.set_running_or_notify_cancel():
                        try:
                            future.set_result(fn())
                        except BaseException as e:  # handed to the waiting request
                            future.set_exception(e)
        for req in [r.req for r in self.rows + self.searches] + self.waiting:
            req.emit(Finish("cancelled", "", len(req.ids), 0))
        self._notify()

    def _notify(self) -> None:
        for listener in self.listeners:
            listener()

    def _take(self, wait: bool) -> None:
        try:
            item = self.inbox.get(timeout=0.5) if wait else self.inbox.get_nowait()
            while True:
                if isinstance(item, Request):
                    self.waiting.append(item)
                elif isinstance(item, tuple):
                    self.calls.append(item)
                item = self.inbox.get_nowait()
        except queue.Empty:
            pass

    def _guard(self, step: Callable[[], None], runs: list[Running]) -> None:
        """Run a step; if it fails, end its requests with an error instead of the server."""
        try:
            step()
        except Exception as e:
            traceback.print_exc()
            for run in list(runs):
                self._finish(run, "error", error=f"{type(e).__name__}: {e}")

    def _drop_cancelled(self) -> None:
        for run in [r for r in self.rows + self.searches if r.req.cancelled]:
            self._finish(run, "cancelled")
        for req in [r for r in self.waiting if r.cancelled]:
            self.waiting.remove(req)
            req.emit(Finish("cancelled", "", len(req.ids), 0))

    def _admit(self) -> None:
        while self.waiting and len(self.rows) + len(self.searches) < self.max_batch:
            req = self.waiting.pop(0)
            run = self._start(req)
            try:
                if run.rule.per_token:
                    self._prefill(run)
                else:
                    run.search = run.rule.tokens(
                        Context(self.model, run.history[:, : run.length]), req.opts, run.generator
                    )
                    self.searches.append(run)
            except Exception as e:
                traceback.print_exc()
                req.emit(Finish("error", "", len(req.ids), 0, f"{type(e).__name__}: {e}"))

    def _start(self, req: Request) -> Running:
        L = len(req.ids)
        limit = min(req.opts.max_new_tokens, self.block - L + 1)  # the last one is never fed
        history = torch.zeros(1, L + limit, dtype=torch.long, device=self.device)
        history[0, :L] = torch.tensor(req.ids)
        return Running(
            req=req,
            limit=limit,
            generator=make_generator(req.opts.seed, self.device),
            text=TextStream.for_tokenizer(self.tokenizer, req.stop),
            history=history,
            length=L,
            stops=frozenset(req.opts.stop_ids),
            rule=STRATEGIES[req.opts.strategy],
        )

    def _prefill(self, run: Running) -> None:
        """The prompt alone through a batch-1 cache; its first token; then a row of the batch."""
        ids = run.history[:, : run.length]  # (1, T)
        cache = KVCache.for_model(self.model, 1, capacity=run.length)
        logits, _ = self.model(ids, cache=cache, last_only=True)
        logits = logits[:, -1].float()  # (1, V)
        self._choose(run, logits)
        reason = self._accept(run, logits)
        if reason:
            self._finish(run, reason)
        else:
            self.slots.admit(cache.k[:, 0], cache.v[:, 0])
            self.rows.append(run)

    def _decode(self) -> None:
        """One forward for every running row; each row's next token; finished rows leave."""
        newest = torch.tensor([[r.pending] for r in self.rows], device=self.device)  # (n, 1)
        self.slots.reserve(1)
        logits, _ = self.model(newest, cache=self.slots, last_only=True)
        ended = []
        for run, row in zip(self.rows, logits[:, -1].float().split(1), strict=True):  # (1, V) each
            self._choose(run, row)
            reason = self._accept(run, row)
            if reason:
                ended.append((run, reason))
        for run, reason in ended:
            self._finish(run, reason)

    def _advance(self, run: Running) -> None:
        """One token of a search strategy (it runs its own Context)."""
        try:
            token = next(run.search)
        except StopIteration:
            self._finish(run, "length")
            return
        run.pending = int(token)
        reason = self._accept(run, None)
        if reason:
            self._finish(run, reason)

    def _choose(self, run: Running, logits: torch.Tensor) -> None:
        """The row's next token from its logits (1, V), by its own strategy and generator."""
        history = run.history[:, : run.length]  # (1, N)
        run.pending = int(run.rule.choose(logits, history, run.req.opts, run.generator))

    def _accept(self, run: Running, logits: torch.Tensor | None) -> str | None:
        """Record the chosen token and emit it; the finish reason if the request has ended."""
        t = run.pending
        run.count += 1
        run.history[0, run.length] = t
        run.length += 1
        if t in run.stops:  # the end-of-text id: not part of the text
            return "stop"
        token = Token(t, run.text.push([t]))
        k = run.req.top_logprobs
        if k is not None and logits is not None:
            logp = torch.log_softmax(logits[0], dim=-1)  # (V,)
            token.logprob = float(logp[t])
            if k:
                values, ids = logp.topk(min(k, logp.numel()))
                token.top = list(zip(ids.tolist(), values.tolist(), strict=True))
        run.req.emit(token)
        if run.text.stopped:
            return "stop"
        if run.count >= run.limit:
            return "length"
        return None

    def _finish(self, run: Running, reason: str, error: str | None = None) -> None:
        if run in self.rows:
            self._leave(self.rows.index(run))
        elif run in self.searches:
            self.searches.remove(run)
        rest = "" if reason in ("cancelled", "error") else run.text.finish()
        run.req.emit(Finish(reason, rest, len(run.req.ids), run.count, error))

    def _leave(self, i: int) -> None:
        """Free row i of the batch (the last row moves into it)."""
        moved = self.slots.release(i)
        self.rows[i] = self.rows[moved]
        self.rows.pop()
