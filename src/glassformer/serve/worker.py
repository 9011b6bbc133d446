"""The worker: one thread owns the model and drives the engine for every request.

The decoding itself is the engine's (generate/engine.py): the same one `generate`, `Session`
and `glassformer chat` drive. The worker adds what a server needs around it, one loop
iteration at a time:

    take new requests and cancellations        (from any thread: `submit`, `cancel`, `call`)
    drop cancelled requests                    a disconnected client's rows are free at once
    admit waiting requests while rows are free `engine.prefill(all of them)`: the prompts that
                                               arrived together run as one batched forward
                                               (those that score their prompt, echo with
                                               logprobs: a second one, context.py)
    one decode step                            `engine.decode()`: one forward for the rows of
                                               every running request (beam and contrastive
                                               searches included)
    run queued calls                           the explorer's views (they hook the model, so
                                               they run here, between steps)

Each request keeps a `TextStream` (generate/streaming.py) that turns its token ids into text
pieces and ends it at one of its stop strings. So a request gives the same tokens whether it
runs alone or beside fifteen others (up to float rounding of the batched matmuls; greedy
decoding is checked to be exact by the tests).

Events go back through the request's `emit` callback, called on the worker thread: for a
request that echoes its prompt, first a `Prompt` (the prompt's text and, when asked, each prompt
token's log-probability from the prefill's full logits), then a `Token`
per chosen token (its text piece, which may be "" while a character or a stop string is
unfinished, and its log-probabilities when asked for), then one `Finish`. After each phase of
an iteration the worker calls its `listeners`: a server hands the phase's events to its event
loop there, with one wake-up for all of them.
"""

import queue
import threading
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass

import torch

from glassformer.generate import (
    STRATEGIES,
    Engine,
    Generation,
    GenerationOptions,
    TextStream,
    decode_copy,
    make_generator,
)
from glassformer.generate import Finish as Ended
from glassformer.generate import Token as Chosen


@dataclass
class Token:
    id: int
    text: str  # the text this token completes ("" while a character or stop string is open)
    logprob: float | None = None  # log p(token) under the model (before temperature)
    top: list[tuple[int, float]] | None = None  # the most likely tokens and their log p


@dataclass
class Prompt:
    """The echoed prompt: its text, and (id, logprob, top) per prompt token when asked (the
    first token's logprob and top are None: nothing comes before it)."""

    text: str
    items: list[tuple[int, float | None, list[tuple[int, float]] | None]] | None = None


@dataclass
class Finish:
    reason: str  # "stop" (stop id or stop string), "length", "cancelled" or "error"
    text: str  # the text held back until the end (a partial stop string, unfinished bytes)
    prompt_tokens: int
    completion_tokens: int
    error: str | None = None
    # the end-of-text token it stopped at, with its log p, when log-probabilities are asked
    # (its text is not part of the reply: completions list it last in their logprobs)
    token: Token | None = None


# the engine's reasons as the API says them (OpenAI's "stop" covers both kinds of stop)
REASONS = {"stop_id": "stop", "stop_string": "stop"}


@dataclass(eq=False)
class Request:
    """One sequence to generate. `top_logprobs`: None for no log-probabilities, k >= 0 for the
    chosen token's and the k most likely ones'. `echo`: the prompt's text, to send back first
    as a `Prompt` (with its tokens' log-probabilities when `top_logprobs` is set).
    `prefill_only`: run the prompt, choose no token (max_tokens 0)."""

    ids: list[int]
    opts: GenerationOptions
    emit: Callable[[Prompt | Token | Finish], None]
    stop: Sequence[str] = ()
    top_logprobs: int | None = None
    echo: str | None = None
    prefill_only: bool = False
    cancelled: bool = False


class Worker:
    """`submit` requests, `cancel` them, `call` a function between steps; `close` at the end."""

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer,
        max_batch: int = 8,
        decode_dtype: str | None = None,
    ):
        """`decode_dtype`: the decode steps run on a copy of the model in that dtype
        (generate/session.py `decode_copy`: bfloat16, int8, int4); prompts run on the model."""
        self.model, self.tokenizer = model.eval(), tokenizer
        self.device = next(model.parameters()).device
        self.decode_dtype = decode_dtype
        decode_model = decode_copy(model, decode_dtype)
        self.engine = Engine(model, decode_model=decode_model, stop_at_context=True)
        self.max_batch = max_batch  # rows decoded at once (a search takes several)
        self.running: dict[Generation, tuple[Request, TextStream]] = {}
        self.waiting: list[Request] = []
        self.calls: list[tuple[Callable[[], object], Future]] = []
        self.inbox: queue.SimpleQueue = queue.SimpleQueue()
        self.listeners: list[Callable[[], None]] = []  # called after each phase (worker thread)
        self.closed = False
        self.thread = threading.Thread(target=self._loop, name="glassformer-worker", daemon=True)
        self.thread.start()

    # ---- the other threads' side ---------------------------------------------------------

    def submit(self, req: Request) -> None:
        self.inbox.put(req)

    def cancel(self, req: Request) -> None:
        """Stop `req` before the next step (its rows are freed; it gets Finish("cancelled"))."""
        req.cancelled = True
        self.inbox.put(None)  # wake the loop if it waits

    def call(self, fn: Callable[[], object]) -> Future:
        """Run `fn()` on the worker thread between two steps; a Future of its result."""
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
        return len(self.running) + len(self.waiting)

    # ---- the worker thread ---------------------------------------------------------------

    def _loop(self) -> None:
        with torch.inference_mode():
            while not self.closed:
                self._take(wait=not (self.running or self.waiting or self.calls))
                if self.closed:
                    break
                self._drop_cancelled()
                self._admit()
                self._notify()  # the first tokens go out before the decode step
                if self.running:
                    self._guard(self.engine.decode, list(self.running))
                self._notify()
                calls, self.calls = self.calls, []
                for fn, future in calls:
                    if future.set_running_or_notify_cancel():
                        try:
                            future.set_result(fn())
                        except BaseException as e:  # handed to the waiting request
                            future.set_exception(e)
        for gen in list(self.running):
            self._end(self.engine.finish(gen, "cancelled"))
        for req in self.waiting:
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

    def _guard(self, step: Callable[[], list], gens: list[Generation]) -> None:
        """Run an engine step and pass on its events; if it fails, end its requests with an
        error instead of the server."""
        try:
            events = step()
        except Exception as e:
            traceback.print_exc()
            for gen in gens:
                if gen in self.running:
                    self._end(self.engine.finish(gen, "error", f"{type(e).__name__}: {e}"))
            return
        for event in events:
            self._pass_on(event)

    def _drop_cancelled(self) -> None:
        for gen in [g for g, (req, _) in self.running.items() if req.cancelled]:
            self._end(self.engine.finish(gen, "cancelled"))
        for req in [r for r in self.waiting if r.cancelled]:
            self.waiting.remove(req)
            req.emit(Finish("cancelled", "", len(req.ids), 0))

    def _admit(self) -> None:
        """Start waiting requests while their rows fit beside the running ones (one request
        at least, so that a wide search still runs); their prompts prefill together."""
        rows, new = self.engine.rows, []
        while self.waiting:
            req = self.waiting[0]
            width = STRATEGIES[req.opts.strategy].width(req.opts)
            if rows + width > self.max_batch and (rows or new):
                break
            self.waiting.pop(0)
            gen = Generation(
                torch.tensor(req.ids, device=self.device),
                req.opts,
                make_generator(req.opts.seed, self.device),
                top_logprobs=req.top_logprobs,
                prompt_logprobs=None if req.echo is None else req.top_logprobs,
                prefill_only=req.prefill_only,
            )
            self.running[gen] = (req, TextStream.for_tokenizer(self.tokenizer, req.stop))
            rows += width
            new.append(gen)
        if new:
            self._guard(lambda: self._prefill(new), new)

    def _prefill(self, gens: list[Generation]) -> list:
        """Prefill `gens` together; an echoing request gets its `Prompt` before its tokens."""
        events = self.engine.prefill(gens)
        for gen in gens:
            req, _ = self.running[gen]
            if req.echo is None:
                continue
            items = None
            if gen.prompt_scores is not None:
                ids = req.ids[-len(gen.prompt_scores) - 1 :]  # all of it: it fits the context
                scored = zip(ids[1:], gen.prompt_scores, strict=True)
                items = [(ids[0], None, None)] + [(i, lp, top) for i, (lp, top) in scored]
            req.emit(Prompt(req.echo, items))
        return events

    def _pass_on(self, event: Chosen | Ended) -> None:
        """An engine event as the request's text: its Token, or its Finish."""
        gen = event.seq
        if gen not in self.running:
            return
        req, text = self.running[gen]
        if isinstance(event, Ended):
            self._end(event)
            return
        req.emit(Token(event.id, text.push([event.id]), event.logprob, event.top))
        if text.stopped:
            self._end(self.engine.finish(gen, "stop_string"))

    def _end(self, event: Ended) -> None:
        gen = event.seq
        req, text = self.running.pop(gen)
        rest = "" if event.reason in ("cancelled", "error") else text.finish()
        reason = REASONS.get(event.reason, event.reason)
        stop = event.token  # the stop id, with its log p (it has no text in the reply)
        token = None if stop is None else Token(stop.id, "", stop.logprob, stop.top)
        req.emit(Finish(reason, rest, len(req.ids), len(gen.new), event.error, token))
