"""`glassformer experiment NAME`: answer one lecture question by training its variants."""

import math
import sys
from pathlib import Path

from tqdm.auto import tqdm

from glassformer.core.checked_paths import check_input_file, check_output_dir
from glassformer.errors import UserError
from glassformer.experiments import NAMES, get_experiment


def add_parser(sub) -> None:
    p = sub.add_parser(
        "experiment",
        help="run an ablation experiment (heads, positions, scaling, norm, mask, ...)",
        description="Train every variant of one question on the same data with several "
        "seeds under one budget, then write curves.png, results.json and report.md "
        "(the measured answer with its uncertainty). Experiments: "
        + ", ".join(NAMES)
        + ". `decoding` compares the decoding strategies on one model: SmolLM2 when that is "
        "installed and no --budget, --steps or --data is given, else a char model it first "
        "trains under that budget.",
    )
    p.add_argument("name", metavar="NAME", help="one of: " + ", ".join(NAMES))
    p.add_argument(
        "--budget",
        metavar="SECONDS",
        help="seconds of training for the whole experiment, shared equally by its runs "
        "(default: the experiment's own, 150-200 s; with evaluation the whole run stays "
        "under 5 minutes on 2 CPU cores)",
    )
    p.add_argument(
        "--steps",
        metavar="N",
        help="instead of a time budget: train every run exactly N steps (fair on a busy CPU)",
    )
    p.add_argument(
        "--data",
        metavar="PATH",
        default="",
        help="a .txt file or folder (default: the embedded Python documentation)",
    )
    p.add_argument("--seeds", metavar="K", help="seeds per variant (default: the experiment's)")
    p.add_argument("--out", metavar="DIR", help="output folder (default: experiments/NAME)")
    p.set_defaults(func=run)


def _number(text: str | None, flag: str, kind, minimum: float) -> float | int | None:
    if text is None:
        return None
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or not math.isfinite(value) or value < minimum:
        what = "a whole number" if kind is int else "a number of seconds"
        raise UserError(f"{flag} must be {what} of at least {minimum:g}; got {text!r}")
    return value


def run(args) -> int:
    exp = get_experiment(args.name)
    budget = _number(args.budget, "--budget", float, 1.0)
    steps = _number(args.steps, "--steps", int, 1)
    seeds = _number(args.seeds, "--seeds", int, 1)
    if budget is not None and steps is not None:
        raise UserError("give either --budget SECONDS or --steps N, not both")
    if args.data and not Path(args.data).exists():
        raise UserError(f"--data {args.data} does not exist; give a .txt file or a folder")
    if args.data and not Path(args.data).is_dir():
        check_input_file(args.data, "--data")
    out = check_output_dir(args.out or Path("experiments") / exp.name, inputs=[args.data])
    from glassformer.experiments.runner import run_experiment

    run_experiment(
        exp,
        out,
        budget=budget,
        steps=steps,
        seeds=seeds,
        data=args.data,
        log=lambda msg: tqdm.write(msg, file=sys.stderr),  # above the progress bar
        progress=True,
    )
    print((out / "report.md").read_text(encoding="utf-8"))
    print(f"wrote {out / 'report.md'}, {out / 'results.json'} and {out / 'curves.png'}")
    return 0
