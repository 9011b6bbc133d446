"""The OpenAI-compatible endpoints: GET /v1/models, POST /v1/completions, /v1/chat/completions.

    >>> from openai import OpenAI                                            # doctest: +SKIP
    >>> client = OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="none")
    >>> client.completions.create(model="default", prompt="ROMEO:", max_tokens=40).choices[0].text

Parameters (OpenAI's meaning):

    prompt            completions: a string, an array of strings, an array of token ids, or an
                      array of such arrays (each prompt gets `n` choices)
    messages          chat: [{"role", "content"}]; the model's chat template, or chat.py's
                      plain transcript for a model without one
    max_tokens        default 16 (completions) or the server's cap (chat; also read from
                      max_completion_tokens); at most --max-tokens-cap; a reply also ends
                      where the model's context ends (finish_reason "length"); completions
                      take 0: the prompt only, no new token (with echo: to score a text)
    echo              completions: true sends the prompt back before the completion (the
                      prompt string as given, or the decoded ids); with logprobs k the
                      logprobs cover the prompt's tokens too (the first one's logprob and
                      top_logprobs are null, text_offset counts from the prompt's start),
                      from the full logits of the prompt's prefill. Streamed, the prompt
                      is the first chunk. (Chat has no echo.)
    temperature       default 1 (sampling); 0 is greedy decoding
    top_p, seed       nucleus sampling; the random seed (choice i of n uses seed + i)
    stop              a string or up to 4 strings; the reply ends before the first one
    n                 choices per prompt
    logprobs          completions: an integer k (0-20): log p of each token and its k best
                      alternatives; chat: true, with top_logprobs k
    stream            server-sent events, one chunk per token (several when the client lags),
                      then `data: [DONE]`; stream_options {"include_usage": true} adds a
                      last chunk with the usage
    strategy, top_k, min_p, repetition_penalty, num_beams, length_penalty, penalty_alpha
                      glassformer's own decoding options (generate/options.py); beam and
                      contrastive search run beside the batch, one token per step

Refused with a 400 that names them: `tools`, `tool_choice` (other than "none"), the older
`functions` / `function_call`, and `response_format` other than {"type": "text"} (no tool
calling, no JSON mode). Every response and stream chunk carries `system_fingerprint`
("fp_" + 16 hex digits of a hash of the served name, glassformer's version, the decode dtype
and the weights: app.py `fingerprint`). GET /health answers {"status": "ok"} (no key needed).

Unknown parameters are ignored, as OpenAI does. Log-probabilities are those of the model
(softmax of the raw logits), before temperature and top-p. A completion that stopped at the
end-of-text token lists that token last in its logprobs (as vLLM does; its text is not in
`text`), so every generated token, the one `usage` counts too, has its entry.
"""

import asyncio
import contextlib
import json
import time
import uuid
from dataclasses import replace

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sse_starlette import EventSourceResponse

from glassformer.errors import UserError
from glassformer.generate import encode_prompt
from glassformer.serve.chat import chat_prompt, message_texts
from glassformer.serve.choices import Choices
from glassformer.serve.errors import APIError
from glassformer.serve.params import Params, read_json, sampling_options
from glassformer.serve.shapes import CHAT, COMPLETION, Completion
from glassformer.serve.state import ServerState
from glassformer.serve.worker import Finish, Prompt
from glassformer.serve.worker import Request as WorkerRequest

MAX_CHOICES = 64  # prompts x n in one request
MAX_LOGPROBS = 20
MAX_STOP = 4
DISCONNECT_POLL = 0.5  # seconds between checks that a non-streaming client is still there


def router(state: ServerState) -> APIRouter:
    r = APIRouter(dependencies=[state.auth])

    @r.get("/v1/models")
    async def models() -> dict:
        return {"object": "list", "data": [state.model_card()]}

    @r.get("/v1/models/{name}")
    async def model(name: str) -> dict:
        state.check_model(name)
        return state.model_card()

    @r.post("/v1/completions")
    async def completions(request: Request):
        p = Params(await read_json(request, state.max_body))
        state.check_model(p.text("model"))
        _refuse_unsupported(p)
        prompts, texts = _prompts(p, state)
        top = p.integer("logprobs", None, 0, MAX_LOGPROBS)
        echo = texts if p.flag("echo") else None
        return await _generate(
            request, state, p, prompts, [], top, COMPLETION, max_tokens=16, echo=echo
        )

    @r.post("/v1/chat/completions")
    async def chat_completions(request: Request):
        p = Params(await read_json(request, state.max_body))
        state.check_model(p.text("model"))
        _refuse_unsupported(p)
        messages = message_texts(p.body.get("messages"))
        try:
            ids, stop = chat_prompt(state.tokenizer, messages)
        except UserError as e:
            raise APIError(400, str(e), param="messages") from None
        state.check_length(len(ids), "messages")
        top = None
        if p.flag("logprobs"):
            top = p.integer("top_logprobs", 0, 0, MAX_LOGPROBS)
        elif p.has("top_logprobs"):
            raise APIError(400, "top_logprobs needs logprobs: true", param="top_logprobs")
        if p.has("max_completion_tokens") and not p.has("max_tokens"):
            p.body["max_tokens"] = p.body["max_completion_tokens"]
        return await _generate(
            request, state, p, [ids], stop, top, CHAT, max_tokens=state.max_tokens_cap
        )

    return r


def _refuse_unsupported(p: Params) -> None:
    """A 400 naming `tools`, `tool_choice` (or the older `functions`, `function_call`) or a
    `response_format` other than {"type": "text"}: a client that relies on them would
    otherwise get plain text it does not expect."""
    for name in ("tools", "functions"):
        if p.body.get(name) not in (None, []):
            raise APIError(
                400, f"{name} is not supported: this server has no tool calling", param=name
            )
    for name in ("tool_choice", "function_call"):
        if p.body.get(name) not in (None, "none"):
            raise APIError(
                400,
                f'{name} is not supported: this server has no tool calling (only "none")',
                param=name,
            )
    fmt = p.body.get("response_format")
    if fmt is not None and fmt != {"type": "text"}:
        raise APIError(
            400,
            'response_format is not supported other than {"type": "text"}: this server has '
            "no JSON mode or structured outputs",
            param="response_format",
        )


def _prompts(p: Params, state: ServerState) -> tuple[list[list[int]], list[str]]:
    """The prompt parameter as token ids, one list per prompt, and as text (a string as given,
    token ids decoded): what echo sends back."""
    value = p.body.get("prompt")
    if isinstance(value, str) or (isinstance(value, list) and value and isinstance(value[0], int)):
        value = [value]
    if not isinstance(value, list) or not value:
        raise APIError(
            400,
            "prompt must be a string, an array of strings or an array of token ids",
            param="prompt",
        )
    prompts, texts = [], []
    for item in value:
        if isinstance(item, str):
            try:
                ids = encode_prompt(state.tokenizer, item)
            except UserError as e:
                raise APIError(400, str(e), param="prompt") from None
        elif (
            isinstance(item, list)
            and item
            and all(isinstance(t, int) and not isinstance(t, bool) for t in item)
        ):
            bad = [t for t in item if not 0 <= t < state.tokenizer.vocab_size]
            if bad:
                raise APIError(
                    400,
                    f"prompt holds the token id {bad[0]}, outside the vocabulary "
                    f"(0..{state.tokenizer.vocab_size - 1})",
                    param="prompt",
                )
            ids = item
        else:
            raise APIError(
                400,
                "each prompt must be a string or a non-empty array of token ids",
                param="prompt",
            )
        state.check_length(len(ids), "prompt")
        prompts.append(ids)
        texts.append(item if isinstance(item, str) else state.tokenizer.decode(ids))
    return prompts, texts


async def _generate(
    request, state, p, prompts, extra_stop, top, shape: Completion, max_tokens, echo=None
):
    """Submit every choice of every prompt; the JSON response or the event stream. `echo`:
    the prompts' texts, to send back first (completions; it also allows max_tokens 0)."""
    n = p.integer("n", 1, 1, MAX_CHOICES)
    if n * len(prompts) > MAX_CHOICES:
        raise APIError(400, f"prompts x n must be at most {MAX_CHOICES}", param="n")
    least = 0 if shape is COMPLETION else None  # None: GenerationOptions' range says
    max_tokens = p.integer("max_tokens", max_tokens, least, state.max_tokens_cap)
    prefill_only = least == 0 and max_tokens == 0  # the prompt only (completions)
    max_tokens = 1 if prefill_only else max_tokens  # its options still need a valid length
    stop = p.strings("stop", MAX_STOP)
    stream = p.flag("stream")
    include_usage = stream and bool(Params(p.object("stream_options")).flag("include_usage"))
    opts = sampling_options(p, state.tokenizer, max_tokens, strategy="sample")
    if top is not None and not state.per_token(opts.strategy):
        raise APIError(
            400,
            f"logprobs need a per-token strategy, not {opts.strategy!r} (a search ranks whole "
            "sequences)",
            param="logprobs",
        )
    requests = []
    for k, ids in enumerate(prompts):
        for j in range(n):
            seed = None if opts.seed is None else opts.seed + j
            requests.append(
                WorkerRequest(
                    ids=ids,
                    opts=replace(opts, seed=seed),
                    emit=lambda event: None,  # set by Choices
                    stop=[*stop, *extra_stop],
                    top_logprobs=top,
                    echo=None if echo is None else echo[k],
                    prefill_only=prefill_only,
                )
            )
    choices = Choices(state.worker, state.mailbox(), requests)
    prompt_tokens = sum(len(ids) for ids in prompts)
    head = {
        "id": shape.id_prefix + uuid.uuid4().hex,
        "object": shape.object,
        "created": int(time.time()),
        "model": state.name,
        "system_fingerprint": state.fingerprint,
    }
    choices.start()
    if stream:
        events = _stream(state, choices, head, shape, include_usage, prompt_tokens)
        return EventSourceResponse(
            events, sep="\n", ping=15, client_close_handler_callable=_closer(choices)
        )
    try:
        check = time.monotonic() + DISCONNECT_POLL
        while choices.open:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(choices.next(), timeout=DISCONNECT_POLL)
            if time.monotonic() >= check:
                if await request.is_disconnected():  # nobody waits for the answer
                    return Response(status_code=499)
                check = time.monotonic() + DISCONNECT_POLL
    finally:
        choices.cancel()  # the rows of unfinished choices (client gone, or an error) are freed
    error = choices.error()
    if error:
        raise APIError(500, f"the model failed on this request ({error})")
    out = []
    for c in choices.choices:
        lp = None if top is None else shape.logprobs(state.tokenizer, c.logprobs + _stop(c, shape))
        body = shape.body(c.text)
        out.append({"index": c.index, **body, "logprobs": lp, "finish_reason": c.finish_reason})
    return JSONResponse(head | {"choices": out, "usage": choices.usage(prompt_tokens)})


def _stop(choice, shape: Completion) -> list:
    """The end-of-text token the choice stopped at, as a logprobs item, where the shape lists
    it (completions: a client that drops the last entry as the chosen token, like
    lm-eval with max_tokens 1, then drops that one and not a prompt token)."""
    t = choice.finish.token if choice.finish else None
    return [(t.id, t.logprob, t.top)] if t is not None and shape.lists_stop_token else []


def _closer(choices: Choices):
    async def close(message) -> None:
        choices.cancel()

    return close


def _event(data: dict | str) -> bytes:
    """One server-sent event: `data: ...` and a blank line."""
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    return f"data: {text}\n\n".encode()


async def _stream(
    state, choices: Choices, head: dict, shape: Completion, include_usage: bool, prompt_tokens: int
):
    """The SSE events: chunks of new text per choice, finish chunks, usage, [DONE].

    Whatever arrived since the last send goes out as one write: per choice one chunk of its
    new text (and log-probabilities), then the chunks of the choices that finished.
    """
    head = head | {"object": shape.chunk_object}
    prefix = json.dumps(head)[:-1] + ', "choices": ['  # the part every chunk repeats
    offsets = [0] * len(choices.choices)

    def chunk(index: int, text: str | None, items, finish: str | None) -> bytes:
        lp = shape.logprobs(state.tokenizer, items, offsets[index]) if items else None
        body = {"index": index, **shape.piece(text), "logprobs": lp, "finish_reason": finish}
        return _event(prefix + json.dumps(body, ensure_ascii=False) + "]}")

    try:
        openings = [shape.opening(c.index) for c in choices.choices]
        if any(openings):
            yield b"".join(_event(head | {"choices": [o]}) for o in openings)
        while choices.open:
            texts: dict[int, list[str]] = {}
            items: dict[int, list] = {}
            finished: list[int] = []
            for i, event in await choices.next():
                texts.setdefault(i, []).append(event.text)
                if isinstance(event, Finish):
                    finished.append(i)
                elif isinstance(event, Prompt):  # echo: the prompt goes out first
                    items.setdefault(i, []).extend(event.items or [])
                elif event.logprob is not None:
                    items.setdefault(i, []).append((event.id, event.logprob, event.top))
            out = []
            for i, parts in texts.items():
                text = "".join(parts)
                if text or items.get(i):
                    out.append(chunk(i, text, items.get(i), None))
                    offsets[i] += len(text)
            for i in finished:
                c = choices.choices[i]
                if c.finish.reason == "error":
                    error = APIError(500, f"the model failed on this request ({c.finish.error})")
                    yield b"".join(out) + _event(error.body())
                    return
                out.append(chunk(i, None, _stop(c, shape), c.finish_reason))
            if out:
                yield b"".join(out)
        if include_usage:
            yield _event(head | {"choices": [], "usage": choices.usage(prompt_tokens)})
        yield _event("[DONE]")
    finally:
        choices.cancel()
