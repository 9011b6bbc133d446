"""`glassformer train`: train a GPT on a text corpus and print a sample (`train/lm.py`)."""

import argparse
import sys
from pathlib import Path

from glassformer.commands.overrides import add_config_flags, apply_overrides
from glassformer.train.config import RunConfig
from glassformer.train.presets import PRESETS, get_preset


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def add_parser(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train a GPT on your text (default: Python's own docs, ~2 minutes)",
        description="Train a GPT language model. With no arguments: a small char-level model "
        "on Python's own documentation (embedded in every CPython), about two minutes on 2 "
        "CPU cores, then a sample. The output folder is a checkpoint that `glassformer "
        "generate --model DIR` uses as is.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--task",
        choices=["mlm", "sentiment", "dates"],
        help="instead of a GPT: train the encoder or encoder-decoder on a task "
        "(see docs/families.md); honours --data (mlm), --max-steps, --time-budget, --seed, "
        "--out, --stop-after, --resume",
    )
    p.add_argument(
        "--preset",
        default="default",
        choices=sorted(PRESETS),
        help="starting configuration (see glassformer/train/presets.py)",
    )
    p.add_argument(
        "--data",
        metavar="PATH",
        help="a .txt file or a folder of .txt files (default: the embedded Python documentation)",
    )
    p.add_argument(
        "--tokenizer",
        metavar="char|bpe|FILE",
        help="char-level, byte-level BPE trained on the corpus, or a saved tokenizer",
    )
    p.add_argument("--vocab-size", type=_positive_int, help="BPE vocabulary size")
    p.add_argument(
        "--max-steps",
        type=_positive_int,
        help="optimizer steps (also the length of the LR schedule)",
    )
    p.add_argument(
        "--time-budget",
        type=_non_negative_float,
        metavar="SECONDS",
        help="stop after this many seconds of training (0: no limit)",
    )
    p.add_argument(
        "--stop-after",
        type=_positive_int,
        metavar="N",
        help="end this run after N steps with a checkpoint, as an interruption "
        "would (resume it with --resume)",
    )
    p.add_argument("--out", metavar="DIR", help="checkpoint folder (default: runs/PRESET)")
    p.add_argument(
        "--resume", action="store_true", help="continue the run in --out from its last checkpoint"
    )
    p.add_argument("--seed", type=int, help="random seed")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_config_flags(p, RunConfig())
    p.set_defaults(func=run)


def build_config(args: argparse.Namespace, out_dir: Path) -> RunConfig:
    """Preset (or the checkpoint's own config on --resume), then shorthands, then dotted flags."""
    if args.resume:  # the only read of the run's config.json
        from glassformer.train.lm import read_run_config

        cfg = read_run_config(out_dir)
    else:
        cfg = get_preset(args.preset)
    shorthands = {
        ("data", "path"): args.data,
        ("data", "tokenizer"): args.tokenizer,
        ("data", "vocab_size"): args.vocab_size,
        ("train", "max_steps"): args.max_steps,
        ("train", "time_budget"): args.time_budget,
        ("train", "seed"): args.seed,
    }
    for (section, name), value in shorthands.items():
        if value is not None:
            setattr(getattr(cfg, section), name, value)
    apply_overrides(cfg, args)
    return cfg


def run(args: argparse.Namespace) -> int:
    from glassformer.train.lm import LanguageModelRun

    if args.task:
        from glassformer.commands.task import run_task_command

        return run_task_command(args)
    out_dir = Path(args.out or f"runs/{args.preset}")
    cfg = build_config(args, out_dir)
    if not args.resume and (out_dir / "trainer_state.pt").exists():
        print(
            f"note: starting a new run in {out_dir}, replacing the checkpoint there "
            "(use --resume to continue it)",
            file=sys.stderr,
        )
    lm = LanguageModelRun(cfg, out_dir, resume=args.resume, progress=not args.quiet)
    n = lm.model.num_params()
    corpus = cfg.data.path or "the embedded Python docs"
    dist = lm.trainer.dist
    if dist.is_main:
        print(
            f"training a {n / 1e6:.2f}M-parameter {cfg.family.upper()} on {corpus}"
            f" ({cfg.data.tokenizer} tokenizer, vocabulary {cfg.model.vocab_size}) on "
            f"{lm.device.type}, {lm.precision}; checkpoints in {out_dir}",
            file=sys.stderr,
        )
    result = lm.run(stop_after=args.stop_after)
    dist.close()
    if not dist.is_main:
        return 0
    if result.interrupted:
        print(
            f"interrupted at step {result.step}; the checkpoint in {out_dir} is complete; "
            f"continue with: glassformer train --out {out_dir} --resume",
            file=sys.stderr,
        )
        return 130
    if result.val_loss is not None:
        print(
            f"step {result.step}: val loss {result.val_loss:.4f}, "
            f"{result.tokens_per_second:,.0f} tokens/s",
            file=sys.stderr,
        )
    if result.sample is not None:
        print("---- sample ----")
        print(result.sample)
        print("----------------")
    print(
        f"checkpoint: {out_dir}  (try: glassformer generate --model {out_dir} --prompt ...)",
        file=sys.stderr,
    )
    return 0
