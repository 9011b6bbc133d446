"""The live explorer: a page at `/`, and the JSON endpoints it reads (scripts may use them too).

    GET  /                   the page: assets/explorer.html, .js and .css (same origin, no CDN)
    GET  /v1/inspect         the model: its layers, heads, context, vocabulary and strategies
    POST /v1/inspect         {"view": VIEW, "text": "...", ...} -> the view's data

    view         parameters               data (from glassformer.inspect's view functions)
    tokens       text                     tokens: [{id, text, label, bytes}], vocab_size
    next_token   text, top, temperature   candidates: [{id, token, logit, probs: [...]}];
                                          probs[1] is at the request's temperature
    attention    text, layer, head        maps: [{layer, head_ids, queries, keys,
                                          heads: [T x T pattern]}]
    logit_lens   text, top                rows: [{layer, cells: [{top: [[token, p], ...],
                                          next_prob, next_rank}]}]

    curl -s localhost:8000/v1/inspect -d '{"view": "attention", "text": "ROMEO:", "layer": 2,
         "head": 1}'

A view runs on the worker thread between two decode steps (it hooks the model, so it must not
overlap a batch). The text may be at most `INSPECT_TOKENS` tokens (the attention map is
T x T numbers).
"""

import asyncio
import math
from importlib.resources import files

from fastapi import APIRouter, Request
from fastapi.responses import Response

from glassformer.errors import UserError
from glassformer.generate import STRATEGIES
from glassformer.inspect.attention import attention_view
from glassformer.inspect.logit_lens import logit_lens_view
from glassformer.inspect.next_token import next_token_view
from glassformer.inspect.tokens import tokens_view
from glassformer.serve.choices import token_bytes
from glassformer.serve.errors import APIError
from glassformer.serve.params import Params, read_json
from glassformer.serve.state import ServerState

INSPECT_TOKENS = 512
VIEWS = ("tokens", "next_token", "attention", "logit_lens")
ASSETS = {"explorer.js": "text/javascript", "explorer.css": "text/css"}
# the page may load and fetch from its own origin only
PAGE_POLICY = (
    "default-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)


def _asset(name: str) -> str:
    return (files("glassformer.serve") / "assets" / name).read_text(encoding="utf-8")


def router(state: ServerState) -> APIRouter:
    r = APIRouter()
    headers = {"Content-Security-Policy": PAGE_POLICY, "Cache-Control": "no-cache"}

    @r.get("/")
    async def page() -> Response:
        return Response(_asset("explorer.html"), media_type="text/html", headers=headers)

    def asset(name: str, media: str):
        async def serve_asset() -> Response:
            return Response(_asset(name), media_type=media, headers=headers)

        return serve_asset

    for name, media in ASSETS.items():  # a fixed list: no request names a file
        r.add_api_route(f"/{name}", asset(name, media), methods=["GET"])

    api = APIRouter(dependencies=[state.auth])

    @api.get("/v1/inspect")
    async def info() -> dict:
        c = state.model.config
        return {
            "model": state.name,
            "n_layer": c.n_layer,
            "n_head": c.n_head,
            "context": c.block_size,
            "vocab_size": state.tokenizer.vocab_size,
            "tokenizer": type(state.tokenizer).__name__,
            "strategies": {name: s.help for name, s in STRATEGIES.items()},
        }

    @api.post("/v1/inspect")
    async def inspect(request: Request) -> dict:
        p = Params(await read_json(request, state.max_body))
        view = p.text("view")
        if view not in VIEWS:
            raise APIError(
                400, f"view must be one of {', '.join(VIEWS)}, got {view!r}", param="view"
            )
        text = p.text("text")
        if not text:
            raise APIError(400, "text must be a non-empty string", param="text")
        job = _job(state, p, view, text)
        try:
            return await asyncio.wrap_future(state.worker.call(job))
        except UserError as e:
            raise APIError(400, str(e), param="text") from None

    r.include_router(api)
    return r


def _job(state: ServerState, p: Params, view: str, text: str):
    """The view's function, its parameters checked here (names as the request spells them)."""
    model, tok = state.model, state.tokenizer
    c = model.config
    try:
        n = len(tok.encode(text))
    except UserError as e:
        raise APIError(400, str(e), param="text") from None
    limit = min(c.block_size, INSPECT_TOKENS)
    if n > limit:
        raise APIError(
            413,
            f"the text is {n} tokens; the explorer looks at most {limit} at once",
            param="text",
            code="context_length_exceeded",
        )
    if view == "tokens":
        return lambda: _tokens(tok, text)
    if view == "next_token":
        top = p.integer("top", 10, 1, 100)
        temperature = p.number("temperature", 1.0)
        if not (temperature > 0 and math.isfinite(temperature)):
            raise APIError(
                400, f"temperature must be a number > 0, got {temperature}", param="temperature"
            )
        return lambda: next_token_view(model, tok, text, top=top, temperature=temperature)
    if view == "attention":
        layer = p.integer("layer", 0, 0, c.n_layer - 1)
        head = p.integer("head", 0, 0, c.n_head - 1)
        return lambda: attention_view(model, tok, text, layer=layer, head=head)
    top = p.integer("top", 3, 1, 10)
    return lambda: logit_lens_view(model, tok, text, top=top)


def _tokens(tokenizer, text: str) -> dict:
    data = tokens_view(tokenizer, text)
    for t in data["tokens"]:
        t["bytes"] = token_bytes(tokenizer, t["id"]).hex(" ")
    return data
