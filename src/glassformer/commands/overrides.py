"""Dotted `--section.field VALUE` flags for every field of the run configuration.

`add_config_flags(parser, RunConfig)` adds one flag per dataclass field, with the field's help
text, so `--help` documents them all; `apply_overrides(cfg, args)` writes the given ones.
"""

import argparse
from dataclasses import fields

from glassformer.errors import UserError


def _parse_bool(text: str) -> bool:
    low = text.lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def add_config_flags(parser: argparse.ArgumentParser, config, hidden: tuple[str, ...] = ()) -> None:
    """One `--SECTION.FIELD` flag per field of each section of `config` (a RunConfig).

    The fields in `hidden` ("train.max_steps") have a shorter flag of their own: theirs is
    accepted but left out of `--help`, so each setting is listed once.
    """
    for section in config.SECTIONS:
        group = parser.add_argument_group(
            f"{section} settings (a preset or --config may change the defaults shown)"
        )
        for f in fields(getattr(config, section)):
            text = (
                f.metadata.get("help", "")
                + f" (default: {f.default!r}"
                + (f"; range {f.metadata['range']})" if f.metadata.get("range") else ")")
            )
            kind = {bool: _parse_bool, int: int, float: float}.get(type(f.default), str)
            choices = f.metadata.get("choices")
            names = {bool: "BOOL", int: "INT", float: "FLOAT"}
            group.add_argument(
                f"--{section}.{f.name}",
                dest=f"cfg__{section}__{f.name}",
                type=kind,
                default=None,
                metavar="{" + ",".join(choices) + "}"
                if choices
                else names.get(type(f.default), "TEXT"),
                help=argparse.SUPPRESS if f"{section}.{f.name}" in hidden else text,
            )


def apply_overrides(config, args: argparse.Namespace) -> None:
    """Set every `--SECTION.FIELD` the user gave, then re-validate the whole config."""
    for key, value in vars(args).items():
        if key.startswith("cfg__") and value is not None:
            _, section, name = key.split("__")
            setattr(getattr(config, section), name, value)
    try:
        config.validate()
    except ValueError as e:
        raise UserError(f"invalid setting: {e}") from None
