"""The choices of one HTTP request: submitted to the worker together, collected as they come.

A request with `n` choices (or several prompts) becomes that many worker `Request`s. Their
events arrive on the worker thread and reach the event loop through its `Mailbox`: one wake-up
of the loop carries every event posted since the last one (for all requests), instead of one
wake-up per token. `Choices.next()` then returns every event waiting, so a client that reads
slower than the worker writes gets several tokens per chunk instead of a growing backlog.

Each `Choice` keeps what the response needs: the text, the finish reason, the token count and
(when asked) the log-probabilities, in both of OpenAI's shapes:

    completions:  {"tokens": [...], "token_logprobs": [...], "top_logprobs": [{tok: lp}],
                   "text_offset": [...]}
    chat:         {"content": [{"token", "logprob", "bytes", "top_logprobs": [...]}, ...]}
"""

import asyncio
import threading
from functools import partial

from glassformer.serve.worker import Finish, Prompt, Request, Token, Worker

FINISH_REASONS = {"stop": "stop", "length": "length"}  # worker -> OpenAI


def token_bytes(tokenizer, token_id: int) -> bytes:
    """The bytes of one token (a byte-level token may be part of a character)."""
    return tokenizer.decode_bytes([token_id])


class Choice:
    def __init__(self, index: int):
        self.index = index
        self.parts: list[str] = []
        # (id, logprob, top) per token: the echoed prompt's (the first logprob None), the reply's
        self.logprobs: list[tuple[int, float | None, list[tuple[int, float]] | None]] = []
        self.finish: Finish | None = None

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def add(self, event: Prompt | Token | Finish) -> None:
        if isinstance(event, Finish):
            self.finish = event
            self.parts.append(event.text)
        elif isinstance(event, Prompt):  # before the reply's first token
            self.parts.append(event.text)
            self.logprobs += event.items or []
        else:
            self.parts.append(event.text)
            if event.logprob is not None:
                self.logprobs.append((event.id, event.logprob, event.top))

    @property
    def finish_reason(self) -> str | None:
        return None if self.finish is None else FINISH_REASONS.get(self.finish.reason)


def completion_logprobs(tokenizer, items, offset: int = 0) -> dict:
    """OpenAI's legacy completions shape for (id, logprob, top) items (an echoed prompt's
    first token has logprob and top None, as OpenAI's)."""
    tokens = [tokenizer.decode([i]) for i, _, _ in items]
    offsets = []
    for t in tokens:
        offsets.append(offset)
        offset += len(t)
    return {
        "tokens": tokens,
        "token_logprobs": [lp for _, lp, _ in items],
        "top_logprobs": [None if top is None else _top(tokenizer, top) for _, _, top in items],
        "text_offset": offsets,
    }


def _top(tokenizer, top: list[tuple[int, float]]) -> dict[str, float]:
    """{text: logprob} of the most likely tokens, best first; where two ids decode to one text
    (parts of one character) the key keeps the likelier one's logprob."""
    out: dict[str, float] = {}
    for j, lp in top:
        out.setdefault(tokenizer.decode([j]), lp)
    return out


def chat_logprobs(tokenizer, items) -> dict:
    """OpenAI's chat shape for (id, logprob, top) items."""

    def entry(i: int, lp: float) -> dict:
        return {
            "token": tokenizer.decode([i]),
            "logprob": lp,
            "bytes": list(token_bytes(tokenizer, i)),
        }

    return {
        "content": [
            entry(i, lp) | {"top_logprobs": [entry(j, tlp) for j, tlp in (top or [])]}
            for i, lp, top in items
        ]
    }


class Mailbox:
    """Items posted on the worker thread for asyncio queues; `flush` (a worker listener, after
    each phase of a step) delivers everything posted so far with one wake-up of the loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.lock = threading.Lock()
        self.pending: list[tuple[asyncio.Queue, object]] = []
        self.scheduled = False

    def post(self, queue: asyncio.Queue, item) -> None:
        with self.lock:
            self.pending.append((queue, item))

    def flush(self) -> None:
        with self.lock:
            if not self.pending or self.scheduled:
                return
            self.scheduled = True
        self.loop.call_soon_threadsafe(self._deliver)

    def _deliver(self) -> None:
        with self.lock:
            items, self.pending, self.scheduled = self.pending, [], False
        for queue, item in items:
            queue.put_nowait(item)


class Choices:
    """Worker requests of one HTTP request, their events in one asyncio queue."""

    def __init__(self, worker: Worker, mailbox: Mailbox, requests: list[Request]):
        self.worker, self.mailbox = worker, mailbox
        self.queue: asyncio.Queue = asyncio.Queue()
        self.requests = requests
        for i, req in enumerate(requests):
            req.emit = partial(self._emit, i)
        self.choices = [Choice(i) for i in range(len(requests))]
        self.open = len(requests)

    def _emit(self, i: int, event: Prompt | Token | Finish) -> None:  # on the worker thread
        self.mailbox.post(self.queue, (i, event))

    def start(self) -> None:
        for req in self.requests:
            self.worker.submit(req)

    def cancel(self) -> None:
        """Free the rows of every choice still running (a client went away)."""
        for req, choice in zip(self.requests, self.choices, strict=True):
            if choice.finish is None:
                self.worker.cancel(req)

    async def next(self) -> list[tuple[int, Prompt | Token | Finish]]:
        """Every event waiting (at least one); each is also added to its Choice."""
        events = [await self.queue.get()]
        while not self.queue.empty():
            events.append(self.queue.get_nowait())
        for i, event in events:
            self.choices[i].add(event)
            if isinstance(event, Finish):
                self.open -= 1
        return events

    def error(self) -> str | None:
        """The first failure among the choices, if any."""
        return next(
            (
                c.finish.error or c.finish.reason
                for c in self.choices
                if c.finish and c.finish.reason == "error"
            ),
            None,
        )

    def usage(self, prompt_tokens: int) -> dict:
        completion = sum(c.finish.completion_tokens for c in self.choices if c.finish)
        return {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": prompt_tokens + completion,
        }
