"""What the Marian entry of the architecture table needs beyond names: one shape for both stacks.

Marian (`MarianMTModel`, the opus-mt translators) is our `Seq2Seq` in the original
transformer's layout: post-norm, sinusoidal positions with all sines first, then all cosines
(`sinusoid_layout="halves"`, computed, not stored), one vocabulary shared by the source, the
target and the tied LM head. Our encoder and decoder have one head count and MLP width, and
the head is always tied; `check_marian_hf` refuses a folder that differs.

    >>> check_marian_hf({"encoder_attention_heads": 8, "decoder_attention_heads": 4}, {}, "x")
    Traceback (most recent call last):
    glassformer.errors.UserError: x: encoder and decoder must have the same number of heads
"""

import torch

from glassformer.errors import UserError
from glassformer.nn.mlp import mlp_hidden_size


def check_marian_hf(hf: dict, weights: dict[str, torch.Tensor], source) -> dict:
    """Refuse what our Seq2Seq cannot hold; drop the head if it is the shared embedding."""
    heads = hf.get("encoder_attention_heads", 8)
    if hf.get("decoder_attention_heads", heads) != heads:
        raise UserError(f"{source}: encoder and decoder must have the same number of heads")
    if hf.get("decoder_ffn_dim", 2048) != hf.get("encoder_ffn_dim", 2048):
        raise UserError(f"{source}: encoder and decoder must have the same MLP width")
    head = weights.pop("lm_head.weight", None)
    if head is not None and not torch.equal(head, weights.get("model.shared.weight", head)):
        raise UserError(f"{source}: an untied lm_head.weight is not supported")
    return {}


def marian_export(c) -> dict:
    """The config.json keys of the decoder, which our one shape makes equal to the encoder's."""
    return {
        "decoder_vocab_size": c.vocab_size,
        "decoder_attention_heads": c.n_head,
        "decoder_ffn_dim": mlp_hidden_size(c),
        "dropout": 0.0,
        "attention_dropout": 0.0,
        "activation_dropout": 0.0,
        "tie_word_embeddings": True,
    }
