"""What a decoding strategy gives the engine: new tokens from a `Context` (context.py).

Two kinds:

    TokenRule   picks each next token from the logits alone: `choose(logits, ids, opts,
                generator) -> (B, 1)`. The shared loop below does the rest (the KV cache,
                stop ids, a left-padded batch), so such a rule also runs batched, continues a
                kept conversation (Session, chat) and may decode on a bf16/int8 copy.
                greedy.py, sampling.py.
    Strategy    a search that owns its loop over the Context (it may try several rows and
                reorder them): `tokens(ctx, opts, generator)`. beam.py, contrastive.py.

Every strategy also has a one-line `help` (the CLI's --strategy help) and may add rules for
its own options in `check(opts)`, which `GenerationOptions` calls. `opts` is always a
GenerationOptions (options.py, which imports the registry: so this file does not import it).

Adding one = a new file with the class and one line in strategies.py. A toy, "always the
second most likely token":

    class SecondBest(TokenRule):
        help = "always the second most likely token"

        def choose(self, logits, ids, opts, generator=None):
            return logits.topk(2, dim=-1).indices[:, 1:]  # (B, 1)
"""

from collections.abc import Iterator

import torch

from glassformer.generate.context import Context


class Strategy:
    """A decoding strategy that runs its own loop over a Context (one prompt, batch 1)."""

    help = ""
    per_token = False  # True: a TokenRule (batched, resumable, decode copies)
    n_best = False  # True: can return several sequences (num_return_sequences)

    def check(self, opts) -> None:
        """Raise `OptionError` (option_error.py) for options this strategy cannot use."""

    def tokens(
        self, ctx: Context, opts, generator: torch.Generator | None = None
    ) -> Iterator[torch.Tensor]:
        """Yield the new ids (B, 1) one step at a time (a search may leave `ctx` in any state)."""
        raise NotImplementedError

    def continuations(
        self, ctx: Context, opts, generator: torch.Generator | None = None
    ) -> list[torch.Tensor]:
        """The new ids (N,) of each returned sequence, best first (one unless `n_best`)."""
        return [torch.cat(list(self.tokens(ctx, opts, generator)), dim=1)[0]]


class TokenRule(Strategy):
    """A strategy that picks each token from the logits: the loop is shared."""

    per_token = True

    def choose(
        self,
        logits: torch.Tensor,
        ids: torch.Tensor,
        opts,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """The next ids (B, 1) for logits (B, V); `ids` (B, N) is the history."""
        raise NotImplementedError

    @torch.no_grad()
    def tokens(
        self, ctx: Context, opts, generator: torch.Generator | None = None
    ) -> Iterator[torch.Tensor]:
        """Yield the new ids (B, 1) one step at a time, appending each to `ctx`.

        A row that produced a stop id is finished: its later positions repeat that stop id,
        and the loop ends when every row is finished.
        """
        done = torch.zeros(ctx.batch, 1, dtype=torch.bool, device=ctx.ids.device)
        stops = torch.tensor(opts.stop_ids, dtype=torch.long, device=ctx.ids.device)
        for _ in range(opts.max_new_tokens):
            nxt = self.choose(ctx.logits(), ctx.ids, opts, generator)  # (B, 1)
            if len(stops):
                last = ctx.ids[:, -1:]
                nxt = torch.where(done, last, nxt)  # finished rows repeat their stop id
                done |= torch.isin(nxt, stops)
            ctx.append(nxt)
            yield nxt
            if len(stops) and bool(done.all()):
                return
