"""Decoding: from logits to text, one token at a time.

    options.py      GenerationOptions: every option, checked (the only place)
    strategy.py     what a strategy is: a TokenRule (per token) or a search
    strategies.py   the registry: name -> strategy       greedy.py, sampling.py (token rules)
    beam.py         beam search                           contrastive.py  contrastive search
    processors.py   temperature, top-k, top-p, min-p, repetition penalty
    context.py      history + KV cache + window           streaming.py  ids -> text, stop strings
    session.py      Session: a conversation, turn by turn (generate, stream, chat, serve)
    api.py          generate / stream (text), generate_tokens (ids)

This package is itself callable: `glassformer.generate(model, tokenizer, prompt, ...)` is
`glassformer.generate.api.generate`, while `glassformer.generate.beam` and friends stay
importable as modules.
"""

import inspect
import sys
import types

from glassformer.generate.api import generate, generate_tokens, stream
from glassformer.generate.options import GenerationOptions
from glassformer.generate.session import Session

__all__ = ["GenerationOptions", "Session", "generate", "generate_tokens", "stream"]


class _CallableModule(types.ModuleType):
    def __call__(self, *args, **kwargs):
        return generate(*args, **kwargs)


__signature__ = inspect.signature(generate)
sys.modules[__name__].__class__ = _CallableModule
