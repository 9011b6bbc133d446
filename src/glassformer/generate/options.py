"""`GenerationOptions`: every decoding choice in one checked dataclass.

The strategies are the registry's (strategies.py): greedy, sample, beam, contrastive, and
whatever is added there. Each strategy may add rules for its own options (`Strategy.check`).

A value out of range raises `OptionError` (a `UserError`) with one sentence naming the option
and its allowed range, so a library caller reads `top_p must be in (0, 1], got 2.0` and the
CLI, which spells the option as its flag, `--top-p must be in (0, 1], got 2.0`. This class is
the only place where generation options are checked.
"""

import math
from dataclasses import dataclass

from glassformer.generate.option_error import OptionError
from glassformer.generate.strategies import STRATEGIES

# the precision of the multi-token feeds (the prompt): fp32 is exact (the same logits as the
# plain forward); bf16 autocast is faster where the CPU multiplies bf16 fast and rounds the
# prompt's keys and values; auto is bf16 there and fp32 elsewhere (core/device.py)
PREFILL_PRECISIONS = ("fp32", "bf16", "auto")
# the weights the one-token decode steps may run on (session.py: decode_copy)
DECODE_DTYPES = ("float32", "bfloat16", "int8", "int4")


@dataclass
class GenerationOptions:
    max_new_tokens: int = 64
    strategy: str = "greedy"
    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    min_p: float | None = None
    repetition_penalty: float = 1.0
    num_beams: int = 4
    length_penalty: float = 1.0
    early_stopping: bool | str = False
    num_return_sequences: int = 1
    penalty_alpha: float = 0.6
    seed: int | None = None
    stop_ids: tuple[int, ...] = ()
    use_cache: bool = True
    decode_dtype: str | None = None  # one of DECODE_DTYPES; None is the model's own weights
    prefill_precision: str = "fp32"  # one of PREFILL_PRECISIONS (generate/context.py)

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """Raise OptionError for the first option outside its range."""
        strategy = STRATEGIES.get(self.strategy)
        if strategy is None:
            raise OptionError(
                "strategy", f"must be one of {', '.join(STRATEGIES)}; got {self.strategy!r}"
            )
        if isinstance(self.max_new_tokens, bool) or not (
            isinstance(self.max_new_tokens, int) and self.max_new_tokens > 0
        ):
            raise OptionError(
                "max_new_tokens", f"must be a positive integer, got {self.max_new_tokens!r}"
            )
        if not (self.temperature >= 0 and math.isfinite(self.temperature)):  # rejects NaN
            raise OptionError(
                "temperature", f"must be a number >= 0 (0 means greedy), got {self.temperature}"
            )
        if self.top_k is not None and self.top_k < 0:
            raise OptionError("top_k", f"must be >= 0 (0 means no limit), got {self.top_k}")
        if self.top_p is not None and not 0.0 < self.top_p <= 1.0:
            raise OptionError("top_p", f"must be in (0, 1], got {self.top_p}")
        if self.min_p is not None and not 0.0 <= self.min_p <= 1.0:
            raise OptionError("min_p", f"must be in [0, 1], got {self.min_p}")
        if not (self.repetition_penalty > 0 and math.isfinite(self.repetition_penalty)):
            raise OptionError(
                "repetition_penalty",
                f"must be a number > 0 (1 means none), got {self.repetition_penalty}",
            )
        if self.num_beams < 1:
            raise OptionError("num_beams", f"(the beam width) must be >= 1, got {self.num_beams}")
        if not math.isfinite(self.length_penalty):
            raise OptionError(
                "length_penalty", f"must be a finite number, got {self.length_penalty}"
            )
        if self.early_stopping not in (True, False, "never"):
            raise OptionError(
                "early_stopping", f"must be True, False or 'never', got {self.early_stopping!r}"
            )
        if self.num_return_sequences < 1:
            raise OptionError(
                "num_return_sequences", f"must be >= 1, got {self.num_return_sequences}"
            )
        if self.num_return_sequences != 1 and not strategy.n_best:
            several = ", ".join(name for name, s in STRATEGIES.items() if s.n_best)
            raise OptionError(
                "num_return_sequences",
                f"> 1 needs a strategy that keeps several sequences ({several}), "
                f"not {self.strategy!r}",
            )
        if not 0.0 <= self.penalty_alpha <= 1.0:
            raise OptionError("penalty_alpha", f"must be in [0, 1], got {self.penalty_alpha}")
        if self.seed is not None and (
            isinstance(self.seed, bool)
            or not isinstance(self.seed, int)
            or not 0 <= self.seed < 2**64
        ):
            raise OptionError("seed", f"must be an integer in [0, 2**64), got {self.seed!r}")
        if self.decode_dtype not in (None, *DECODE_DTYPES):
            raise OptionError(
                "decode_dtype",
                f"must be one of {', '.join(DECODE_DTYPES)}, got {self.decode_dtype!r}",
            )
        if self.decode_dtype not in (None, "float32") and not strategy.per_token:
            per_token = ", ".join(name for name, s in STRATEGIES.items() if s.per_token)
            raise OptionError(
                "decode_dtype",
                f"{self.decode_dtype} is available for the per-token strategies ({per_token}) "
                f"only, not {self.strategy!r}",
            )
        if self.prefill_precision not in PREFILL_PRECISIONS:
            raise OptionError(
                "prefill_precision",
                f"must be one of {', '.join(PREFILL_PRECISIONS)}, got {self.prefill_precision!r}",
            )
        strategy.check(self)
