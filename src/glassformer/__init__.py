"""glassformer: a transformer workbench.

>>> import glassformer
>>> model, tokenizer = glassformer.load("runs/default")   # doctest: +SKIP
"""

from glassformer.models.config import GPTConfig
from glassformer.models.gpt import GPT
from glassformer.train.checkpoint import load

__all__ = ["GPT", "GPTConfig", "load"]
__version__ = "0.1.0"
