"""Load any glassformer tokenizer file by the kind named in its header line.

>>> tok = load_tokenizer("runs/shakespeare")   # a checkpoint folder: uses tokenizer.model
>>> type(tok).__name__
'CharTokenizer'
"""

import os

from glassformer.tokenizers.bpe import BPETokenizer
from glassformer.tokenizers.char import CharTokenizer
from glassformer.tokenizers.fileformat import TokenizerFormatError, read_header, resolve_model_path

Tokenizer = CharTokenizer | BPETokenizer

_KINDS: dict[str, type[CharTokenizer] | type[BPETokenizer]] = {
    "char": CharTokenizer,
    "bpe": BPETokenizer,
}


def load_tokenizer(path: str | os.PathLike) -> Tokenizer:
    """Load the tokenizer in file `path`, or in `path/tokenizer.model` if `path` is a folder."""
    path = resolve_model_path(path)
    kind, _ = read_header(path)
    if kind not in _KINDS:
        raise TokenizerFormatError(
            f"{path} holds a tokenizer of unknown kind '{kind}'; this glassformer reads "
            f"{', '.join(sorted(_KINDS))}; upgrade glassformer or re-train the tokenizer."
        )
    return _KINDS[kind].load(path)
