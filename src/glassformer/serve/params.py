"""Reading a request: the body (size-capped, UTF-8, a JSON object) and typed parameters.

Every check here ends in an `APIError` that names the parameter, so a client learns which one
to fix. Values are only *typed* here; their ranges are `GenerationOptions`'s to check (the one
place generation options are validated), and `sampling_options` maps its `OptionError` to the
request's own parameter name (max_new_tokens -> max_tokens).

The decoding parameters are GenerationOptions' fields: OpenAI's (max_tokens, temperature,
top_p, seed) and, under the fields' own names, glassformer's `EXTENSIONS` (strategy, top_k,
num_beams, ...: every field but OpenAI's and `NOT_PARAMS`), each read with its field's type.
What a request leaves out is the server's default set (`DEFAULTS["serve"]`, OpenAI's).

Parameters this server does not know are ignored, as OpenAI's API ignores them.
"""

import json
import logging
from dataclasses import fields

from fastapi import Request
from starlette.requests import ClientDisconnect

from glassformer.generate import DEFAULTS, GenerationOptions, OptionError, text_options
from glassformer.serve.errors import APIError

# the server's log (uvicorn's): one line for a client that left mid-body, never a traceback
LOG = logging.getLogger("uvicorn.error")
# a body over the limit is read (and thrown away) up to this size before the 413, so that a
# client still sending it gets the answer instead of a reset connection
DRAIN_LIMIT = 64 * 2**20

# GenerationOptions field -> request parameter, where OpenAI's name differs
PARAM_NAMES = {"max_new_tokens": "max_tokens"}
# the fields that are OpenAI's parameters, read here (max_tokens is the endpoint's to read: its
# default and the server's cap depend on the endpoint)
OPENAI = ("temperature", "top_p", "seed")
# the fields a request does not set, and why
NOT_PARAMS = {
    "max_new_tokens": "the endpoint reads max_tokens",
    "num_return_sequences": "n asks for several choices",
    "stop_ids": "stop texts and the model's end-of-text token end a reply",
    "use_cache": "the server always keeps the KV cache",
    "decode_dtype": "the batch decodes on one set of weights",
    "prefill_precision": "the batch prefills in one precision",
}
# glassformer's own decoding parameters, beside OpenAI's: every other field, by its own name
EXTENSIONS = tuple(
    f.name for f in fields(GenerationOptions) if f.name not in (*OPENAI, *NOT_PARAMS)
)


async def read_json(request: Request, max_body: int) -> dict:
    """The body as a JSON object; 413 over `max_body` bytes, 400 if not UTF-8 JSON."""
    declared = request.headers.get("content-length", "")
    too_big = declared.isdigit() and int(declared) > max_body
    body, total = bytearray(), 0
    try:
        async for chunk in request.stream():
            total += len(chunk)
            if total > max_body:
                too_big = True
            if too_big:
                if total > DRAIN_LIMIT:
                    break
                continue
            body += chunk
    except ClientDisconnect:  # nobody is left to answer: one line in the log, no traceback
        client = f"{request.client.host}:{request.client.port}" if request.client else "a client"
        LOG.warning(
            "%s closed the connection after %d of %s bytes of its %s body",
            client, total, declared or "?", request.url.path,
        )  # fmt: skip
        raise APIError(400, "the client closed the connection before its body ended") from None
    if too_big:
        raise APIError(
            413,
            f"the request body is larger than this server's limit of {max_body} bytes; "
            "send a shorter prompt",
            code="request_too_large",
        )
    try:
        text = bytes(body).decode("utf-8")
    except UnicodeDecodeError as e:
        raise APIError(
            400, f"the request body is not valid UTF-8 (byte {e.start}); send UTF-8 JSON"
        ) from None
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as e:
        raise APIError(
            400, f"the request body is not valid JSON ({e}); send a JSON object"
        ) from None
    if not isinstance(data, dict):
        raise APIError(400, f"the request body must be a JSON object, not {_kind(data)}")
    return data


def _kind(value) -> str:
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "an object",
        type(None): "null",
    }[type(value)]


class Params:
    """Typed reads of the body's parameters: `p.integer("n", 1)`, `p.number(...)`, ..."""

    def __init__(self, body: dict):
        self.body = body

    def has(self, name: str) -> bool:
        return self.body.get(name) is not None

    def _get(self, name: str, default, ok: bool, wanted: str):
        value = self.body.get(name)
        if value is None:
            return default
        if not ok(value):
            raise APIError(400, f"{name} must be {wanted}, not {_kind(value)}", param=name)
        return value

    def integer(self, name: str, default=None, low: int | None = None, high: int | None = None):
        value = self._get(
            name, default, lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"
        )
        if value is not None and low is not None and value < low:
            raise APIError(400, f"{name} must be at least {low}, got {value}", param=name)
        if value is not None and high is not None and value > high:
            raise APIError(400, f"{name} must be at most {high}, got {value}", param=name)
        return value

    def number(self, name: str, default=None):
        value = self._get(
            name,
            default,
            lambda v: isinstance(v, int | float) and not isinstance(v, bool),
            "a number",
        )
        return None if value is None else float(value)

    def flag(self, name: str, default: bool = False) -> bool:
        return self._get(name, default, lambda v: isinstance(v, bool), "true or false")

    def text(self, name: str, default=None):
        return self._get(name, default, lambda v: isinstance(v, str), "a string")

    def object(self, name: str) -> dict:
        return self._get(name, {}, lambda v: isinstance(v, dict), "an object")

    def strings(self, name: str, most: int) -> list[str]:
        """A string or an array of at most `most` strings (e.g. `stop`)."""
        value = self.body.get(name)
        if value is None:
            return []
        if isinstance(value, str):
            value = [value]
        if not (isinstance(value, list) and all(isinstance(s, str) for s in value)):
            raise APIError(400, f"{name} must be a string or an array of strings", param=name)
        if len(value) > most:
            raise APIError(
                400, f"{name} may hold at most {most} strings, got {len(value)}", param=name
            )
        return value


def sampling_options(p: Params, tokenizer, max_tokens: int, **defaults) -> GenerationOptions:
    """GenerationOptions from max_tokens (read by the endpoint), temperature, top_p, seed and
    glassformer's EXTENSIONS; what the request leaves out is `defaults` (the endpoint's), else
    DEFAULTS["serve"] (OpenAI's: temperature 1, sampling), else the field's own default."""
    read = {int: p.integer, float: p.number, str: p.text, bool: p.flag}
    kw = {**DEFAULTS["serve"], **defaults, "max_new_tokens": max_tokens}
    for f in fields(GenerationOptions):
        if f.name in (*OPENAI, *EXTENSIONS) and p.has(f.name):
            kind = f.metadata["kind"]  # early_stopping (true, false or "never"): as it is
            kw[f.name] = read[kind](f.name) if kind in read else p.body[f.name]
    try:
        return text_options(tokenizer, **kw)
    except OptionError as e:
        param = PARAM_NAMES.get(e.field, e.field)
        raise APIError(400, f"{param} {e.problem}", param=param) from None
