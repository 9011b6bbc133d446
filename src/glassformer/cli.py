"""`glassformer <verb>`: the command line.

Every verb lives in `glassformer/commands/` and registers its own sub-parser here. A user's
mistake (`UserError`, or an invalid option value) ends in one sentence on stderr and exit
status 2 — a usage error too, with a `--help` hint instead of argparse's usage block:

    glassformer train: error: argument --max-steps: must be a positive integer, got 0; see
    `glassformer train --help`

Ctrl-C ends with status 130.
"""

import argparse
import sys
from importlib.metadata import version

from glassformer.errors import UserError


class Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line; every sub-parser is one too."""

    def error(self, message: str):
        message = " ".join(message.split())  # argparse may wrap a long choice list
        self.exit(2, f"{self.prog}: error: {message}; see `{self.prog} --help`\n")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows a flag's default once, and only when it says something: not for a default of
    None or False (a flag not given), nor when the help text already names its default."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        d = action.default
        quiet = d is None or d is False or d is argparse.SUPPRESS or d == []
        if quiet or "default" in text:
            return text
        return super()._get_help_string(action)


def _use_formatter(parser: argparse.ArgumentParser) -> None:
    """Every verb's (and sub-verb's) --help through HelpFormatter."""
    parser.formatter_class = HelpFormatter
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _use_formatter(child)


def build_parser() -> argparse.ArgumentParser:
    from glassformer.commands import (
        chat,
        classify,
        data,
        embed,
        experiment,
        export,
        fill_mask,
        generate,
        serve,
        tokenize,
        tour,
        train,
    )
    from glassformer.commands import inspect as inspect_

    parser = Parser(
        prog="glassformer",
        description="A transformer workbench: build, train, generate from and look inside "
        "transformers.",
    )
    parser.add_argument(
        "--version", action="version", version=f"glassformer {version('glassformer')}"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    parser.verbs = sub
    train.add_parser(sub)
    generate.add_parser(sub)
    chat.add_parser(sub)
    classify.add_parser(sub)
    fill_mask.add_parser(sub)
    data.add_parser(sub)
    embed.add_parser(sub)
    tokenize.add_tokenize_parser(sub)
    tokenize.add_tokenizer_parser(sub)
    inspect_.add_parser(sub)
    tour.add_parser(sub)
    export.add_parser(sub)
    experiment.add_parser(sub)
    serve.add_parser(sub)
    _use_formatter(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)  # --help or a usage error: SystemExit
    if extra:  # named by the verb's parser, so the hint is that verb's --help
        parser.verbs.choices[args.command].error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return args.func(args) or 0
    except UserError as e:
        print(f"glassformer: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("\nglassformer: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `glassformer generate ... | head`
        return 0


if __name__ == "__main__":
    sys.exit(main())
