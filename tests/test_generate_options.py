"""Generation options are declared once (GenerationOptions' fields) and everything else is made
from them: the flags of `generate` and `chat`, the server's request parameters, the range
checks and each command's `--help` with that command's own defaults."""

import argparse
import math
import re
from dataclasses import fields
from types import SimpleNamespace

import pytest

from glassformer.cli import HelpFormatter, build_parser, main
from glassformer.core.fields import _interval
from glassformer.errors import UserError
from glassformer.generate.options import DEFAULTS, GenerationOptions
from glassformer.serve.errors import APIError
from glassformer.serve.params import EXTENSIONS, NOT_PARAMS, OPENAI, Params, sampling_options

FIELDS = {f.name: f for f in fields(GenerationOptions)}
COMMANDS = ("generate", "chat")
# a value other than the default for each field, valid together (a new field needs one here)
VALID = {
    "max_new_tokens": 7,
    "strategy": "beam",
    "temperature": 0.5,
    "top_k": 5,
    "top_p": 0.9,
    "min_p": 0.1,
    "repetition_penalty": 1.3,
    "num_beams": 3,
    "length_penalty": 0.5,
    "early_stopping": "never",
    "num_return_sequences": 2,
    "penalty_alpha": 0.3,
    "seed": 7,
    "stop_ids": (3,),
    "use_cache": False,
    "decode_dtype": "float32",  # the per-token strategies' only: beam decodes in float32
    "prefill_precision": "bf16",
}


def test_every_field_has_help_a_valid_value_and_a_type():
    assert set(VALID) == set(FIELDS)
    for name, f in FIELDS.items():
        assert f.metadata["help"] and f.metadata["kind"], name
        if f.default is None:
            assert f.metadata["none"], name  # what None means, for --help
    GenerationOptions(**VALID)


def _parser(command: str) -> argparse.ArgumentParser:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[command]


def _flags(command: str) -> dict[str, argparse.Action]:
    return {a.dest: a for a in _parser(command)._actions}


@pytest.mark.parametrize("command", COMMANDS)
def test_every_field_is_a_flag_but_the_stated_exclusions(command):
    from glassformer.commands.generate import NOT_FLAGS

    assert set(NOT_FLAGS) == {"num_return_sequences", "stop_ids"}
    flags = _flags(command)
    assert set(FIELDS) - set(NOT_FLAGS) <= set(flags)
    assert not set(NOT_FLAGS) & set(flags)
    for name in set(FIELDS) - set(NOT_FLAGS) - {"use_cache"}:
        assert flags[name].option_strings == ["--" + name.replace("_", "-")]
    assert flags["use_cache"].option_strings == ["--no-cache"]


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_has_its_default_set_and_help_says_it(command):
    from glassformer.commands.generate import NOT_FLAGS, generation_options

    args = build_parser().parse_args([command, "--model", "M"])
    expected = {
        name: DEFAULTS[command].get(name, f.default)
        for name, f in FIELDS.items()
        if name not in NOT_FLAGS
    }
    assert generation_options(args) == expected
    assert expected["strategy"] == "sample" and expected["temperature"] == 0.8
    assert expected["max_new_tokens"] == 200
    flags, formatter = _flags(command), HelpFormatter(command)
    for name, value in expected.items():
        shown = FIELDS[name].metadata["none"] if value is None else str(value).lower()
        if name != "use_cache":
            assert f"(default: {shown}" in formatter._expand_help(flags[name]), name
    assert "--max-new-tokens N most tokens to generate (default: 200;" in " ".join(
        _parser(command).format_help().split()
    )


def test_the_python_api_is_greedy_and_the_server_samples_as_openai():
    assert (GenerationOptions().strategy, GenerationOptions().max_new_tokens) == ("greedy", 64)
    opts = sampling_options(Params({}), SimpleNamespace(eot_id=None), 16)
    assert (opts.strategy, opts.temperature, opts.max_new_tokens) == ("sample", 1.0, 16)


@pytest.mark.parametrize("command", COMMANDS)
def test_flags_set_the_fields(command):
    from glassformer.commands.generate import NOT_FLAGS, generation_options

    argv = [command, "--model", "M", "--no-cache"]
    for name in set(FIELDS) - set(NOT_FLAGS) - {"use_cache"}:
        argv += ["--" + name.replace("_", "-"), str(VALID[name])]
    kw = generation_options(build_parser().parse_args(argv))
    assert kw == {name: VALID[name] for name in FIELDS if name not in NOT_FLAGS}
    args = build_parser().parse_args([command, "--model", "M", "--early-stopping", "true"])
    assert args.early_stopping is True


def test_the_server_reads_openais_parameters_and_every_other_field_by_its_name():
    assert set(OPENAI) | set(EXTENSIONS) | set(NOT_PARAMS) == set(FIELDS)
    assert not (set(OPENAI) & set(EXTENSIONS) or set(NOT_PARAMS) & set(EXTENSIONS))
    names = (*OPENAI, *EXTENSIONS)
    opts = sampling_options(Params({n: VALID[n] for n in names}), SimpleNamespace(eot_id=2), 9)
    assert {n: getattr(opts, n) for n in names} == {n: VALID[n] for n in names}
    assert (opts.max_new_tokens, opts.stop_ids) == (9, (2,))


def _outside(name: str):
    """A value just outside the field's range or choices: top_p (0, 1] -> 2, min_p -> -1."""
    f = FIELDS[name]
    if f.metadata["choices"]:
        return "nope"
    low, low_in, high, high_in = _interval(f.metadata["range"])
    value = (low - 1 if low_in else low) if math.isfinite(low) else high + 1
    return f.metadata["kind"](value)


RANGED = [n for n, f in FIELDS.items() if f.metadata["range"] or f.metadata["choices"]]


@pytest.mark.parametrize("name", RANGED)
def test_a_value_out_of_range_is_one_sentence_naming_the_keyword_flag_or_parameter(name, capsys):
    from glassformer.commands.generate import NOT_FLAGS

    bad = _outside(name)
    with pytest.raises(UserError, match=rf"^{name} must be .*got {re.escape(repr(bad))}$"):
        GenerationOptions(**{name: bad})
    if name not in NOT_FLAGS:
        spelled = str(bad).lower() if isinstance(bad, bool) else str(bad)
        assert main(["generate", "--model", "M", f"--{name.replace('_', '-')}", spelled]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"glassformer: error: --{name.replace('_', '-')} must be ")
        assert err.count("\n") == 1 and "Traceback" not in err
    if name in (*OPENAI, *EXTENSIONS, "max_new_tokens"):
        param = "max_tokens" if name == "max_new_tokens" else name
        body = {} if name == "max_new_tokens" else {name: bad}
        max_tokens = bad if name == "max_new_tokens" else 16
        with pytest.raises(APIError) as e:
            sampling_options(Params(body), SimpleNamespace(eot_id=None), max_tokens)
        assert e.value.status == 400 and e.value.param == param
        assert str(e.value.message).startswith(f"{param} must be ")


def test_the_messages_of_today():
    with pytest.raises(UserError, match=r"^top_p must be in \(0, 1\], got 2.0$"):
        GenerationOptions(top_p=2.0)
    with pytest.raises(UserError, match="strategy must be one of greedy, sample, beam, contrast"):
        GenerationOptions(strategy="nucleus")
    with pytest.raises(UserError, match=r"num_return_sequences > 1 needs .*\(beam\)"):
        GenerationOptions(num_return_sequences=2)
    with pytest.raises(UserError, match=r"early_stopping must be one of False, True, never"):
        GenerationOptions(strategy="beam", early_stopping=1)  # `is True` would read it False
    with pytest.raises(UserError, match=r"seed must be in \[0, 2\*\*64\), got -1"):
        GenerationOptions(seed=-1)
    GenerationOptions(40, strategy="beam", seed=2**64 - 1)  # positional use, the largest seed
