"""The model families: one name per architecture, its model class and its config class.

A checkpoint's `config.json` names the family; loading looks it up here and builds the model
from the `model` section:

    >>> model = build("lstm", {"vocab_size": 10, "n_layer": 1, "n_embd": 8})
    >>> type(model).__name__, family_of(model)
    ('LSTMLanguageModel', 'lstm')

A new family is one line in `FAMILIES` (its model class takes its config, and the config has
`to_dict()` / `from_dict()`).
"""

from dataclasses import dataclass
from typing import Any

from torch import nn

from glassformer.errors import UserError
from glassformer.models.config import GPTConfig
from glassformer.models.encoder import Encoder, EncoderConfig
from glassformer.models.gpt import GPT
from glassformer.models.lstm import LSTMConfig, LSTMLanguageModel
from glassformer.models.seq2seq import Seq2Seq, Seq2SeqConfig
from glassformer.models.vit import VisionTransformer, VitConfig


@dataclass(frozen=True)
class Family:
    name: str
    model_class: type[nn.Module]
    config_class: type[Any]  # a dataclass with to_dict() / from_dict()


FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family("gpt", GPT, GPTConfig),
        Family("lstm", LSTMLanguageModel, LSTMConfig),
        Family("encoder", Encoder, EncoderConfig),
        Family("seq2seq", Seq2Seq, Seq2SeqConfig),
        Family("vit", VisionTransformer, VitConfig),
    )
}


def family_of(model: nn.Module) -> str:
    """The family name of `model` ("gpt" for a `GPT`, ...)."""
    for family in FAMILIES.values():
        if isinstance(model, family.model_class):
            return family.name
    raise UserError(
        f"{type(model).__name__} is not a glassformer model family "
        f"({', '.join(FAMILIES)}); build the model from one of those classes"
    )


def build(family: str, config_dict: dict) -> nn.Module:
    """A freshly initialised model of `family` from its config's `to_dict()`.

    An unknown family is a UserError; an invalid config raises the config's own ValueError
    (or TypeError), which the caller reports with the file it came from.
    """
    if family not in FAMILIES:
        raise UserError(f"unknown model family {family!r}; glassformer knows {', '.join(FAMILIES)}")
    f = FAMILIES[family]
    return f.model_class(f.config_class.from_dict(config_dict))
