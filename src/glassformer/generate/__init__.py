"""Decoding: from logits to text, one token at a time.

    processors.py   temperature, top-k, top-p, min-p, repetition penalty
    sampling.py     greedy and sampling loops        context.py   history + KV cache + window
    beam.py         beam search                      contrastive.py  contrastive search
    streaming.py    ids -> text pieces, stop strings  options.py   every option, checked
    api.py          generate / stream (text), generate_tokens (ids)

This package is itself callable: `glassformer.generate(model, tokenizer, prompt, ...)` is
`glassformer.generate.api.generate`, while `glassformer.generate.beam` and friends stay
importable as modules.
"""

import inspect
import sys
import types

from glassformer.generate.api import generate, stream

__all__ = ["generate", "stream"]


class _CallableModule(types.ModuleType):
    def __call__(self, *args, **kwargs):
        return generate(*args, **kwargs)


__signature__ = inspect.signature(generate)
sys.modules[__name__].__class__ = _CallableModule
