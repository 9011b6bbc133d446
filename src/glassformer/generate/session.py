"""`Session`: one conversation with a model, continued turn by turn.

A session holds the token history, the KV cache that goes with it (a `Context`, context.py)
and the options; `feed` adds text, `stream` continues it piece by piece:

    >>> s = Session(model, tokenizer, strategy="sample", seed=1, max_new_tokens=40)
    >>> s.feed("ROMEO:\\n")
    >>> for piece in s.stream(stop=["\\n\\n"]):
    ...     print(piece, end="", flush=True)
    >>> s.finish_reason                       # "stop_id", "stop_string", "length", "cancelled"
    >>> s.feed("\\nJULIET:\\n")                # the next turn: only these tokens are new
    >>> reply = "".join(s.stream())
    >>> s.reset()                             # afresh: no history, no cache

What one turn does:

    new ids = tokenizer.encode(text)           feed: appended to the history (not run yet)
    engine.stream([sequence])                  the one engine (engine.py) with the registry's
      -> id, id, ...                           strategy; each id appended to the history
    stop id?         -> finish_reason "stop_id" (the id is kept in the history, not shown)
    TextStream.push  -> a piece of text        never half a character (streaming.py)
    stop string?     -> finish_reason "stop_string" (cut before it)
    max_new_tokens   -> finish_reason "length"
    Ctrl-C           -> the reply so far stays in the history; KeyboardInterrupt goes on to
                        the caller (`glassformer chat` stops that reply only)

A per-token strategy (greedy, sample: `TokenRule`) continues the kept sequence, so a new turn
feeds only its new tokens to the cached keys and values; a search (beam, contrastive) starts a
fresh sequence over the history each turn. A history longer than the model's context is
handled as context.py describes (the oldest tokens drop out of view); `overflowed` says so.

`glassformer.generate`/`stream` (api.py) are one turn of a fresh session; `glassformer chat`
is a loop of turns.
"""

import copy
from collections.abc import Generator, Iterator, Sequence
from contextlib import closing
from typing import Any

import torch

from glassformer.core.device import resolve_precision
from glassformer.errors import UserError
from glassformer.generate.engine import Engine, Finish, Generation, Token
from glassformer.generate.options import GenerationOptions
from glassformer.generate.strategies import STRATEGIES
from glassformer.generate.streaming import TextStream
from glassformer.nn.quantized import QUANTIZED_DTYPES, quantized_copy
from glassformer.tokenizers.protocol import Tokenizer


def make_generator(seed: int | None, device: torch.device) -> torch.Generator | None:
    """A seeded random generator (same seed, same samples), or None for torch's global one."""
    if seed is None:
        return None
    return torch.Generator(device=device).manual_seed(seed)


def decode_copy(model: torch.nn.Module, dtype: str | None) -> torch.nn.Module | None:
    """A copy of `model` for the decode steps, or None to decode with the model itself.

    "bfloat16": every weight in bf16. "int8" / "int4": the Linear layers' and the embedding's
    weights in 8 / 4 bits (nn/quantized.py: int8 per output row, int4 in groups of 32 inputs
    as GGUF's Q4 blocks; CPU kernels, bf16 inputs), the rest of the model as it is. Each reads
    fewer bytes per token than fp32, and each rounds the logits. (The choices:
    options.DECODE_DTYPES.)
    """
    if dtype in (None, "float32"):
        return None
    if dtype in QUANTIZED_DTYPES:
        return quantized_copy(model, dtype)
    return copy.deepcopy(model).to(getattr(torch, dtype)).eval()


def context_options(opts: GenerationOptions, device: torch.device) -> dict:
    """The Context settings that come from the options: the cache's room for the new tokens
    and the prompt's precision ("auto" resolved for `device`)."""
    precision = resolve_precision(opts.prefill_precision, device)
    return {"room": opts.max_new_tokens, "prefill_precision": precision}


def text_options(tokenizer, **options) -> GenerationOptions:
    """GenerationOptions for text: unless `stop_ids` says otherwise, the tokenizer's
    end-of-text token ends the generation."""
    if "stop_ids" not in options:
        eot = tokenizer.eot_id
        options["stop_ids"] = () if eot is None else (eot,)
    return GenerationOptions(**options)


def encode_prompt(tokenizer, prompt: str) -> list[int]:
    """The prompt's ids; an empty prompt starts from the end-of-text token if there is one."""
    ids = tokenizer.encode(prompt)
    if ids:
        return ids
    if tokenizer.eot_id is None:
        raise UserError(
            "the prompt is empty and this model's tokenizer has no start (end-of-text) "
            "token; give a prompt of at least one character"
        )
    return [tokenizer.eot_id]


class Session:
    """Token history + KV cache + options of one conversation; `feed` text, `stream` replies.

    `options` are those of `GenerationOptions` (checked here, before anything runs); by
    default the tokenizer's end-of-text token stops a reply.
    """

    def __init__(self, model: torch.nn.Module, tokenizer: Tokenizer, **options: Any):
        self.model, self.tokenizer = model, tokenizer
        self.opts = text_options(tokenizer, **options)
        self.strategy = STRATEGIES[self.opts.strategy]
        self.device = next(model.parameters()).device
        self.generator = make_generator(self.opts.seed, self.device)
        self.engine = Engine(
            model,
            decode_model=decode_copy(model, self.opts.decode_dtype),
            use_cache=self.opts.use_cache,
            **context_options(self.opts, self.device),
        )
        self.ids: list[int] = []  # the whole conversation, prompts and replies
        self.seq: Generation | None = None  # in the engine; kept while the strategy allows
        self.finish_reason: str | None = None  # of the last reply

    @property
    def overflowed(self) -> bool:
        """Is the conversation longer than the model's context (the oldest tokens unseen)?"""
        config: Any = self.model.config  # nn.Module types an attribute as Tensor | Module
        return len(self.ids) > config.block_size

    def feed(self, text: str) -> list[int]:
        """Add `text` to the conversation (run at the next reply); its ids.

        The first text of a session may be empty: it then starts from the end-of-text token.
        """
        ids = encode_prompt(self.tokenizer, text) if not self.ids else self.tokenizer.encode(text)
        self.feed_ids(ids)
        return ids

    def feed_ids(self, ids: Sequence[int]) -> None:
        """Add token ids to the conversation."""
        self.ids += ids
        if self.seq is not None and ids:
            self.seq.rows[0].append(torch.tensor(list(ids), device=self.device))

    def tokens(self) -> Generator[int, None, None]:
        """The reply's ids, one at a time, up to a stop id (not yielded) or max_new_tokens."""
        if not self.ids:
            raise UserError("nothing to continue: feed the session a prompt first")
        if self.seq is None:
            history = torch.tensor(self.ids, device=self.device)  # (T,)
            keep = self.strategy.per_token  # a search leaves its own rows: start afresh
            self.seq = Generation(history, self.opts, self.generator, keep=keep)
        seq = self.seq
        self.finish_reason = "length"
        events = self.engine.stream([seq])  # held here: closed after the finally below
        try:
            for event in events:
                if isinstance(event, Token):
                    self.ids.append(event.id)
                    yield event.id
                elif isinstance(event, Finish):
                    self.finish_reason = event.reason
                    if event.reason == "stop_id":
                        self.ids.append(seq.new[-1])
        except KeyboardInterrupt:  # Ctrl-C inside a step: the cache may be half-written
            self.finish_reason = "cancelled"
            raise
        finally:
            if seq in self.engine.running:  # the reader stopped early: a stop string, Ctrl-C
                keep = self.finish_reason != "cancelled"  # stopped at a yield: cache == ids
                if self.finish_reason != "stop_string":
                    self.finish_reason = "cancelled"
                self.engine.finish(seq, "stop_string" if keep else "cancelled")  # kept or not
            events.close()
            if not seq.rows:  # cancelled: the next turn starts afresh over `ids`
                self.seq = None

    def reset(self) -> None:
        """Start the conversation afresh: no history, and the cache's rows freed."""
        if self.seq is not None:
            self.engine.finish(self.seq, "cancelled")
            self.seq = None
        self.ids, self.finish_reason = [], None

    def stream(self, stop: Sequence[str] = ()) -> Iterator[str]:
        """The reply as text pieces (never half a character), cut before a stop string."""
        text = TextStream.for_tokenizer(self.tokenizer, stop)
        with closing(self.tokens()) as tokens:
            for t in tokens:
                piece = text.push([t])
                if piece:
                    yield piece
                if text.stopped:
                    self.finish_reason = "stop_string"
                    break
        rest = text.finish()
        if rest:
            yield rest
