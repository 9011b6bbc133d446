"""Tasks that show each transformer family at work: `glassformer train --task NAME`.

- `mlm`        encoder, masked-language-model pretraining on a text (BERT's objective);
- `sentiment`  encoder + classifier head, templated product reviews (negation, "but");
- `dates`      encoder-decoder with cross-attention, dates in 12 formats -> ISO 8601;
- `digits`     vision transformer, 8 x 8 handwritten digits as 16 patch tokens -> 0..9;
- `tones`      the same vision transformer on spectrograms: which of eight pitches.

Each trains in a few minutes on 2 CPU cores with its defaults, reports held-out numbers and
writes a checkpoint folder (`glassformer.checkpoint`; `glassformer.load(DIR)` reads it). They
train through the same Trainer as `glassformer train` (`tasks/run.py`). Measured results:
docs/families.md.
"""

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from glassformer.errors import UserError
from glassformer.tasks import dates, digits, mlm, reviews, tones
from glassformer.tasks.run import train_config


@dataclass(frozen=True)
class Task:
    settings: type
    train: Callable[..., dict]
    summary: str


TASKS = {
    "mlm": Task(mlm.MLMTask, mlm.train, "masked-LM pretraining of the encoder on --data"),
    "sentiment": Task(
        reviews.SentimentTask, reviews.train, "encoder classifier on templated reviews"
    ),
    "dates": Task(dates.DatesTask, dates.train, "encoder-decoder: dates -> ISO 8601"),
    "digits": Task(digits.DigitsTask, digits.train, "vision transformer: 8x8 digits -> 0..9"),
    "tones": Task(tones.TonesTask, tones.train, "vision transformer: spectrograms -> pitch"),
}


def run_task(
    name: str,
    out_dir: Path,
    max_steps: int | None = None,
    time_budget: float = 0.0,
    seed: int = 1337,
    data: str | None = None,
    progress: bool = True,
    log=None,
    resume: bool = False,
    stop_after: int | None = None,
) -> dict:
    """Train task `name` with its defaults (optionally fewer steps or a time budget);
    `resume` continues the run saved in `out_dir`, `stop_after` ends this run early."""
    if name not in TASKS:
        raise UserError(f"unknown task {name!r}; choose one of {', '.join(TASKS)}")
    task = TASKS[name]
    settings = task.settings()
    if data is not None:
        if not hasattr(settings, "data"):
            raise UserError(f"--data applies to the mlm task only; task {name!r} makes its own")
        settings = replace(settings, data=data)
    cfg = train_config(settings, max_steps, time_budget, seed)
    run = {"log": log, "progress": progress, "resume": resume, "stop_after": stop_after}
    return task.train(settings, cfg, Path(out_dir), **run)
