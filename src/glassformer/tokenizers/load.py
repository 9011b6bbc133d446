"""Load any glassformer tokenizer file by the kind named in its header line.

>>> tok = load_tokenizer("runs/shakespeare")   # a checkpoint folder: uses tokenizer.model
>>> type(tok).__name__
'CharTokenizer'

Each kind reads its own body (`CharTokenizer.load`, ...); a new kind is one more line in
`KINDS`.
"""

import os

from glassformer.tokenizers.bpe import BPETokenizer
from glassformer.tokenizers.char import CharTokenizer
from glassformer.tokenizers.fileformat import TokenizerFormatError, read_header, resolve_model_path
from glassformer.tokenizers.pretrained_bpe import PretrainedBPE
from glassformer.tokenizers.protocol import Tokenizer
from glassformer.tokenizers.symbols import SymbolVocab
from glassformer.tokenizers.wordpiece import WordPieceTokenizer

KINDS: dict[str, type[Tokenizer]] = {
    "char": CharTokenizer,
    "bpe": BPETokenizer,
    "wordpiece": WordPieceTokenizer,
    "symbols": SymbolVocab,
    "pretrained-bpe": PretrainedBPE,
}


def load_tokenizer(path: str | os.PathLike) -> Tokenizer:
    """Load the tokenizer in file `path`, or in `path/tokenizer.model` if `path` is a folder."""
    path = resolve_model_path(path)
    kind, _ = read_header(path)
    if kind not in KINDS:
        raise TokenizerFormatError(
            f"{path} holds a tokenizer of unknown kind '{kind}'; this glassformer reads "
            f"{', '.join(sorted(KINDS))}; upgrade glassformer or re-train the tokenizer."
        )
    return KINDS[kind].load(path)
