"""Decoding: from logits to text, one token at a time.

    engine.py       Engine: token ids in, token ids out; prefill(generations), decode();
                    stop ids and length limits (the one loop everything drives)
    context.py      the rows' histories + their KV cache (slots.py: SlotCache); the logits
    options.py      GenerationOptions: every option, declared once, checked
    strategy.py     what a strategy is: a TokenRule (per token) or a search, one Step at a time
    strategies.py   the registry: name -> strategy       greedy.py, sampling.py (token rules)
    beam.py         beam search                           contrastive.py  contrastive search
    search.py       one search run to its end over a Context
    processors.py   temperature, top-k, top-p, min-p, repetition penalty
    streaming.py    ids -> text pieces, stop strings
    session.py      Session: a conversation, turn by turn (generate, stream, chat)
    conversation.py a chat template's conversation on a Session
    api.py          generate / stream (text), generate_tokens (ids)

`glassformer.generate(model, tokenizer, prompt, ...)` is the function of api.py (the top
package binds the name to it). What other layers use is exported here (the server imports
nothing else); the modules stay importable by their paths.
"""

from glassformer.generate.api import generate, generate_tokens, stream
from glassformer.generate.engine import FINISH_REASONS, Engine, Finish, Generation, Token
from glassformer.generate.option_error import OptionError
from glassformer.generate.options import DECODE_DTYPES, DEFAULTS, GenerationOptions
from glassformer.generate.session import (
    Session,
    decode_copy,
    encode_prompt,
    make_generator,
    text_options,
)
from glassformer.generate.strategies import STRATEGIES
from glassformer.generate.streaming import TextStream

__all__ = [
    "DECODE_DTYPES",
    "DEFAULTS",
    "FINISH_REASONS",
    "STRATEGIES",
    "Engine",
    "Finish",
    "Generation",
    "GenerationOptions",
    "OptionError",
    "Session",
    "TextStream",
    "Token",
    "decode_copy",
    "encode_prompt",
    "generate",
    "generate_tokens",
    "make_generator",
    "stream",
    "text_options",
]
