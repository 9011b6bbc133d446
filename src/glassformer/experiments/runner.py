"""Run one experiment: every variant, several seeds, one budget, the same data.

An `Experiment` is a question, a base configuration and a list of `Variant`s that each change
a few fields of it. `run_experiment` trains each variant with seeds 0..K-1 through the
project's language-model run (`train/lm.py`: the same data, model and loop as `glassformer
train`), all under one budget:

- a time budget: `budget` seconds of training for the whole experiment, shared equally by
  the runs (each run stops after `budget / (variants x seeds)` seconds of training steps;
  evaluation is not counted), or
- a step budget: every run trains exactly `steps` optimizer steps (fair on a busy machine,
  where a time budget gives whoever ran while the CPU was free more steps).

A run is the language-model run unless the experiment names its own (`Experiment.run`: the
`cross-attention` experiment trains the encoder-decoder of the `dates` task on the data that
task generates). Each run's folder keeps its checkpoint and `metrics.jsonl`; the experiment
folder gets the summary `results.json`, `curves.png` and `report.md` (see report.py).

Runs use one CPU thread (`threads`): these models are so small that a second thread gains
little, and on a CPU shared with other work two threads waiting on each other made a step
80x slower in our measurement (3.3 s against 40 ms).
"""

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from glassformer.core.files import atomic_write
from glassformer.core.metrics import read_metrics
from glassformer.errors import UserError
from glassformer.experiments.report import write_plot, write_report
from glassformer.experiments.stats import finite_or_none, summarize
from glassformer.train.config import RunConfig
from glassformer.train.lm import LanguageModelRun
from glassformer.train.presets import get_preset


@dataclass
class Variant:
    """One arm of an experiment: a label and the fields it sets (`"model.n_head": 2`)."""

    name: str
    overrides: dict
    model: Callable | None = None  # (cfg) -> the model config to train instead of cfg.model


@dataclass
class Experiment:
    name: str
    question: str
    variants: list[Variant]
    base: Callable[[], RunConfig]
    default_budget: float  # seconds of training for the whole experiment
    budget_text: str = ""  # the docs table's default budget, when not "`default_budget` s"
    default_seeds: int = 3
    eval_interval: int = 50  # steps between evaluations (the resolution of the curves)
    on_eval: Callable | None = None  # (run) -> dict: extra numbers at each evaluation
    measure: Callable | None = None  # (run) -> dict: extra numbers after training
    extra: Callable | None = None  # (out_dir, budget_s) -> dict: a measurement of its own
    conclude: Callable | None = None  # (results) -> list of Markdown lines: the answer
    curve_metrics: tuple[str, ...] = ()  # on_eval keys to plot next to the loss
    notes: str = ""  # what the setup is and why, shown in the report
    table_metrics: tuple[str, ...] = ()  # measure/on_eval keys shown in the report's table
    expect_divergence: bool = False  # a non-finite loss is a result, not an error
    # (cfg, run_dir, on_eval=, model_config=, progress=, log=) -> .run(), .model, .trainer;
    # its evaluations record "val_loss"
    run: Callable = LanguageModelRun
    data: str | None = None  # the data `run` generates itself (then --data is refused)
    # An experiment that trains no variants (decoding: strategies compared on one model)
    # measures them itself, (exp, out_dir, budget, steps, seeds, data, log, progress) ->
    # results, and draws and tabulates them: plot(results, path), table(results) -> lines
    measure_all: Callable | None = None
    plot: Callable | None = None
    table: Callable | None = None
    plot_caption: str = "val loss against wall time and steps"  # its alt text on the docs page
    run_kwargs: dict = field(default_factory=dict)


def base_config() -> RunConfig:
    """The small char-level GPT all experiments start from (about 0.1 M parameters).

    2 layers, width 64, 4 heads, context 64, batch 16, peak lr 3e-3 with a short warmup:
    small enough that a few hundred steps on 2 CPU cores show the differences we ask about.
    fp32 everywhere: at this size bf16 autocast is slower even on a CPU with AVX512-BF16
    (measured 127 ms against 44 ms a step), and one precision keeps runs comparable.
    """
    cfg = get_preset("nanogpt-cpu")
    cfg.model.n_layer, cfg.model.n_embd, cfg.model.n_head = 2, 64, 4
    cfg.model.block_size = 64
    cfg.train.batch_size = 16
    cfg.train.lr, cfg.train.min_lr, cfg.train.warmup_steps = 3e-3, 3e-4, 20
    cfg.train.eval_iters = 10
    cfg.train.sample_tokens = 0
    cfg.train.precision = "fp32"
    return cfg


def apply(cfg: RunConfig, overrides: dict) -> RunConfig:
    """Set dotted fields (`{"model.n_head": 2}`) on `cfg` and re-validate it."""
    for key, value in overrides.items():
        section, name = key.split(".")
        if not hasattr(getattr(cfg, section), name):
            raise ValueError(f"unknown config field {key}")
        setattr(getattr(cfg, section), name, value)
    cfg.validate()
    return cfg


def run_experiment(
    exp: Experiment,
    out_dir: str | Path,
    budget: float | None = None,
    steps: int | None = None,
    seeds: int | None = None,
    data: str = "",
    log: Callable[[str], None] = print,
    threads: int = 1,
    progress: bool = False,
) -> dict:
    """Train every variant with every seed; write results.json, curves.png and report.md.

    `progress`: one bar over all the runs, with the time left, on a terminal's stderr.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return _run(exp, Path(out_dir), budget, steps, seeds, data, log, progress)
    finally:
        torch.set_num_threads(before)


def _run(exp, out_dir, budget, steps, seeds, data, log, progress) -> dict:
    if exp.measure_all is not None:
        results = exp.measure_all(exp, out_dir, budget, steps, seeds, data, log, progress)
        write_outputs(exp, results, out_dir)
        return results
    if data and exp.data is not None:
        raise UserError(f"experiment {exp.name} trains on {exp.data} it generates; drop --data")
    seeds = exp.default_seeds if seeds is None else seeds
    n_runs = len(exp.variants) * seeds
    bar = tqdm(
        total=n_runs,
        unit="run",
        desc=exp.name,
        dynamic_ncols=True,
        disable=None if progress else True,  # None: shown on a terminal only
        file=sys.stderr,
    )
    if steps is None:
        budget = exp.default_budget if budget is None else budget
        per_run = budget / n_runs
    started = time.perf_counter()
    variants = {}
    for variant in exp.variants:
        runs = []
        for seed in range(seeds):
            cfg = apply(exp.base(), variant.overrides)
            cfg.data.path = data
            cfg.train.seed = seed
            cfg.train.eval_interval = exp.eval_interval
            if steps is not None:
                cfg.train.max_steps, cfg.train.time_budget = steps, 0.0
                cfg.train.eval_interval = max(1, min(exp.eval_interval, steps // 8))
            else:
                cfg.train.max_steps, cfg.train.time_budget = 10**6, per_run
            log(f"[{exp.name}] {variant.name} seed {seed}")
            runs.append(_one_run(exp, variant, cfg, out_dir / "runs" / f"{variant.name}-s{seed}"))
            bar.update(1)
        variants[variant.name] = {
            "overrides": variant.overrides,
            "params": runs[0]["params"],
            "runs": runs,
            "summary": summarize([r["final_val_loss"] for r in runs]),
        }
    bar.close()
    results = {
        "experiment": exp.name,
        "question": exp.question,
        "budget": {"steps": steps} if steps is not None else {"seconds": budget},
        "seeds": seeds,
        "threads": torch.get_num_threads(),
        "data": exp.data or data or "embedded Python documentation",
        "base_config": exp.base().to_dict(),
        "variants": variants,
    }
    if exp.extra is not None:
        results["extra"] = exp.extra(out_dir, per_run if steps is None else None)
    results["wall_time_s"] = round(time.perf_counter() - started, 1)
    write_outputs(exp, results, out_dir)
    return results


def write_outputs(exp: Experiment, results: dict, out_dir: Path) -> None:
    """State the answer, then write results.json, curves.png and report.md."""
    results["answer"] = exp.conclude(results) if exp.conclude else []
    out_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(finite_or_none(results), indent=1)
    atomic_write(out_dir / "results.json", lambda tmp: tmp.write_text(text))
    write_plot(exp, results, out_dir / "curves.png")
    write_report(exp, results, out_dir / "report.md")


def refresh(out_dir: str | Path) -> dict:
    """Rewrite the answer, plot and report of a finished experiment from its results.json
    with the current code (after a change to how results are summarised), without training.
    """
    from glassformer.experiments import get_experiment

    out_dir = Path(out_dir)
    results = json.loads((out_dir / "results.json").read_text(encoding="utf-8"))
    exp = get_experiment(results["experiment"])
    for v in results["variants"].values() if exp.measure_all is None else ():
        v["summary"] = summarize([r["final_val_loss"] for r in v["runs"]])
    write_outputs(exp, results, out_dir)
    return results


def _one_run(exp: Experiment, variant: Variant, cfg: RunConfig, run_dir: Path) -> dict:
    quiet = {"progress": False, "log": lambda msg: None}
    lm = exp.run(cfg, run_dir, on_eval=exp.on_eval, model_config=variant.model, **quiet)
    diverged = None
    try:
        lm.run()
    except UserError as e:  # the trainer's only UserError inside run(): divergence (a
        if not exp.expect_divergence:  # non-finite or exploding loss, train/trainer.py)
            raise
        diverged = str(e)
    path = run_dir / "metrics.jsonl"  # absent if the very first step diverged
    records = read_metrics(path) if path.exists() else []
    evals = [r for r in records if "val_loss" in r]
    curve = [{k: v for k, v in r.items() if k not in ("lr", "tokens_per_s")} for r in evals]
    last = records[-1] if records else {"step": 0, "elapsed_s": 0.0}
    run = {
        "seed": cfg.train.seed,
        "params": lm.model.num_params(),
        "steps": lm.trainer.step,
        "train_time_s": last["elapsed_s"],
        "final_val_loss": float("nan") if diverged else (evals[-1]["val_loss"] if evals else None),
        "diverged": diverged,
        "curve": curve,
    }
    if exp.measure is not None and not diverged:
        run.update(exp.measure(lm))
    return run
