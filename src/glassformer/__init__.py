"""glassformer: a transformer workbench.

>>> import glassformer
>>> model, tokenizer = glassformer.load("runs/default")   # doctest: +SKIP
"""

from glassformer import generate  # callable: glassformer.generate(model, tokenizer, prompt)
from glassformer.checkpoint import load
from glassformer.generate import stream
from glassformer.models.config import GPTConfig
from glassformer.models.gpt import GPT

__all__ = ["GPT", "GPTConfig", "generate", "load", "stream"]
__version__ = "0.1.0"
