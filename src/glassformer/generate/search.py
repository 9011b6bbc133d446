"""A search run to its end over the prompt in a `Context`, by the engine: for code that wants
one strategy's result without the engine's bookkeeping (the tests, the decoding experiment).

    >>> best, *rest = beam_search(Context(model, prompt), GenerationOptions(20, "beam"))
    ...                                                                    # doctest: +SKIP
    >>> ids = torch.cat(list(contrastive_search(Context(model, prompt), opts)), dim=1)
"""

from collections.abc import Iterator

import torch

from glassformer.generate.beam import Hypothesis
from glassformer.generate.context import Context
from glassformer.generate.engine import Engine, Generation, Token


def beam_search(ctx: Context, opts) -> list[Hypothesis]:
    """The `opts.num_return_sequences` best hypotheses after the prompt in `ctx` (1, T), best
    first (opts.strategy is taken to be beam)."""
    gen = Generation(ctx.rows[0].ids, _as(opts, "beam"), rows=ctx.rows)
    for _ in Engine(ctx.model, context=ctx).stream([gen]):
        pass
    return gen.state.hypotheses(opts.num_return_sequences)


def contrastive_search(ctx: Context, opts) -> Iterator[torch.Tensor]:
    """Yield the new ids (1, 1) one step at a time after the prompt in `ctx` (1, T), the stop
    id included if the search ends there."""
    gen = Generation(ctx.rows[0].ids, _as(opts, "contrastive"), rows=ctx.rows)
    for event in Engine(ctx.model, context=ctx).stream([gen]):
        if isinstance(event, Token):
            yield torch.tensor([[event.id]])
    if gen.finish_reason == "stop_id":
        yield torch.tensor([[gen.new[-1]]])


def _as(opts, strategy: str):
    """`opts` with `strategy`, checked by it (contrastive fills in its default top_k)."""
    from dataclasses import replace

    return opts if opts.strategy == strategy else replace(opts, strategy=strategy)
