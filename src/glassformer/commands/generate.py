"""`glassformer generate`: continue a prompt with a trained model."""

import argparse
import math
import sys

import torch

from glassformer.errors import UserError


def add_parser(sub) -> None:
    p = sub.add_parser(
        "generate",
        help="continue a prompt with a trained model",
        description="Print the prompt and its continuation by the model in --model. A prompt "
        "longer than the model's context is cropped to its last tokens (said on stderr).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--model", required=True, metavar="DIR", help="a checkpoint folder")
    p.add_argument("--prompt", default="\n", help="text to continue")
    p.add_argument("--max-new-tokens", type=int, default=200, metavar="N")
    p.add_argument(
        "--temperature",
        type=float,
        default=0.8,
        help="sampling temperature; 0 means greedy (always the most likely token)",
    )
    p.add_argument(
        "--top-k",
        type=int,
        default=None,
        metavar="K",
        help="sample only among the K most likely tokens",
    )
    p.add_argument(
        "--top-p",
        type=float,
        default=None,
        metavar="P",
        help="nucleus sampling: only the most likely tokens with total mass P",
    )
    p.add_argument("--seed", type=int, default=None, help="random seed (same seed, same text)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    p.set_defaults(func=run)


def check_args(args: argparse.Namespace) -> None:
    if not (args.temperature >= 0 and math.isfinite(args.temperature)):
        raise UserError(
            f"--temperature must be a number >= 0 (0 is greedy), got {args.temperature}"
        )
    if args.top_k is not None and args.top_k < 0:
        raise UserError(f"--top-k must be >= 0, got {args.top_k}")
    if args.top_p is not None and not 0 < args.top_p <= 1:
        raise UserError(f"--top-p must be in (0, 1], got {args.top_p}")
    if args.max_new_tokens <= 0:
        raise UserError(f"--max-new-tokens must be a positive integer, got {args.max_new_tokens}")


def run(args: argparse.Namespace) -> int:
    from glassformer.generate.sampling import generate_ids
    from glassformer.train.checkpoint import load
    from glassformer.train.device import pick_device

    check_args(args)
    device = pick_device(args.device)
    model, tokenizer = load(args.model, device)
    ids = tokenizer.encode(args.prompt)
    if not ids:
        if tokenizer.eot_id is None:
            raise UserError("the prompt is empty and this model has no start token; pass --prompt")
        ids = [tokenizer.eot_id]
    block = model.config.block_size
    if len(ids) > block:
        print(
            f"note: the prompt is {len(ids)} tokens, longer than the model's context of "
            f"{block}; using its last {block} tokens",
            file=sys.stderr,
        )
        ids = ids[-block:]
    gen = None
    if args.seed is not None:
        gen = torch.Generator(device=device).manual_seed(args.seed)
    idx = torch.tensor([ids], device=device)  # (1, T)
    new = [
        t.item()
        for t in generate_ids(
            model,
            idx,
            args.max_new_tokens,
            args.temperature,
            args.top_k,
            args.top_p,
            tokenizer.eot_id,
            gen,
        )
    ]
    if new and new[-1] == tokenizer.eot_id:
        new = new[:-1]
    print(tokenizer.decode(ids + new))
    return 0
