"""`--help` reads well: every flag has help, a default is shown once and only when it says
something, each setting of `train` is listed under one spelling (the other is accepted),
`inspect` picks its device as `generate` does."""

import argparse
import re

import pytest

from glassformer.cli import build_parser, main


def parsers(parser=None, name="glassformer"):
    parser = parser or build_parser()
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for verb, child in action.choices.items():
                yield from parsers(child, f"{name} {verb}")


ALL = list(parsers())


@pytest.mark.parametrize("name, parser", ALL, ids=[n for n, _ in ALL])
def test_every_flag_has_help_and_one_default(name, parser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) or action.help == argparse.SUPPRESS:
            continue
        assert action.help, f"{name} {action.option_strings or action.dest} has no help"
    text = " ".join(parser.format_help().split())
    assert "(default: None)" not in text and "built-in default" not in text
    for action in parser._actions:  # a flag that is off unless given says nothing more
        if isinstance(action, argparse._StoreTrueAction) and action.help != argparse.SUPPRESS:
            assert "(default: False)" not in action.help
    for entry in re.split(r" (?=--?\w)", text):  # one flag's help at a time
        assert len(re.findall(r"\(default\b|\(the default\)", entry)) <= 1, entry


def test_train_lists_each_setting_once_and_accepts_both_spellings(capsys):
    text = dict(ALL)["glassformer train"].format_help()
    for short, dotted in [
        ("--max-steps", "--train.max_steps"),
        ("--seed", "--train.seed"),
        ("--data", "--data.path"),
        ("--tokenizer", "--data.tokenizer"),
        ("--vocab-size", "--data.vocab_size"),
        ("--time-budget", "--train.time_budget"),
        ("--log", "--train.log"),
        ("--data-field", "--data.field"),
    ]:
        assert re.search(rf"^  {short}\b", text, re.M) and dotted not in text, short
    assert "(default: 4; range [1, 1024])" in " ".join(text.split())  # --model.n_layer
    for flag in ("--max-steps", "--train.max_steps"):
        capsys.readouterr()
        assert main(["train", "--print-config", "--preset", "tiny", flag, "5"]) == 0
        assert '"max_steps": 5' in capsys.readouterr().out


def test_inspect_device_defaults_like_generate():
    devices = {}
    for verb in ("inspect", "generate"):
        parser = dict(ALL)[f"glassformer {verb}"]
        devices[verb] = next(a.default for a in parser._actions if "--device" in a.option_strings)
    assert devices == {"inspect": "auto", "generate": "auto"}


def test_generate_says_the_cli_samples_while_the_api_is_greedy():
    text = " ".join(dict(ALL)["glassformer generate"].format_help().split())
    assert "samples by default" in text and "greedy by default" in text
