"""`GenerationOptions`: every decoding choice, declared once as a typed, checked field.

Each field carries its type, its range (or choices), its default and its help text
(core/fields.py `option`). Everything else is made from these declarations: the range checks
here, the flags of `glassformer generate` and `chat` (commands/generate.py), the request
parameters of `glassformer serve` (serve/params.py), and each one's `--help`. A new field shows
up in all of them.

A value out of range raises `OptionError` (a `UserError`) with one sentence naming the option
and its allowed range, so a library caller reads `top_p must be in (0, 1], got 2.0`, the CLI
`--top-p must be in (0, 1], got 2.0` and the server `top_p must be ...` (a 400 naming its own
parameter: max_tokens for max_new_tokens). Rules that tie an option to a strategy are the
strategy's own (`Strategy.check`, e.g. beam: num_return_sequences <= num_beams), called here.

The fields' defaults are the Python API's; each command has its own set over them, `DEFAULTS`:

    >>> GenerationOptions().strategy, DEFAULTS["generate"]["strategy"]
    ('greedy', 'sample')
"""

from dataclasses import dataclass, fields

from glassformer.core.fields import field_problem, option
from glassformer.generate.option_error import OptionError
from glassformer.generate.strategies import STRATEGIES

# the precision of the multi-token feeds (the prompt): fp32 is exact (the same logits as the
# plain forward); bf16 autocast is faster where the CPU multiplies bf16 fast and rounds the
# prompt's keys and values; auto is bf16 there and fp32 elsewhere (core/device.py)
PREFILL_PRECISIONS = ("fp32", "bf16", "auto")
# the weights the one-token decode steps may run on (session.py: decode_copy)
DECODE_DTYPES = ("float32", "bfloat16", "int8", "int4")
EARLY_STOPPING = (False, True, "never")


@dataclass
class GenerationOptions:
    max_new_tokens: int = option(64, "most tokens to generate", range="[1, inf)", metavar="N")
    strategy: str = option("greedy", "how each next token is chosen", STRATEGIES)
    temperature: float = option(
        1.0,
        "sampling temperature: below 1 sharper, above 1 flatter; 0 means greedy (always the "
        "most likely token)",
        range="[0, inf)",
        metavar="T",
    )
    top_k: int | None = option(
        None,
        "only the K most likely tokens; 0 means no limit",
        range="[0, inf)",
        kind=int,
        none="no limit",
        metavar="K",
    )
    top_p: float | None = option(
        None,
        "nucleus sampling: only the most likely tokens with total mass P",
        range="(0, 1]",
        kind=float,
        none="off",
        metavar="P",
    )
    min_p: float | None = option(
        None,
        "only tokens at least M times as likely as the most likely one",
        range="[0, 1]",
        kind=float,
        none="off",
        metavar="M",
    )
    repetition_penalty: float = option(
        1.0,
        "make tokens already in the text less likely (1 means none; 1.2 is common)",
        range="(0, inf)",
        metavar="R",
    )
    num_beams: int = option(4, "beam search: the beam width", range="[1, inf)", metavar="W")
    length_penalty: float = option(
        1.0,
        "beam search: score = log-prob sum / length ** this (> 0 favours longer texts)",
        metavar="L",
    )
    early_stopping: bool | str = option(
        False,
        "beam search: when to stop: true, once num_beams texts are finished; false, once no "
        "running beam can beat the worst finished one; never, the same at the longest length",
        EARLY_STOPPING,
        kind=object,
    )
    num_return_sequences: int = option(
        1, "how many texts to return, best first (beam search)", range="[1, inf)", metavar="N"
    )
    penalty_alpha: float = option(
        0.6,
        "contrastive search: weight of the degeneration penalty (0 is greedy)",
        range="[0, 1]",
        metavar="A",
    )
    seed: int | None = option(
        None,
        "random seed (same seed, same text)",
        range="[0, 2**64)",
        kind=int,
        none="unseeded",
        metavar="S",
    )
    stop_ids: tuple[int, ...] = option(
        (), "token ids that end the text (for text: the tokenizer's end-of-text token)"
    )
    use_cache: bool = option(
        True, "keep each layer's keys and values (the KV cache); off recomputes every step"
    )
    decode_dtype: str | None = option(
        None,
        "run the one-token decode steps on a copy of the weights in this dtype: bfloat16, or "
        "int8 / int4 weight-only quantization (int4 in groups of 32, as GGUF's Q4 blocks; CPU "
        "only). Fewer bytes are read per token; the logits are rounded, so the text may differ",
        DECODE_DTYPES,
        kind=str,
        none="the model's own weights",
    )
    prefill_precision: str = option(
        "fp32",
        "precision of the prompt's forward pass: fp32 gives exactly the logits of the plain "
        "forward; bf16 (autocast) is several times faster on CPUs with AVX512-BF16 or AMX and "
        "rounds the prompt's keys and values; auto is bf16 where it is fast. The decode steps "
        "stay in the decode dtype",
        PREFILL_PRECISIONS,
    )

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """Raise OptionError for the first option outside its type, range or choices, then
        for the rules that tie an option to the strategy."""
        for f in fields(self):
            problem = field_problem(f, getattr(self, f.name))
            if problem:
                raise OptionError(f.name, problem)
        strategy = STRATEGIES[self.strategy]
        if self.num_return_sequences != 1 and not strategy.n_best:
            several = ", ".join(name for name, s in STRATEGIES.items() if s.n_best)
            raise OptionError(
                "num_return_sequences",
                f"> 1 needs a strategy that keeps several sequences ({several}), "
                f"not {self.strategy!r}",
            )
        if self.decode_dtype not in (None, "float32") and not strategy.per_token:
            per_token = ", ".join(name for name, s in STRATEGIES.items() if s.per_token)
            raise OptionError(
                "decode_dtype",
                f"{self.decode_dtype} is available for the per-token strategies ({per_token}) "
                f"only, not {self.strategy!r}",
            )
        strategy.check(self)


# Each command's default set, over the fields' own, which are the Python API's: greedy, 64
# tokens, so a call in a program gives the same text each time. `generate` and `chat` sample,
# to show what the model can say; the server keeps OpenAI's defaults (and OpenAI's max_tokens:
# 16 for a completion, the server's cap for a chat reply, serve/openai_api.py).
DEFAULTS: dict[str, dict] = {
    "generate": {"max_new_tokens": 200, "strategy": "sample", "temperature": 0.8},
    "chat": {"max_new_tokens": 200, "strategy": "sample", "temperature": 0.8},
    "serve": {"strategy": "sample", "temperature": 1.0},
}
