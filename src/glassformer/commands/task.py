"""`glassformer train --task NAME`: train one of the family tasks (`glassformer.tasks`)."""

import argparse
import json
import sys
from pathlib import Path

from glassformer import checkpoint
from glassformer.core.checked_paths import check_output_dir
from glassformer.core.lock import lock_for_run
from glassformer.errors import UserError


def run_task_command(args: argparse.Namespace) -> int:
    from glassformer.tasks import run_task

    ignored = [
        flag
        for flag, value in (
            ("--tokenizer", args.tokenizer),
            ("--vocab-size", args.vocab_size),
        )
        if value
    ]
    ignored += [
        "--" + k.removeprefix("cfg__").replace("__", ".")
        for k, v in vars(args).items()
        if k.startswith("cfg__") and v is not None
    ]
    if ignored:
        raise UserError(
            f"{ignored[0]} does not apply to --task {args.task}; tasks take --data (mlm), "
            "--max-steps, --time-budget, --seed, --out, --stop-after and --resume"
        )
    out_dir = Path(args.out or f"runs/task-{args.task}")
    check_output_dir(out_dir, inputs=[args.data], files=checkpoint.RUN_FILES)
    if args.resume and not out_dir.is_dir():
        raise UserError(f"cannot resume: {out_dir} does not exist; train without --resume")
    with lock_for_run(out_dir, f"glassformer train --task {args.task}"):
        print(f"task {args.task}: checkpoints and metrics in {out_dir}", file=sys.stderr)
        results = run_task(
            args.task,
            out_dir,
            max_steps=args.max_steps,
            time_budget=args.time_budget or 0.0,
            seed=1337 if args.seed is None else args.seed,
            data=args.data,
            progress=not args.quiet,
            resume=args.resume,
            stop_after=args.stop_after,
        )
    print(json.dumps(results, indent=2))
    return 0
