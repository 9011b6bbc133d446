"""The entry points: text in, text out (`generate`, `stream`), and ids in, ids out.

    >>> text = glassformer.generate(model, tokenizer, "ROMEO:", max_new_tokens=40)
    >>> for piece in glassformer.stream(model, tokenizer, "ROMEO:", strategy="sample", seed=1):
    ...     print(piece, end="", flush=True)
    >>> ids = model.generate(torch.tensor([[1, 2, 3]]), 40, strategy="beam", num_beams=4)

`generate` returns the continuation only (not the prompt); `"".join(stream(...))` is the same
text. Generation ends after `max_new_tokens`, at a stop id (by default the tokenizer's
end-of-text token, which is not part of the text) or at a stop string (`stop=["\\n\\n"]`, cut
before it). Options are those of `GenerationOptions` (options.py); a bad value raises
`UserError`.
"""

import copy
from collections.abc import Iterator, Sequence

import torch

from glassformer.errors import UserError
from glassformer.generate.beam import beam_search
from glassformer.generate.context import Context
from glassformer.generate.contrastive import contrastive_search
from glassformer.generate.options import GenerationOptions
from glassformer.generate.sampling import decode
from glassformer.generate.streaming import TextStream


def make_generator(seed: int | None, device: torch.device) -> torch.Generator | None:
    """A seeded random generator (same seed, same samples), or None for torch's global one."""
    if seed is None:
        return None
    return torch.Generator(device=device).manual_seed(seed)


def decode_copy(model: torch.nn.Module, dtype: str | None) -> torch.nn.Module | None:
    """A copy of `model` for the decode steps, or None to decode with the model itself.

    "bfloat16": every weight in bf16. "int8": each Linear's weight in int8 (one scale per
    matrix) with fp32 activations, through torch's dynamic quantization (fbgemm on x86; the
    API is deprecated since torch 2.13 and will move to torchao). Either reads fewer bytes per
    token than fp32, and either rounds the logits.
    """
    if dtype in (None, "float32"):
        return None
    if dtype == "int8":
        import warnings

        from torch.ao.quantization import quantize_dynamic

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the deprecation notice of quantized tensors
            return quantize_dynamic(copy.deepcopy(model).eval(), {torch.nn.Linear}, torch.qint8)
    return copy.deepcopy(model).to(getattr(torch, dtype)).eval()


def left_padding(attention_mask: torch.Tensor | None, idx: torch.Tensor) -> torch.Tensor | None:
    """Padding count per row (B,) from a (B, T) mask of 1 = token, 0 = left padding."""
    if attention_mask is None:
        return None
    mask = attention_mask.to(torch.bool)
    if mask.shape != idx.shape:
        raise UserError(
            f"attention_mask has shape {tuple(mask.shape)} but the ids have "
            f"{tuple(idx.shape)}; give one 0/1 per token"
        )
    pad = (~mask).long().cumprod(dim=1).sum(dim=1)  # (B,): leading zeros
    if not torch.equal(mask.sum(dim=1), mask.size(1) - pad):
        raise UserError("attention_mask must be left padding: 0s first, then only 1s per row")
    if bool((pad == mask.size(1)).any()):
        raise UserError("a row of the batch is all padding; give every prompt a token")
    return pad


@torch.no_grad()
def generate_tokens(
    model: torch.nn.Module,
    idx: torch.Tensor,
    opts: GenerationOptions,
    attention_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Prompt ids (B, T) -> prompt + new ids (B * num_return_sequences, T + new).

    Rows that stop early (or shorter beams) are filled with their stop id, as Hugging Face
    fills with the pad id.
    """
    if idx.dim() != 2 or idx.size(1) == 0 or idx.dtype != torch.long:
        raise UserError(
            f"ids must be a (batch, length) LongTensor with length >= 1, got "
            f"{tuple(idx.shape)} {idx.dtype}"
        )
    pad = left_padding(attention_mask, idx)
    was_training = model.training
    model.eval()
    try:
        if opts.strategy in ("greedy", "sample"):
            gen = make_generator(opts.seed, idx.device)
            ctx = Context(model, idx, pad, opts.use_cache, decode_copy(model, opts.decode_dtype))
            new = list(decode(ctx, opts, gen))
            return torch.cat([idx, *new], dim=1)
        rows = []
        for b in range(idx.size(0)):
            prompt = idx[b : b + 1, 0 if pad is None else int(pad[b]) :]  # (1, T_b)
            if opts.strategy == "beam":
                rows += [h.ids for h in beam_search(model, prompt, opts)]
            else:
                new = list(contrastive_search(model, prompt, opts))
                rows.append(torch.cat([prompt, *new], dim=1)[0])
        return _stack_left_padded(rows, idx, pad, opts)
    finally:
        model.train(was_training)


def _stack_left_padded(rows, idx, pad, opts) -> torch.Tensor:
    """Put the prompt's padding back in front of each row and fill the ends with the stop id."""
    fill = opts.stop_ids[0] if opts.stop_ids else 0
    per_prompt = len(rows) // idx.size(0)
    out = []
    for i, row in enumerate(rows):
        b = i // per_prompt
        lead = idx[b, : 0 if pad is None else int(pad[b])]
        out.append(torch.cat((lead, row)))
    width = max(len(r) for r in out)
    full = torch.full((len(out), width), fill, dtype=torch.long, device=idx.device)
    for i, r in enumerate(out):
        full[i, : len(r)] = r
    return full


def encode_prompt(tokenizer, prompt: str) -> list[int]:
    """The prompt's ids; an empty prompt starts from the end-of-text token if there is one."""
    ids = tokenizer.encode(prompt)
    if ids:
        return ids
    if getattr(tokenizer, "eot_id", None) is None:
        raise UserError(
            "the prompt is empty and this model's tokenizer has no start (end-of-text) "
            "token; give a prompt of at least one character"
        )
    return [tokenizer.eot_id]


def _options(tokenizer, max_new_tokens: int, strategy: str, options: dict) -> GenerationOptions:
    if "stop_ids" not in options:
        eot = getattr(tokenizer, "eot_id", None)
        options["stop_ids"] = () if eot is None else (eot,)
    return GenerationOptions(max_new_tokens=max_new_tokens, strategy=strategy, **options)


def stream(
    model: torch.nn.Module,
    tokenizer,
    prompt: str,
    max_new_tokens: int = 64,
    strategy: str = "greedy",
    stop: Sequence[str] = (),
    **options,
) -> Iterator[str]:
    """Yield the continuation of `prompt` piece by piece, as the tokens are chosen.

    A piece is never half a character (see streaming.py). Beam search only knows its best
    sequence at the end, so it yields everything at once. Options are checked at the call,
    before anything is generated.
    """
    opts = _options(tokenizer, max_new_tokens, strategy, dict(options))
    device = next(model.parameters()).device
    idx = torch.tensor([encode_prompt(tokenizer, prompt)], device=device)  # (1, T)
    return _stream(model, tokenizer, idx, opts, stop)


def _stream(model, tokenizer, idx, opts: GenerationOptions, stop) -> Iterator[str]:
    text = TextStream.for_tokenizer(tokenizer, stop)
    stops = set(opts.stop_ids)
    was_training = model.training
    model.eval()
    try:
        if opts.strategy == "beam":
            best = beam_search(model, idx, opts)[0]
            tokens = (t[None, None] for t in best.ids[idx.size(1) :])
        elif opts.strategy == "contrastive":
            tokens = contrastive_search(model, idx, opts)
        else:
            decoder = decode_copy(model, opts.decode_dtype)
            ctx = Context(model, idx, use_cache=opts.use_cache, decode_model=decoder)
            tokens = decode(ctx, opts, make_generator(opts.seed, idx.device))
        for token in tokens:
            t = int(token)
            if t in stops:
                break
            piece = text.push([t])
            if piece:
                yield piece
            if text.stopped:
                break
        rest = text.finish()
        if rest:
            yield rest
    finally:
        model.train(was_training)


def generate(
    model: torch.nn.Module,
    tokenizer,
    prompt: str | Sequence[str],
    max_new_tokens: int = 64,
    strategy: str = "greedy",
    stop: Sequence[str] = (),
    **options,
) -> str | list[str]:
    """The continuation of `prompt` (a str), or of each prompt of a list (a batch).

    A list of prompts runs as one left-padded batch (greedy and sampling) and gives the same
    texts as generating each alone.
    """
    opts = _options(tokenizer, max_new_tokens, strategy, dict(options))
    device = next(model.parameters()).device
    if isinstance(prompt, str) and opts.num_return_sequences > 1:  # the n best beams
        idx = torch.tensor([encode_prompt(tokenizer, prompt)], device=device)  # (1, T)
        out = generate_tokens(model, idx, opts)[:, idx.size(1) :]
        return [_text(tokenizer, row, opts, stop) for row in out.tolist()]
    if isinstance(prompt, str):
        return "".join(stream(model, tokenizer, prompt, max_new_tokens, strategy, stop, **options))
    if opts.strategy not in ("greedy", "sample"):
        return [
            generate(model, tokenizer, p, max_new_tokens, strategy, stop, **options) for p in prompt
        ]
    prompts = [encode_prompt(tokenizer, p) for p in prompt]
    if not prompts:
        return []
    width = max(len(p) for p in prompts)
    idx = torch.zeros(len(prompts), width, dtype=torch.long, device=device)
    mask = torch.zeros_like(idx)
    for b, p in enumerate(prompts):
        idx[b, width - len(p) :] = torch.tensor(p)
        mask[b, width - len(p) :] = 1
    out = generate_tokens(model, idx, opts, attention_mask=mask)[:, width:]
    return [_text(tokenizer, row, opts, stop) for row in out.tolist()]


def _text(tokenizer, row: list[int], opts: GenerationOptions, stop: Sequence[str]) -> str:
    """Generated ids -> text, cut at the first stop id and the first stop string."""
    if opts.stop_ids:
        row = row[: next((i for i, t in enumerate(row) if t in opts.stop_ids), len(row))]
    text = TextStream.for_tokenizer(tokenizer, stop)
    return text.push(row) + text.finish()
