"""`GenerationOptions`: every decoding choice in one checked dataclass.

Strategies:

    greedy       always the most likely token
    sample       draw from softmax(processed logits); temperature 0 falls back to greedy
    beam         keep the num_beams best partial sequences by summed log-probability
    contrastive  among the top_k candidates, prefer likely tokens whose hidden state differs
                 from every earlier one (penalty_alpha weighs that difference)

A value out of range raises `UserError` with one sentence naming it and its allowed range,
so the CLI exits 2 and a library caller sees the same message.
"""

import math
from dataclasses import dataclass

from glassformer.errors import UserError

STRATEGIES = ("greedy", "sample", "beam", "contrastive")


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
    decode_dtype: str | None = None  # "bfloat16" / "int8": decode steps on a copy (api.py)

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """Raise UserError for the first option outside its range."""
        if self.strategy not in STRATEGIES:
            raise UserError(
                f"strategy must be one of {', '.join(STRATEGIES)}; got {self.strategy!r}"
            )
        if isinstance(self.max_new_tokens, bool) or not (
            isinstance(self.max_new_tokens, int) and self.max_new_tokens > 0
        ):
            raise UserError(
                f"max_new_tokens must be a positive integer, got {self.max_new_tokens!r}"
            )
        if not (self.temperature >= 0 and math.isfinite(self.temperature)):  # rejects NaN
            raise UserError(
                f"temperature must be a number >= 0 (0 means greedy), got {self.temperature}"
            )
        if self.top_k is not None and self.top_k < 0:
            raise UserError(f"top_k must be >= 0 (0 means no limit), got {self.top_k}")
        if self.top_p is not None and not 0.0 < self.top_p <= 1.0:
            raise UserError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.min_p is not None and not 0.0 <= self.min_p <= 1.0:
            raise UserError(f"min_p must be in [0, 1], got {self.min_p}")
        if not (self.repetition_penalty > 0 and math.isfinite(self.repetition_penalty)):
            raise UserError(
                f"repetition_penalty must be a number > 0 (1 means none), "
                f"got {self.repetition_penalty}"
            )
        if self.num_beams < 1:
            raise UserError(f"num_beams (the beam width) must be >= 1, got {self.num_beams}")
        if not math.isfinite(self.length_penalty):
            raise UserError(f"length_penalty must be a finite number, got {self.length_penalty}")
        if self.early_stopping not in (True, False, "never"):
            raise UserError(
                f"early_stopping must be True, False or 'never', got {self.early_stopping!r}"
            )
        if self.num_return_sequences < 1:
            raise UserError(f"num_return_sequences must be >= 1, got {self.num_return_sequences}")
        if self.strategy == "beam" and self.num_return_sequences > self.num_beams:
            raise UserError(
                f"num_return_sequences ({self.num_return_sequences}) cannot exceed num_beams "
                f"({self.num_beams}): beam search keeps only num_beams finished sequences"
            )
        if self.strategy != "beam" and self.num_return_sequences != 1:
            raise UserError("num_return_sequences > 1 needs strategy='beam' (the n best beams)")
        if not 0.0 <= self.penalty_alpha <= 1.0:
            raise UserError(f"penalty_alpha must be in [0, 1], got {self.penalty_alpha}")
        if self.decode_dtype not in (None, "float32", "bfloat16", "int8"):
            raise UserError(
                f"decode_dtype must be float32, bfloat16 or int8, got {self.decode_dtype!r}"
            )
        if self.decode_dtype not in (None, "float32") and self.strategy in ("beam", "contrastive"):
            raise UserError(
                f"decode_dtype={self.decode_dtype!r} is available for greedy and sampling only"
            )
        if self.strategy == "contrastive":
            if self.top_k is None:
                self.top_k = 4  # the candidate count of the contrastive search paper
            if self.top_k < 1:
                raise UserError("contrastive search needs top_k >= 1 candidates, got 0")
