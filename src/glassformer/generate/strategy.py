"""What a decoding strategy gives the engine: one step at a time, what happens next.

The engine (engine.py) runs one forward for all its rows, hands each sequence the logits of
its own rows, and asks its strategy for a `Step`:

    feed    (rows, 1) ids each row feeds next (appended to its history)
    keep    which of the current rows go on, in order (None: all, as they are); a search
            keeps its best rows, or turns one row into several
    emit    the tokens of the reply decided by this step (the engine checks each against the
            stop ids and the length limit)
    done    the strategy has finished (a search knows its best sequence only at the end)

Two kinds:

    TokenRule   picks each next token from the logits alone: `choose(logits, ids, opts,
                generator) -> (B, 1)`. One row; its step feeds and emits what it chose.
                Such a rule continues a kept conversation (Session, chat) and may decode on a
                bf16/int8 copy. greedy.py, sampling.py.
    Strategy    a search over several rows, with state of its own between steps (`seq.state`).
                beam.py, contrastive.py.

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

from dataclasses import dataclass, field

import torch


@dataclass
class Step:
    feed: torch.Tensor | None = None  # (rows, 1) ids, one per kept row
    keep: list[int] | None = None  # the rows that go on (indices of the current ones)
    emit: list[int] = field(default_factory=list)  # tokens of the reply, decided now
    done: bool = False
    results: list[list[int]] | None = None  # a search's n best replies, best first


class Strategy:
    """A decoding strategy: one `step` of a sequence (engine.Sequence) at a time."""

    help = ""
    per_token = False  # True: a TokenRule (one row, resumable, decode copies)
    n_best = False  # True: can return several sequences (num_return_sequences)
    needs_hidden = False  # True: its rows' hidden states after the final norm (row.hidden)

    def check(self, opts) -> None:
        """Raise `OptionError` (option_error.py) for options this strategy cannot use."""

    def width(self, opts) -> int:
        """The most rows a sequence of this strategy occupies."""
        return 1

    def step(self, seq, logits: torch.Tensor) -> Step:
        """The next step of `seq` given the logits (rows, V) after each of its rows."""
        raise NotImplementedError


class TokenRule(Strategy):
    """A strategy that picks each token from the logits: one row, one token a step."""

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

    def step(self, seq, logits: torch.Tensor) -> Step:
        nxt = self.choose(logits, seq.ids[None], seq.opts, seq.generator)  # (1, 1)
        return Step(feed=nxt, emit=[int(nxt)])
