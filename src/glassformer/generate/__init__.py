"""Decoding: from logits to text, one token at a time.

    options.py      GenerationOptions: every option, checked (the only place)
    strategy.py     what a strategy is: a TokenRule (per token) or a search
    strategies.py   the registry: name -> strategy       greedy.py, sampling.py (token rules)
    beam.py         beam search                           contrastive.py  contrastive search
    processors.py   temperature, top-k, top-p, min-p, repetition penalty
    context.py      history + KV cache + window           streaming.py  ids -> text, stop strings
    session.py      Session: a conversation, turn by turn (generate, stream, chat, serve)
    api.py          generate / stream (text), generate_tokens (ids)

`glassformer.generate(model, tokenizer, prompt, ...)` is the function of api.py (the top
package binds the name to it); this package and its modules stay importable by their paths.
"""

from glassformer.generate.api import generate, generate_tokens, stream
from glassformer.generate.options import GenerationOptions
from glassformer.generate.session import Session

__all__ = ["GenerationOptions", "Session", "generate", "generate_tokens", "stream"]
