"""`GPTConfig`: the decoder-only model's configuration.

Every field is one the transformer families share (nn/config.py: `TransformerConfig`, with
the GPT's defaults); the encoder and the encoder-decoder extend the same base with their own.
"""

from dataclasses import dataclass

from glassformer.nn.config import TransformerConfig


@dataclass
class GPTConfig(TransformerConfig):
    """A GPT (and a Llama: GPTConfig(pos_emb="rotary", norm="rmsnorm", activation="swiglu",
    bias=False, n_kv_head=..., mlp_hidden=...)): causal blocks, a final norm, an LM head."""
