"""Pre-tokenization: split text into chunks that BPE never merges across.

Byte-level BPE does not see the text as one long byte string. A regular expression first
cuts it into chunks (words with their leading space, runs of digits, runs of punctuation,
whitespace), and merges happen only inside a chunk, so a token never spans " dog." + "The".

We use GPT-2's pattern (from openai/gpt-2 `encoder.py`, also tiktoken's `gpt2` encoding and
Hugging Face's `ByteLevel` pre-tokenizer), which needs the `regex` package for `\\p{L}`
(any letter) and `\\p{N}` (any number)::

    's|'t|'re|'ve|'m|'ll|'d         English contractions, split off the word
     ?\\p{L}+                       a word, with at most one leading space
     ?\\p{N}+                       a run of digits, with at most one leading space
     ?[^\\s\\p{L}\\p{N}]+             a run of punctuation / symbols
    \\s+(?!\\S)                      whitespace, except the last space before a word
    \\s+                            any remaining whitespace

    >>> pretokenize("Hello world!! 2024\\n")
    ['Hello', ' world', '!!', ' 2024', '\\n']
"""

import regex

GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""

_compiled: dict[str, regex.Pattern] = {}


def compile_pattern(pattern: str) -> regex.Pattern:
    """Compile (once) a pre-tokenization pattern with the `regex` package."""
    if pattern not in _compiled:
        _compiled[pattern] = regex.compile(pattern)
    return _compiled[pattern]


def pretokenize(text: str, pattern: str = GPT2_PATTERN) -> list[str]:
    """The chunks of `text`; joined back together they give `text` again."""
    return compile_pattern(pattern).findall(text)
