"""Weight initialisation shared by the model families.

GPT-2 and BERT draw every Linear and Embedding weight from N(0, 0.02) and start biases at
zero; the original transformer (Marian) draws embeddings from N(0, 1/d_model) instead.
"""

from torch import nn


def init_normal(model: nn.Module, std: float = 0.02, embedding_std: float | None = None) -> None:
    """Linear weights ~ N(0, std), biases 0, Embedding weights ~ N(0, embedding_std or std)."""
    for module in model.modules():
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=embedding_std or std)
