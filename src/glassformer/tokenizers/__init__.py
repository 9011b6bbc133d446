"""Tokenizers: text <-> ids.

- `CharTokenizer`: one id per character (nanoGPT's Shakespeare setup).
- `BPETokenizer`: byte-level BPE, GPT-2 style; fast training, a readable reference encoder
  and a tiktoken fast path that gives identical ids.
- `WordPieceTokenizer`: BERT's tokenizer, from a `vocab.txt`.
- `SymbolVocab`: the tasks' fixed symbols (special tokens, then characters or words).
- `Tokenizer`: the protocol all four implement (`protocol.py`).
- `load_tokenizer(path)`: load any tokenizer file written by glassformer (or a checkpoint
  folder holding `tokenizer.model`), dispatching on the file's header line.
"""

from glassformer.tokenizers.bpe import BPETokenizer
from glassformer.tokenizers.char import CharTokenizer
from glassformer.tokenizers.fileformat import TokenizerFormatError
from glassformer.tokenizers.formats import (
    load_gpt2_files,
    load_tiktoken_file,
    save_hf_tokenizer_json,
    save_tiktoken_file,
)
from glassformer.tokenizers.load import load_tokenizer
from glassformer.tokenizers.protocol import Tokenizer
from glassformer.tokenizers.special import DisallowedSpecialTokenError
from glassformer.tokenizers.symbols import SymbolVocab
from glassformer.tokenizers.wordpiece import WordPieceTokenizer

__all__ = [
    "BPETokenizer",
    "CharTokenizer",
    "DisallowedSpecialTokenError",
    "SymbolVocab",
    "Tokenizer",
    "TokenizerFormatError",
    "WordPieceTokenizer",
    "load_gpt2_files",
    "load_tiktoken_file",
    "load_tokenizer",
    "save_hf_tokenizer_json",
    "save_tiktoken_file",
]
