"""`glassformer tokenize TEXT` (see the tokens) and `glassformer tokenizer train` (make one).

    $ glassformer tokenize "Hello world!  "
    H|e|l|lo|·w|or|l|d|!|··          (on a terminal: each token on its own colour, no '|')
    ids: [72, 101, 108, 321, 306, 277, 108, 100, 33, 256]
    10 tokens, 14 characters

Without `--tokenizer`, the default is a byte-level BPE with 1024 tokens trained on Python's
own documentation (`pydoc_data.topics`, shipped with every CPython), made once and cached as
`$GLASSFORMER_CACHE/tokenizers/pydoc-bpe-1024.model` (default cache: `~/.cache/glassformer`).
"""

import argparse
import json
import sys
import time
from pathlib import Path

from tqdm.auto import tqdm

from glassformer.core.checked_paths import check_input_file, check_output_file
from glassformer.errors import UserError
from glassformer.tokenizers import (
    BPETokenizer,
    CharTokenizer,
    SymbolVocab,
    Tokenizer,
    WordPieceTokenizer,
    load_tokenizer,
)

DEFAULT_VOCAB_SIZE = 1024
VISIBLE_WHITESPACE = str.maketrans({" ": "·", "\t": "→", "\n": "↵", "\r": "␍"})
# Background colours (ANSI 256-colour palette), cycled token by token.
COLOURS = (153, 223, 194, 218, 187, 225)


def add_tokenize_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "tokenize",
        help="show how a tokenizer cuts text into tokens",
        description="Print TEXT with token boundaries (coloured on a terminal, '|' otherwise; "
        "spaces as ·, tabs as →, newlines as ↵), then the ids and the token count. Special "
        "tokens written in the text (like <|endoftext|>) are shown as special tokens.",
    )
    p.add_argument("text", help="the text to tokenize ('-' reads standard input)")
    p.add_argument(
        "--tokenizer",
        metavar="PATH",
        help="a tokenizer file, a checkpoint folder (uses its tokenizer.model) or a BERT "
        "vocab.txt; default: a 1024-token BPE trained on Python's docs, cached",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object instead")
    p.set_defaults(func=run_tokenize)


def add_tokenizer_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "tokenizer",
        help="train a tokenizer",
        description="Tokenizer tools.",
    )
    verbs = p.add_subparsers(dest="tokenizer_command", metavar="VERB", required=True)
    t = verbs.add_parser(
        "train",
        help="train a tokenizer on a text corpus",
        description="Train a byte-level BPE (or character) tokenizer and write FILE plus a "
        "human-readable FILE with suffix .vocab.",
    )
    t.add_argument("--data", metavar="PATH", required=True, help="a .txt file or a folder of them")
    t.add_argument(
        "--vocab-size",
        type=int,
        default=DEFAULT_VOCAB_SIZE,
        metavar="N",
        help=f"number of tokens incl. <|endoftext|> (BPE only; default {DEFAULT_VOCAB_SIZE})",
    )
    t.add_argument("--kind", choices=("bpe", "char"), default="bpe", help="default: bpe")
    t.add_argument(
        "--out",
        metavar="FILE",
        required=True,
        help="where to write the tokenizer (a folder gets FOLDER/tokenizer.model)",
    )
    t.set_defaults(func=run_train)


def default_tokenizer() -> BPETokenizer:
    """The BPE trained on Python's documentation, trained once and cached."""
    from glassformer.core.paths import cache_dir
    from glassformer.train.corpus import embedded_corpus

    path = cache_dir() / "tokenizers" / f"pydoc-bpe-{DEFAULT_VOCAB_SIZE}.model"
    if path.is_file():
        return BPETokenizer.load(path)
    print("training the default tokenizer on Python's docs (once)...", file=sys.stderr)
    tokenizer = BPETokenizer.train(embedded_corpus(), DEFAULT_VOCAB_SIZE)
    path.parent.mkdir(parents=True, exist_ok=True)
    tokenizer.save(path)
    return tokenizer


def resolve_tokenizer(path: str | None) -> Tokenizer:
    if path is None:
        return default_tokenizer()
    if Path(path).suffix == ".txt":
        return WordPieceTokenizer.from_vocab(path)
    return load_tokenizer(path)


def encode_with_pieces(tokenizer: Tokenizer, text: str) -> tuple[list[int], list[str]]:
    """Ids of `text` and the text each id stands for (bytes that are not UTF-8 alone as `\\xe4`)."""
    if isinstance(tokenizer, WordPieceTokenizer):
        ids = tokenizer.encode(text, add_special_tokens=False)
        return ids, [tokenizer.inverse[i] for i in ids]
    if isinstance(tokenizer, CharTokenizer):
        ids = tokenizer.encode(text)
        return ids, [tokenizer.chars[i] for i in ids]
    if isinstance(tokenizer, SymbolVocab):
        ids = tokenizer.encode(text)
        return ids, [tokenizer.symbols[i] for i in ids]
    ids = tokenizer.encode(text, allowed_special="all")
    pieces = []
    for i in ids:
        raw = tokenizer.decode_bytes([i])
        try:
            pieces.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            pieces.append("".join(f"\\x{b:02x}" for b in raw))
    return ids, pieces


def render(pieces: list[str], colour: bool) -> str:
    """Pieces with visible whitespace, coloured in turn, or separated by '|' without colour."""
    shown = [piece.translate(VISIBLE_WHITESPACE) for piece in pieces]
    if not colour:
        return "|".join(shown)
    return "".join(
        f"\x1b[48;5;{COLOURS[k % len(COLOURS)]}m\x1b[30m{s}\x1b[0m" for k, s in enumerate(shown)
    )


def run_tokenize(args: argparse.Namespace) -> int:
    text = sys.stdin.read() if args.text == "-" else args.text
    tokenizer = resolve_tokenizer(args.tokenizer)
    ids, pieces = encode_with_pieces(tokenizer, text)
    if args.json:
        print(json.dumps({"ids": ids, "tokens": pieces, "count": len(ids)}, ensure_ascii=False))
        return 0
    print(render(pieces, colour=sys.stdout.isatty()))
    print(f"ids: {ids}")
    print(f"{len(ids)} tokens, {len(text)} characters")
    return 0


def run_train(args: argparse.Namespace) -> int:
    from glassformer.train.corpus import read_corpus

    if args.kind == "bpe" and args.vocab_size < 257:
        raise UserError(
            f"--vocab-size {args.vocab_size} is too small for byte-level BPE; use at least 257."
        )
    if not args.data:
        raise UserError("--data is empty; pass a .txt file or a folder of .txt files.")
    out = Path(args.out)
    if out.is_dir():
        out = out / "tokenizer.model"
    check_output_file(out, inputs=[args.data])  # before the corpus is read or a merge made
    check_output_file(out.with_suffix(".vocab"), inputs=[args.data])
    if not Path(args.data).is_dir():
        check_input_file(args.data, "--data")
    text = read_corpus(args.data)
    start = time.perf_counter()
    if args.kind == "char":
        tokenizer: Tokenizer = CharTokenizer.train(text)
    else:
        with tqdm(total=args.vocab_size - 257, unit="merge", desc="BPE", disable=None) as bar:
            tokenizer = BPETokenizer.train(
                text, args.vocab_size, progress=lambda n: bar.update(n - bar.n)
            )
    tokenizer.save(out)
    seconds = time.perf_counter() - start
    print(
        f"wrote {out} ({tokenizer.vocab_size} tokens, trained on {len(text):,} characters "
        f"in {seconds:.2f} s) and {out.with_suffix('.vocab')}"
    )
    return 0
