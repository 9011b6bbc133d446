"""`glassformer classify`: the label an encoder classifier gives each text, with its probability.

glassformer classify --model runs/task-sentiment "the camera is not excellent"
negative  0.97  the camera is not excellent
"""

import argparse

from glassformer.errors import UserError

LABELS = {"sentiment": ("negative", "positive")}  # a task's class names, by class index


def add_parser(sub) -> None:
    p = sub.add_parser(
        "classify",
        help="label texts with an encoder classifier (glassformer train --task sentiment)",
        description="Print the most likely label of each text and its probability, one line "
        "a text, from an encoder with a classification head.",
    )
    p.add_argument("--model", required=True, metavar="PATH", help="an encoder classifier folder")
    p.add_argument("texts", nargs="+", metavar="TEXT", help="the texts to classify")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from glassformer.checkpoint import load, read_meta
    from glassformer.core.device import pick_device
    from glassformer.tasks.reviews import encode_batch

    model, vocab = load(args.model, pick_device(args.device), family="encoder")
    if model.classifier is None:
        raise UserError(
            f"{args.model} holds an encoder without a classification head; pass a folder of "
            "glassformer train --task sentiment"
        )
    block = model.config.block_size
    for text in args.texts:
        if not text.strip():
            raise UserError("a text to classify is empty; pass each text as a non-empty argument")
        if len(vocab.encode(text)) + 1 > block:  # + [CLS]; an unknown word: one sentence
            raise UserError(f"{text!r} is longer than the model's context of {block} tokens")
    n_classes = model.config.n_classes
    names = LABELS.get(read_meta(args.model).get("task"), [f"class {i}" for i in range(n_classes)])
    ids, mask, _ = encode_batch([(t, 0) for t in args.texts], vocab)  # (B, T), labels unused
    device = next(model.parameters()).device
    with torch.no_grad():
        logits, _ = model.classify(ids.to(device), mask.to(device))  # (B, n_classes)
    probs, best = logits.float().softmax(-1).max(-1)
    for text, p, c in zip(args.texts, probs.tolist(), best.tolist(), strict=True):
        print(f"{names[c]}\t{p:.2f}\t{text}")
    return 0
