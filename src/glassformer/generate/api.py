"""The entry points: text in, text out (`generate`, `stream`), and ids in, ids out.

    >>> text = glassformer.generate(model, tokenizer, "ROMEO:", max_new_tokens=40)
    >>> for piece in glassformer.stream(model, tokenizer, "ROMEO:", strategy="sample", seed=1):
    ...     print(piece, end="", flush=True)
    >>> opts = GenerationOptions(40, strategy="beam", num_beams=4)
    >>> ids = generate_tokens(model, torch.tensor([[1, 2, 3]]), opts)   # prompt + new ids

`generate` returns the continuation only (not the prompt); `"".join(stream(...))` is the same
text: both are one turn of a `Session` (session.py). Generation ends after `max_new_tokens`,
at a stop id (by default the tokenizer's end-of-text token, which is not part of the text) or
at a stop string (`stop=["\\n\\n"]`, cut before it). Options are those of
`GenerationOptions` (options.py); a bad value raises `UserError`.
"""

from collections.abc import Iterator, Sequence
from typing import Any, Literal, overload

import torch

from glassformer.errors import UserError
from glassformer.generate.engine import Engine, Generation
from glassformer.generate.options import GenerationOptions
from glassformer.generate.session import (
    Session,
    context_options,
    decode_copy,
    encode_prompt,
    make_generator,
    text_options,
)
from glassformer.generate.streaming import TextStream
from glassformer.tokenizers.protocol import Tokenizer


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


def generate_tokens(
    model: torch.nn.Module,
    idx: torch.Tensor,
    opts: GenerationOptions,
    attention_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Prompt ids (B, T) -> prompt + new ids (B * num_return_sequences, T + new).

    `attention_mask` (B, T) of 1/0 marks left padding in a batch of unequal prompts. Every
    prompt is a generation of the one engine (engine.py): their prompts run as one batched
    prefill and their steps as one forward each, whatever the strategy. Each has its own
    random generator seeded with `opts.seed`, so a prompt gives the same tokens in a batch as
    alone. Rows that stop early (or shorter beams) are filled with their stop id, as Hugging
    Face fills with the pad id.

    >>> model = GPT(GPTConfig(vocab_size=10, block_size=8, n_layer=1, n_head=2, n_embd=8))
    >>> generate_tokens(model, torch.zeros(1, 3, dtype=torch.long), GenerationOptions(4)).shape
    torch.Size([1, 7])
    """
    if idx.dim() != 2 or idx.size(1) == 0 or idx.dtype != torch.long:
        raise UserError(
            f"ids must be a (batch, length) LongTensor with length >= 1, got "
            f"{tuple(idx.shape)} {idx.dtype}"
        )
    pad = left_padding(attention_mask, idx)
    engine = Engine(
        model,
        decode_model=decode_copy(model, opts.decode_dtype),
        use_cache=opts.use_cache,
        **context_options(opts, idx.device),
    )
    prompts = [idx[b, 0 if pad is None else int(pad[b]) :] for b in range(idx.size(0))]
    gens = [Generation(p, opts, make_generator(opts.seed, idx.device)) for p in prompts]
    for _ in engine.stream(gens):
        pass
    rows = [
        torch.cat((p, torch.tensor(reply, dtype=torch.long, device=idx.device)))
        for p, gen in zip(prompts, gens, strict=True)
        for reply in gen.results
    ]
    return _stack_left_padded(rows, idx, pad, opts)


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


def stream(
    model: torch.nn.Module,
    tokenizer: Tokenizer,
    prompt: str,
    max_new_tokens: int = 64,
    strategy: str = "greedy",
    stop: Sequence[str] = (),
    **options: Any,
) -> Iterator[str]:
    """Yield the continuation of `prompt` piece by piece, as the tokens are chosen.

    A piece is never half a character (see streaming.py). Beam search only knows its best
    sequence at the end, so it yields everything at once. Options and the prompt are checked
    at the call, before anything is generated.
    """
    session = Session(model, tokenizer, max_new_tokens=max_new_tokens, strategy=strategy, **options)
    session.feed(prompt)
    return session.stream(stop)


@overload
def generate(
    model: torch.nn.Module,
    tokenizer: Tokenizer,
    prompt: str,
    max_new_tokens: int = 64,
    strategy: str = "greedy",
    stop: Sequence[str] = (),
    *,
    num_return_sequences: Literal[1] = 1,
    **options: Any,
) -> str: ...
@overload
def generate(
    model: torch.nn.Module,
    tokenizer: Tokenizer,
    prompt: str,
    max_new_tokens: int = 64,
    strategy: str = "greedy",
    stop: Sequence[str] = (),
    *,
    num_return_sequences: int,
    **options: Any,
) -> list[str]: ...
@overload
def generate(
    model: torch.nn.Module,
    tokenizer: Tokenizer,
    prompt: list[str] | tuple[str, ...],
    max_new_tokens: int = 64,
    strategy: str = "greedy",
    stop: Sequence[str] = (),
    **options: Any,
) -> list[str]: ...
def generate(
    model: torch.nn.Module,
    tokenizer: Tokenizer,
    prompt: str | Sequence[str],
    max_new_tokens: int = 64,
    strategy: str = "greedy",
    stop: Sequence[str] = (),
    **options: Any,
) -> str | list[str]:
    """The continuation of `prompt` (a str), or of each prompt of a list (a batch).

    A list of prompts runs as one batch and gives the same texts as generating each alone.
    With `num_return_sequences=n` (beam search) a str prompt
    gives a list of its n best continuations.
    """
    opts = text_options(tokenizer, max_new_tokens=max_new_tokens, strategy=strategy, **options)
    device = next(model.parameters()).device
    if isinstance(prompt, str) and opts.num_return_sequences > 1:  # the n best
        idx = torch.tensor([encode_prompt(tokenizer, prompt)], device=device)  # (1, T)
        out = generate_tokens(model, idx, opts)[:, idx.size(1) :]
        return [_text(tokenizer, row, opts, stop) for row in out.tolist()]
    if isinstance(prompt, str):
        return "".join(stream(model, tokenizer, prompt, max_new_tokens, strategy, stop, **options))
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


def _text(
    tokenizer: Tokenizer, row: list[int], opts: GenerationOptions, stop: Sequence[str]
) -> str:
    """Generated ids -> text, cut at the first stop id and the first stop string."""
    if opts.stop_ids:
        row = row[: next((i for i, t in enumerate(row) if t in opts.stop_ids), len(row))]
    text = TextStream.for_tokenizer(tokenizer, stop)
    return text.push(row) + text.finish()
