"""glassformer: a transformer workbench.

>>> import glassformer
>>> model, tokenizer = glassformer.load("runs/default")   # doctest: +SKIP
>>> glassformer.generate(model, tokenizer, "ROMEO:", max_new_tokens=40)   # doctest: +SKIP
>>> logits_and_loss, cache = glassformer.run_with_cache(model, ids)   # doctest: +SKIP

`glassformer.generate` is the function `glassformer.generate.api.generate`: the name
`generate` of this package is bound to it, while the subpackage of the same name stays
importable by its path: `from glassformer.generate import Session` or
`from glassformer.generate import beam` (not `import glassformer.generate.beam as beam`, which
would look the module up on the function).
"""

from importlib.metadata import version

from glassformer.checkpoint import load
from glassformer.generate.api import generate, stream
from glassformer.inspect import run_with_cache
from glassformer.models.config import GPTConfig
from glassformer.models.gpt import GPT

__all__ = ["GPT", "GPTConfig", "generate", "load", "run_with_cache", "stream"]
__version__ = version("glassformer")
