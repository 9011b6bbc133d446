"""`glassformer fill-mask`: a masked-LM encoder's top candidates for each `[MASK]` in a text.

glassformer fill-mask --model runs/task-mlm "te[MASK]t"
te[MASK]t
  [MASK] 1: 'x' 0.61  's' 0.22  'n' 0.05  ...
"""

import argparse

from glassformer.errors import UserError
from glassformer.tokenizers.symbols import MASK, SPECIALS

MASK_TEXT = SPECIALS[MASK]  # "[MASK]", the symbol the mlm task trains on


def add_parser(sub) -> None:
    p = sub.add_parser(
        "fill-mask",
        help="fill the [MASK]s of a text with a masked-LM encoder (train --task mlm)",
        description=f"Print the most likely symbols for each {MASK_TEXT} in each text, with "
        "their probabilities; the encoder reads the text on both sides of every gap.",
    )
    p.add_argument("--model", required=True, metavar="PATH", help="a masked-LM encoder folder")
    p.add_argument("texts", nargs="+", metavar="TEXT", help=f"texts holding {MASK_TEXT}")
    p.add_argument("--top", type=int, default=5, metavar="N", help="candidates per mask")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    p.set_defaults(func=run)


def masked_ids(vocab, text: str) -> list[int]:
    """'te[MASK]t' -> the ids of 't', 'e', [MASK], 't' (the text between masks encoded)."""
    if MASK_TEXT not in text:
        raise UserError(
            f"{text!r} holds no {MASK_TEXT}; write {MASK_TEXT} where a symbol is missing"
        )
    ids: list[int] = []
    for i, piece in enumerate(text.split(MASK_TEXT)):
        if i:
            ids.append(MASK)
        ids += vocab.encode(piece) if piece else []  # outside the vocabulary: one sentence
    return ids


def run(args: argparse.Namespace) -> int:
    import torch

    from glassformer.checkpoint import load
    from glassformer.core.device import pick_device

    if args.top <= 0:
        raise UserError(f"--top must be a positive integer, got {args.top}")
    model, vocab = load(args.model, pick_device(args.device), family="encoder")
    if model.mlm is None:
        raise UserError(
            f"{args.model} holds an encoder without a masked-LM head; pass a folder of "
            "glassformer train --task mlm"
        )
    rows = [masked_ids(vocab, text) for text in args.texts]  # every text checked first
    block = model.config.block_size
    for text, ids in zip(args.texts, rows, strict=True):
        if len(ids) > block:
            raise UserError(f"{text!r} is longer than the model's context of {block} symbols")
    device = next(model.parameters()).device
    for text, ids in zip(args.texts, rows, strict=True):
        with torch.no_grad():
            logits, _ = model(torch.tensor([ids], device=device))  # (1, T, vocab)
        logits[..., : len(SPECIALS)] = float("-inf")  # candidates are symbols, not specials
        probs = logits[0].float().softmax(-1)  # (T, vocab)
        print(text)
        positions = [t for t, i in enumerate(ids) if i == MASK]
        for n, t in enumerate(positions, 1):
            top = probs[t].topk(min(args.top, vocab.vocab_size - len(SPECIALS)))
            cands = "  ".join(
                f"{vocab.decode([i])!r} {p:.2f}"
                for p, i in zip(top.values.tolist(), top.indices.tolist(), strict=True)
            )
            print(f"  {MASK_TEXT} {n}: {cands}")
    return 0
