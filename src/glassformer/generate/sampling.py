"""Greedy decoding and sampling: append one token at a time, each chosen from the logits.

    ctx = Context(model, prompt)                  # see context.py: history + KV cache
    for each new token:
        logits = ctx.logits()                     # (B, V): prefill once, then one token a step
        greedy: next = argmax(logits)
        sample: next ~ softmax(min_p(top_p(top_k(repetition(logits) / temperature))))
        ctx.append(next)

A row that produced a stop id is finished: its later positions repeat that stop id, and the
loop ends when every row is finished.
"""

from collections.abc import Iterator

import torch

from glassformer.generate.context import Context
from glassformer.generate.options import GenerationOptions
from glassformer.generate.processors import (
    apply_temperature,
    min_p_filter,
    repetition_penalty,
    top_k_filter,
    top_p_filter,
)


def process(logits: torch.Tensor, ids: torch.Tensor, opts: GenerationOptions) -> torch.Tensor:
    """Apply the sampling processors of `opts` to logits (B, V); `ids` (B, N) is the history."""
    logits = repetition_penalty(logits.float(), ids, opts.repetition_penalty)
    logits = apply_temperature(logits, opts.temperature)
    if opts.top_k:
        logits = top_k_filter(logits, opts.top_k)
    if opts.top_p is not None:
        logits = top_p_filter(logits, opts.top_p)
    if opts.min_p is not None:
        logits = min_p_filter(logits, opts.min_p)
    return logits


def choose(
    logits: torch.Tensor,
    ids: torch.Tensor,
    opts: GenerationOptions,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The next ids (B, 1) for logits (B, V). Temperature 0 means greedy."""
    if opts.strategy == "greedy" or opts.temperature == 0:
        if opts.repetition_penalty != 1.0:
            logits = repetition_penalty(logits, ids, opts.repetition_penalty)
        return logits.argmax(dim=-1, keepdim=True)
    probs = torch.softmax(process(logits, ids, opts), dim=-1)
    return torch.multinomial(probs, 1, generator=generator)


@torch.no_grad()
def decode(
    ctx: Context, opts: GenerationOptions, generator: torch.Generator | None = None
) -> Iterator[torch.Tensor]:
    """Yield the new ids (B, 1) one step at a time (greedy or sampling), appending to `ctx`."""
    done = torch.zeros(ctx.batch, 1, dtype=torch.bool, device=ctx.ids.device)
    stops = torch.tensor(opts.stop_ids, dtype=torch.long, device=ctx.ids.device)
    for _ in range(opts.max_new_tokens):
        nxt = choose(ctx.logits(), ctx.ids, opts, generator)  # (B, 1)
        if len(stops):
            last = ctx.ids[:, -1:]
            nxt = torch.where(done, last, nxt)  # finished rows repeat their stop id
            done |= torch.isin(nxt, stops)
        ctx.append(nxt)
        yield nxt
        if len(stops) and bool(done.all()):
            return


@torch.no_grad()
def generate_ids(
    model: torch.nn.Module,
    idx: torch.Tensor,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    eot_id: int | None = None,
    generator: torch.Generator | None = None,
) -> Iterator[torch.Tensor]:
    """Yield new ids (B, 1) one step at a time; stops early when every row produced `eot_id`.

    The trainer's sample call; `glassformer.generate` and `GPT.generate` offer every option.
    """
    opts = GenerationOptions(
        max_new_tokens=max_new_tokens,
        strategy="sample",
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        stop_ids=() if eot_id is None else (eot_id,),
    )
    yield from decode(Context(model, idx), opts, generator)
