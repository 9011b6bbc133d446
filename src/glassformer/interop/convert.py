"""`from_hf` / `to_hf`: dispatch on the architecture to the per-family mappings."""

from pathlib import Path

from torch import nn

from glassformer.errors import UserError
from glassformer.interop.bert import bert_from_hf, bert_to_hf
from glassformer.interop.folder import read_hf_config, read_hf_weights, write_hf_folder
from glassformer.interop.gpt2 import gpt2_from_hf, gpt2_to_hf
from glassformer.interop.marian import marian_from_hf, marian_to_hf
from glassformer.models.encoder import Encoder
from glassformer.models.gpt import GPT
from glassformer.models.seq2seq import Seq2Seq

_FROM = {"gpt2": gpt2_from_hf, "bert": bert_from_hf, "marian": marian_from_hf}


def from_hf(folder: str | Path) -> nn.Module:
    """Our model for a Hugging Face folder (`config.json` + `model.safetensors`), in eval mode."""
    hf = read_hf_config(folder)
    kind = hf.get("model_type")
    if kind not in _FROM:
        raise UserError(
            f"{folder}: model_type {kind!r} is not one glassformer reads; "
            f"supported: {', '.join(sorted(_FROM))}"
        )
    model = _FROM[kind](hf, read_hf_weights(folder), folder)
    return model.eval()


def to_hf(model: nn.Module, folder: str | Path) -> None:
    """Write `model` as a Hugging Face folder that `from_pretrained(folder)` loads."""
    if isinstance(model, GPT):
        hf, weights = gpt2_to_hf(model)
    elif isinstance(model, Encoder):
        hf, weights = bert_to_hf(model)
    elif isinstance(model, Seq2Seq):
        hf, weights = marian_to_hf(model)
    else:
        raise UserError(f"{type(model).__name__} has no Hugging Face export")
    write_hf_folder(folder, hf, weights)
