"""Reading a request: the body (size-capped, UTF-8, a JSON object) and typed parameters.

Every check here ends in an `APIError` that names the parameter, so a client learns which one
to fix. Values are only *typed* here; their ranges are `GenerationOptions`'s to check (the one
place generation options are validated), and `sampling_options` maps its `OptionError` to the
request's own parameter name (max_new_tokens -> max_tokens).

Parameters this server does not know are ignored, as OpenAI's API ignores them.
"""

import json

from fastapi import Request

from glassformer.generate.option_error import OptionError
from glassformer.generate.options import GenerationOptions
from glassformer.generate.session import text_options
from glassformer.serve.errors import APIError

# a body over the limit is read (and thrown away) up to this size before the 413, so that a
# client still sending it gets the answer instead of a reset connection
DRAIN_LIMIT = 64 * 2**20

# request parameter -> GenerationOptions field, for the parameters whose names differ
OPTION_NAMES = {"max_tokens": "max_new_tokens"}
PARAM_NAMES = {field: param for param, field in OPTION_NAMES.items()}

# glassformer's own sampling parameters, beside OpenAI's temperature, top_p and seed
EXTENSIONS = {
    "strategy": str,
    "top_k": int,
    "min_p": float,
    "repetition_penalty": float,
    "num_beams": int,
    "length_penalty": float,
    "penalty_alpha": float,
}


async def read_json(request: Request, max_body: int) -> dict:
    """The body as a JSON object; 413 over `max_body` bytes, 400 if not UTF-8 JSON."""
    declared = request.headers.get("content-length", "")
    too_big = declared.isdigit() and int(declared) > max_body
    body, total = bytearray(), 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > max_body:
            too_big = True
        if too_big:
            if total > DRAIN_LIMIT:
                break
            continue
        body += chunk
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


def sampling_options(p: Params, tokenizer, max_tokens: int, strategy: str) -> GenerationOptions:
    """GenerationOptions from temperature, top_p, seed and glassformer's extensions.

    OpenAI samples by default (temperature 1); temperature 0 is greedy decoding.
    """
    kw = dict(
        max_new_tokens=max_tokens,
        strategy=p.text("strategy", strategy),
        temperature=p.number("temperature", 1.0),
        top_p=p.number("top_p"),
        seed=p.integer("seed"),
    )
    for name, kind in EXTENSIONS.items():
        if name != "strategy" and p.has(name):
            kw[name] = p.integer(name) if kind is int else p.number(name)
    try:
        return text_options(tokenizer, **kw)
    except OptionError as e:
        param = PARAM_NAMES.get(e.field, e.field)
        raise APIError(400, f"{param} {e.problem}", param=param) from None
