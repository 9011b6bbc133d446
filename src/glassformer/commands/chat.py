"""`glassformer chat`: an interactive prompt loop that keeps the conversation as context.

Each line you type is appended to the conversation (with a newline), and the model continues
it until it writes a newline (or --stop text, or its end-of-text token, or --max-new-tokens).
The whole conversation stays in one `Context`, so its KV cache is reused from turn to turn:
a new turn feeds only the new tokens. When the conversation outgrows the model's context, the
oldest tokens drop out of view (see generate/context.py) and a note says so on stderr.

Reads standard input line by line, so it works piped as well as typed:

    printf 'ROMEO:\\nJULIET:\\n' | glassformer chat --model runs/shakespeare
"""

import argparse
import sys

import torch

from glassformer.errors import UserError


def add_parser(sub) -> None:
    from glassformer.commands.generate import add_sampling_arguments

    p = sub.add_parser(
        "chat",
        help="talk to a trained model, one line at a time",
        description="An interactive loop: each input line is added to the conversation and "
        "the model answers until it writes a newline. The conversation is kept as context; "
        "when it is longer than the model's context the oldest tokens are dropped (a note "
        "on stderr says so). Ctrl-D (end of input) ends the chat.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--model", required=True, metavar="DIR", help="a checkpoint folder")
    add_sampling_arguments(p, default_strategy="sample")
    p.set_defaults(func=run, max_new_tokens=200)


def _lines(interactive: bool):
    if not interactive:
        yield from (line.rstrip("\n") for line in sys.stdin)
        return
    while True:
        try:
            yield input("> ")
        except EOFError:
            print(file=sys.stderr)
            return


def run(args: argparse.Namespace) -> int:
    from glassformer.checkpoint import load
    from glassformer.commands.generate import check_args, generation_kwargs
    from glassformer.core.device import pick_device
    from glassformer.generate.api import decode_copy, make_generator
    from glassformer.generate.context import Context
    from glassformer.generate.options import GenerationOptions
    from glassformer.generate.sampling import decode
    from glassformer.generate.streaming import TextStream

    check_args(args)
    if args.strategy not in ("greedy", "sample"):
        raise UserError(f"chat supports --strategy greedy or sample, not {args.strategy}")
    kw = generation_kwargs(args)
    stop = ["\n", *kw.pop("stop")]
    model, tokenizer = load(args.model, pick_device(args.device), family="gpt")
    device = next(model.parameters()).device
    eot = tokenizer.eot_id
    opts = GenerationOptions(**kw, stop_ids=() if eot is None else (eot,))
    generator = make_generator(opts.seed, device)
    decoder = decode_copy(model, opts.decode_dtype)
    block = model.config.block_size
    interactive = sys.stdin.isatty()
    if interactive:
        print(f"chatting with {args.model}; Ctrl-D ends", file=sys.stderr)
    ctx, ended_line, warned = None, True, False
    for line in _lines(interactive):
        if not line.strip():
            continue
        try:
            ids = tokenizer.encode(("" if ended_line else "\n") + line + "\n")
        except UserError as e:
            print(f"glassformer: error: {e}", file=sys.stderr)
            continue
        new = torch.tensor([ids], device=device)  # (1, T)
        if ctx is None:
            ctx = Context(model, new, use_cache=opts.use_cache, decode_model=decoder)
        else:
            ctx.append(new)
        text = TextStream.for_tokenizer(tokenizer, stop)
        for token in decode(ctx, opts, generator):
            if int(token) in opts.stop_ids:
                break
            print(text.push([int(token)]), end="", flush=True)
            if text.stopped:
                break
        print(text.finish(), flush=True)
        ended_line = text.stopped
        if ctx.ids.size(1) > block and not warned:
            print(
                f"note: the conversation ({ctx.ids.size(1)} tokens) is longer than the "
                f"model's context of {block}; the oldest tokens are dropped from view",
                file=sys.stderr,
            )
            warned = True
    return 0
