"""`glassformer train`: train a GPT on a text corpus and print a sample (`train/lm.py`)."""

import argparse
import json
import shlex
import sys
from pathlib import Path

from glassformer import checkpoint
from glassformer.commands.overrides import add_config_flags, apply_overrides
from glassformer.core.checked_paths import check_output_dir
from glassformer.core.lock import lock_for_run
from glassformer.errors import UserError
from glassformer.train.config import RunConfig
from glassformer.train.config_file import read_config_file
from glassformer.train.finetune import FinetuneConfig, read_finetune, trainable_params
from glassformer.train.presets import PRESETS, get_preset

# settings with a short flag of their own (the dotted spelling is accepted, not listed)
SHORTHANDS = {
    ("data", "path"): "data",
    ("data", "field"): "data_field",
    ("data", "tokenizer"): "tokenizer",
    ("data", "vocab_size"): "vocab_size",
    ("train", "max_steps"): "max_steps",
    ("train", "time_budget"): "time_budget",
    ("train", "seed"): "seed",
    ("train", "log"): "log",
}
# settings a resumed run cannot change (besides every --model.FIELD): they shape the model
FIXED_ON_RESUME = {("data", "tokenizer"), ("data", "vocab_size")}


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
        choices=["mlm", "sentiment", "dates", "digits", "tones"],
        help="instead of a GPT: train the encoder, encoder-decoder or vision transformer on a task "
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
        "--config",
        metavar="FILE",
        help="settings from a JSON or YAML file shaped like a run's config.json (a run's own "
        "config.json works), laid over the preset; flags override it",
    )
    p.add_argument(
        "--print-config",
        action="store_true",
        help="print the resolved configuration as JSON (a --config file) and exit",
    )
    p.add_argument(
        "--data",
        metavar="PATH",
        help="a .txt, .jsonl or .parquet file, a folder or glob of them, or a saved Hugging "
        "Face dataset (default: the embedded Python documentation)",
    )
    p.add_argument(
        "--data-field",
        metavar="NAME",
        help="the JSON field or table column that holds the text (default: text)",
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
        "--resume",
        action="store_true",
        help="continue the run in --out from its last checkpoint (its model and tokenizer: a "
        "--model.* or --tokenizer / --vocab-size that differs from them is refused); a run "
        "trained on a corpus file needs --data again: a checkpoint never picks a file to read",
    )
    p.add_argument("--seed", type=int, help="random seed")
    ft = p.add_argument_group("fine-tuning (docs/finetune.md)")
    ft.add_argument(
        "--init-from",
        metavar="MODEL",
        help="start from a pretrained model instead of random weights: a checkpoint folder, a "
        "Hugging Face GPT-2 or Llama folder, a .gguf file or smollm2; its own architecture "
        "and tokenizer are used (--model.* and --tokenizer do not apply)",
    )
    ft.add_argument(
        "--lora-rank",
        type=int,
        metavar="R",
        help="with --init-from: train LoRA adapters of rank R (1 .. the model's width) on "
        "every attention and MLP matrix, the weights frozen; saved merged into the weights "
        "(default: full fine-tune, every weight trains)",
    )
    ft.add_argument(
        "--lora-alpha",
        type=float,
        default=16.0,
        metavar="ALPHA",
        help="LoRA scale: the update is ALPHA / R times B A",
    )
    ft.add_argument(
        "--context",
        type=_positive_int,
        metavar="TOKENS",
        help="with --init-from: training window in tokens (default: 256, or the model's "
        "context if shorter)",
    )
    p.add_argument(
        "--log",
        metavar="KINDS",
        help="also send the metrics to tensorboard, csv, wandb and/or mlflow (comma-separated)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_config_flags(p, RunConfig(), hidden=tuple(".".join(k) for k in SHORTHANDS))
    p.set_defaults(func=run)


def build_config(args: argparse.Namespace, out_dir: Path) -> RunConfig:
    """Preset (or the checkpoint's own config on --resume), then --config, then shorthands,
    then dotted flags."""
    if args.resume:  # the only read of the run's config.json
        from glassformer.train.lm import read_run_config

        if args.config:
            raise UserError("--config starts a new run; drop it to --resume the run in --out")
        cfg = read_run_config(out_dir)
    else:
        cfg = get_preset(args.preset)
    if args.config:
        cfg = read_config_file(args.config, cfg)
    if args.resume:
        _refuse_model_changes(args, cfg, out_dir)
    for (section, name), dest in SHORTHANDS.items():
        value = getattr(args, dest)
        if value is not None:
            setattr(getattr(cfg, section), name, value)
    apply_overrides(cfg, args)
    return cfg


def _given(args: argparse.Namespace):
    """(section, field, flag, value) of every setting given on the command line."""
    for (section, name), dest in SHORTHANDS.items():
        if getattr(args, dest) is not None:
            yield section, name, "--" + dest.replace("_", "-"), getattr(args, dest)
    for key, value in vars(args).items():
        if key.startswith("cfg__") and value is not None:
            _, section, name = key.split("__")
            yield section, name, f"--{section}.{name}", value


def _refuse_model_changes(args: argparse.Namespace, saved: RunConfig, out_dir: Path) -> None:
    """A resumed run keeps its model and its tokenizer: a flag that would change them is
    refused (the run would go on with the saved ones while config.json claimed the new)."""
    for section, name, flag, value in _given(args):
        fixed = section == "model" or (section, name) in FIXED_ON_RESUME
        was = getattr(getattr(saved, section), name, None)
        if fixed and value != was:
            raise UserError(
                f"{flag} {value} differs from the run in {out_dir} ({was}): a resumed run keeps "
                f"its model and tokenizer; drop {flag}, or train a new run with another --out"
            )


def _finetune_config(args: argparse.Namespace, out_dir: Path):
    """The fine-tuning settings: from the flags, or on --resume from the run's config.json."""
    if args.resume:
        if args.init_from:
            raise UserError("--init-from starts a new run; drop it to --resume the run in --out")
        finetune = read_finetune(checkpoint.read_meta(out_dir))
        if finetune is not None and finetune.lora:
            raise UserError(
                f"{out_dir} holds a LoRA run saved with its adapters merged, which cannot "
                f"resume; fine-tune it further with --init-from {out_dir} --out NEW_DIR"
            )
        return finetune
    if not args.init_from:
        if args.lora_rank is not None or args.context:
            raise UserError("--lora-rank and --context need --init-from MODEL")
        return None
    given = [k for k, v in vars(args).items() if k.startswith("cfg__model__") and v is not None]
    if given or args.tokenizer or args.vocab_size:
        flag = "--" + given[0][len("cfg__") :].replace("__", ".") if given else "--tokenizer"
        raise UserError(f"{flag} does not apply with --init-from: the model brings its own")
    if args.lora_rank is not None and args.lora_rank <= 0:
        raise UserError(f"--lora-rank must be a positive integer, got {args.lora_rank}")
    rank = args.lora_rank or 0
    return FinetuneConfig(args.init_from, rank, args.lora_alpha, args.context or 0)


def run(args: argparse.Namespace) -> int:
    if args.task:
        from glassformer.commands.task import run_task_command

        return run_task_command(args)
    out_dir = Path(args.out or f"runs/{args.preset}")
    cfg = build_config(args, out_dir)
    if args.print_config:
        print(json.dumps({"family": cfg.family, **cfg.to_dict()}, indent=2))
        return 0
    inputs = [cfg.data.path, cfg.data.tokenizer, args.config, args.init_from]
    check_output_dir(out_dir, inputs=inputs, files=checkpoint.RUN_FILES)  # before any work
    if args.resume and not out_dir.is_dir():
        raise UserError(f"cannot resume: {out_dir} does not exist; train without --resume")
    with lock_for_run(out_dir, "glassformer train"):  # one run per folder
        return _train(args, cfg, out_dir)


def _train(args: argparse.Namespace, cfg: RunConfig, out_dir: Path) -> int:
    from glassformer.train.lm import LanguageModelRun

    finetune = _finetune_config(args, out_dir)
    if args.resume and cfg.data.path and args.data is None and args.cfg__data__path is None:
        # a checkpoint never names a file to read: a crafted config.json made --resume read
        # (and quote) any file; the corpus is the one the user names
        raise UserError(
            f"{out_dir} was trained on a corpus file, which a checkpoint never picks for you; "
            f"name it with --data to resume (its config.json records {cfg.data.path[:200]!r})"
        )
    if not args.resume and (out_dir / "trainer_state.pt").exists():
        print(
            f"note: starting a new run in {out_dir}, replacing the checkpoint there "
            "(use --resume to continue it)",
            file=sys.stderr,
        )
    lm = LanguageModelRun(
        cfg,
        out_dir,
        resume=args.resume,
        progress=not args.quiet,
        finetune=finetune,
        vocab_size=args.cfg__model__vocab_size,
    )
    n = lm.model.num_params()
    corpus = cfg.data.path or "the embedded Python docs"
    dist = lm.trainer.dist
    if dist.is_main and finetune is not None:
        how = f"LoRA rank {finetune.lora_rank}" if finetune.lora else "full fine-tune"
        print(
            f"fine-tuning {finetune.init_from} ({n / 1e6:.2f}M parameters, "
            f"{trainable_params(lm.model) / 1e6:.3f}M trainable: {how}) on {corpus}, "
            f"{finetune.context}-token windows, on {lm.device.type}, {lm.precision}; "
            f"checkpoints in {out_dir}",
            file=sys.stderr,
        )
        before = lm.estimate_loss(lm.val_batches, 2)  # the batches every evaluation uses
        print(f"before fine-tuning: val loss {before:.4f}", file=sys.stderr)
    elif dist.is_main:
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
        data = f" --data {shlex.quote(cfg.data.path)}" if cfg.data.path else ""
        print(
            f"interrupted at step {result.step}; the checkpoint in {out_dir} is complete; "
            f"continue with: glassformer train --out {out_dir} --resume{data}"
            if finetune is None or not finetune.lora
            else f"interrupted at step {result.step}; {out_dir} holds the adapters merged so far;"
            f" go on with: glassformer train --init-from {out_dir} --lora-rank "
            f"{finetune.lora_rank} --out NEW_DIR",
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
