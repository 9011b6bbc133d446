"""The engine: token ids in, token ids out, for one sequence or many at once.

Everything that generates text drives this one loop: `generate` / `stream` / `Session`
(hence `glassformer generate` and `chat`), the server's continuous batching (serve/), the
encoder-decoder's translations (seq2seq.py) and the experiments. It knows nothing of text,
tokenizers or HTTP. Two named steps (gpt-fast and nanochat work the same way):

    prefill(seqs)   new sequences join: their prompts run as one batched forward (a
                    Context, context.py), and each sequence's strategy takes its first step
    decode()        one forward for every running row, then each sequence's strategy steps

A `Generation` is one prompt with its options; it occupies one row of the Context, or several
for a search (beam search keeps num_beams rows, contrastive search tries top_k candidates).
At each step its strategy (strategy.py) looks at the logits of its rows and says which rows
go on, what each feeds next, and which tokens of the reply are now decided:

    strategy.step(seq, logits)  ->  Step(feed, keep, emit, done)

The engine then applies the step, and checks every decided token against the sequence's stop
ids and length limit (`_emit`: the only place that does), producing events:

    Token(seq, id, logprob, top)     a token of the reply (never a stop id)
    Finish(seq, reason)              reason: "stop_id", "length", or from outside the loop
                                     "stop_string" (a caller's text matched), "cancelled",
                                     "error" (FINISH_REASONS); at a stop id, with
                                     log-probabilities asked, its `token` holds the stop
                                     id's own Token (log p), never part of the reply

    >>> engine = Engine(model)                                           # doctest: +SKIP
    >>> gen = Generation(torch.tensor([1, 2, 3]), GenerationOptions(5))
    >>> ids = [e.id for e in engine.stream([gen]) if isinstance(e, Token)]  # at most 5 ids
    >>> gen.finish_reason                      # "length", or "stop_id" at the end-of-text id
"""

from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

import torch

from glassformer.generate.context import Context, Row
from glassformer.generate.options import GenerationOptions
from glassformer.generate.strategies import STRATEGIES
from glassformer.generate.strategy import Step, Strategy

# why a sequence ended: its stop id, its length limit; a stop string its caller found in the
# text; a caller that cancelled it (a client that left); a failure of the model on it
FINISH_REASONS = ("stop_id", "length", "stop_string", "cancelled", "error")


@dataclass(eq=False)
class Generation:
    """One prompt to continue, with its options; the engine fills in the rest.

    `top_logprobs`: None for no log-probabilities, k >= 0 for the chosen token's and the k most
    likely ones'. `keep`: when it finishes, keep its cache (a conversation continues it with
    the next turn's tokens). `inputs`: per-sequence model inputs (an encoder's memory).

    `prompt_logprobs`: k >= 0 to score the prompt: after its prefill, `prompt_scores` holds
    (log p(prompt[i] | prompt[:i]), the k most likely tokens there and their log p, or None
    for k = 0) for every prompt token after the first, from the prefill's full logits.
    `prefill_only`: run the prompt and choose no token (finish "length" at once: a server's
    max_tokens 0, when only the prompt's log-probabilities are wanted).
    """

    prompt: torch.Tensor  # (T,) ids
    opts: GenerationOptions
    generator: torch.Generator | None = None
    top_logprobs: int | None = None
    keep: bool = False
    prompt_logprobs: int | None = None
    prefill_only: bool = False
    inputs: dict[str, torch.Tensor] = field(default_factory=dict)
    rows: list[Row] = field(default_factory=list)  # its rows of the Context
    strategy: Strategy | None = None
    state: Any = None  # the strategy's own (a search's scores)
    new: list[int] = field(default_factory=list)  # this reply's ids, a stop id included
    limit: int = 0  # the most tokens this reply may have
    results: list[list[int]] = field(default_factory=list)  # a search's n best replies
    finish_reason: str | None = None
    prompt_scores: list[tuple[float, list[tuple[int, float]] | None]] | None = None

    @property
    def ids(self) -> torch.Tensor:
        """The history of its first row (N,): prompt, reply, and any later turns."""
        return self.rows[0].ids


@dataclass
class Token:
    seq: Generation
    id: int
    logprob: float | None = None  # log p(token) under the model (before temperature)
    top: list[tuple[int, float]] | None = None  # the most likely tokens and their log p


@dataclass
class Finish:
    seq: Generation
    reason: str  # one of FINISH_REASONS
    error: str | None = None
    token: Token | None = None  # the stop id and its log p, when log-probabilities are asked


Event = Token | Finish


class Engine:
    """Generations decoded together on one Context: `prefill`, `decode`, `finish`."""

    def __init__(
        self,
        model: torch.nn.Module,
        decode_model: torch.nn.Module | None = None,
        use_cache: bool = True,
        prefill_precision: str = "fp32",
        room: int = 0,
        stop_at_context: bool = False,
        context: Context | None = None,
    ):
        self.model = model
        self.ctx = context or Context(
            model,
            use_cache=use_cache,
            decode_model=decode_model,
            room=room,
            prefill_precision=prefill_precision,
        )
        # a server ends a reply where the context ends; generate and chat roll on (context.py)
        self.stop_at_context = stop_at_context
        self.running: list[Generation] = []

    @property
    def rows(self) -> int:
        """Rows of the running sequences (what one decode step computes)."""
        return sum(len(s.rows) for s in self.running)

    @torch.no_grad()
    def prefill(self, seqs: list[Generation]) -> list[Event]:
        """Start `seqs` (or continue finished ones kept with `keep`: their rows hold the new
        turn's tokens); their prompts run as one batch. The events of their first step."""
        for seq in seqs:
            self._start(seq)
        self.running += seqs
        return self._step(seqs)

    @torch.no_grad()
    def decode(self) -> list[Event]:
        """One step of every running sequence: one forward for all their rows."""
        return self._step(list(self.running))

    def finish(self, seq: Generation, reason: str, error: str | None = None) -> Finish:
        """End `seq` (also from outside the loop: a stop string, a cancellation)."""
        seq.finish_reason = reason
        if seq in self.running:
            self.running.remove(seq)
        if not (seq.keep and reason in ("stop_id", "length", "stop_string")):
            for row in seq.rows:
                self.ctx.remove(row)
            seq.rows = []
        if not seq.results:
            seq.results = [list(seq.new)]
        return Finish(seq, reason, error)

    def stream(self, seqs: list[Generation]) -> Generator[Event, None, None]:
        """Prefill `seqs`, then decode until all of them finish; every event as it comes. A
        sequence still running when the caller stops reading is cancelled."""
        model = self.model
        was_training = model.training
        model.eval()
        try:
            events = self.prefill(seqs)
            while True:
                yield from events
                if not any(s in self.running for s in seqs):
                    return
                events = self.decode()
        finally:
            for seq in seqs:
                if seq in self.running:
                    self.finish(seq, "cancelled")
            model.train(was_training)

    # ---- the loop ------------------------------------------------------------------------

    def _start(self, seq: Generation) -> None:
        seq.strategy = STRATEGIES[seq.opts.strategy]
        seq.state, seq.new, seq.results, seq.finish_reason = None, [], [], None
        if not seq.rows:  # a new sequence (a kept one continues its rows)
            seq.rows = [self.ctx.add(seq.prompt, seq.inputs)]
            seq.rows[0].score = seq.prompt_logprobs
        seq.limit = seq.opts.max_new_tokens
        if self.stop_at_context:  # the last token is never fed
            seq.limit = min(seq.limit, self.ctx.block - seq.ids.size(0) + 1)

    def _step(self, seqs: list[Generation]) -> list[Event]:
        rows = [r for s in seqs for r in s.rows]
        if not rows:
            return []
        hidden = any(s.strategy.needs_hidden for s in seqs)
        logits = self.ctx.logits(rows, hidden)  # (len(rows), V)
        events: list[Event] = []
        i = 0
        for seq in seqs:
            w = len(seq.rows)
            row = seq.rows[0]
            if row.score is not None:  # its prompt was fed: the scores are in
                seq.prompt_scores, row.score, row.scores = row.scores, None, []
            if seq.prefill_only:
                events.append(self.finish(seq, "length"))
            else:
                events += self._advance(seq, logits[i : i + w])
            i += w
        return events

    def _advance(self, seq: Generation, logits: torch.Tensor) -> list[Event]:
        """Apply one step of the sequence's strategy to its logits (rows, V)."""
        step: Step = seq.strategy.step(seq, logits)
        if step.results is not None:
            seq.results = step.results
        if step.keep is not None:
            seq.rows = self.ctx.regroup(seq.rows, step.keep)
        if step.feed is not None and len(seq.rows) == 1:
            seq.rows[0].append(step.feed)
        elif step.feed is not None:
            for row, ids in zip(seq.rows, step.feed, strict=True):
                row.append(ids)
        events: list[Event] = []
        for t in step.emit:
            events += self._emit(seq, t, logits)
            if seq.finish_reason is not None:
                return events
        if step.done:
            events.append(self.finish(seq, "length"))
        return events

    def _emit(self, seq: Generation, t: int, logits: torch.Tensor) -> list[Event]:
        """One decided token of the reply: its event, and whether it ends the reply."""
        seq.new.append(t)
        token = self._token(seq, t, logits)
        if t in seq.opts.stop_ids:  # the end-of-text id: not part of the reply
            finish = self.finish(seq, "stop_id")
            finish.token = token if token.logprob is not None else None
            return [finish]
        if len(seq.new) >= seq.limit:
            return [token, self.finish(seq, "length")]
        return [token]

    def _token(self, seq: Generation, t: int, logits: torch.Tensor) -> Token:
        """The Token of id t, with its log-probabilities when the sequence asks for them."""
        token = Token(seq, t)
        if seq.top_logprobs is not None and logits.size(0) == 1:
            logp = torch.log_softmax(logits[0], dim=-1)  # (V,)
            token.logprob = float(logp[t])
            if seq.top_logprobs:
                values, ids = logp.topk(min(seq.top_logprobs, logp.numel()))
                token.top = list(zip(ids.tolist(), values.tolist(), strict=True))
        return token
