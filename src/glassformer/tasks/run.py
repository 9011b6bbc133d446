"""A task run: the task's model, batches, loss and held-out numbers, trained by the one Trainer.

    torch.manual_seed(seed); model = task.model(vocab)
    Trainer(model, cfg, batches, loss, evaluate=held-out numbers, save=checkpoint folder).run()

A task differs from language-model training (`train/lm.py`) only in its data, its loss and
what it measures: the loop, the AdamW groups, the warmup + cosine schedule, metrics.jsonl,
Ctrl-C handling and `resume` are the Trainer's. The folder is written by the one writer
(`glassformer.checkpoint.save`): config.json holds the "task" name and its held-out
"results", and `glassformer.load(folder)` reads it back.
"""

import random
from collections.abc import Callable
from pathlib import Path

import torch

from glassformer import checkpoint
from glassformer.errors import UserError
from glassformer.train.config import TrainConfig
from glassformer.train.trainer import Trainer


def train_config(task, max_steps: int | None = None, time_budget: float = 0.0, seed: int = 1337):
    """The TrainConfig of a task's settings: AdamW (beta2 0.98, weight decay 0.01), peak lr
    `task.lr` decaying to a tenth, 10% warmup (at most 100 steps), six evaluations, fp32 on
    the CPU (the held-out measurements build their tensors there)."""
    steps = task.max_steps if max_steps is None else max_steps
    return TrainConfig(
        batch_size=task.batch_size,
        max_steps=steps,
        time_budget=time_budget,
        lr=task.lr,
        min_lr=task.lr / 10,
        warmup_steps=min(100, steps // 10),
        beta2=0.98,
        weight_decay=0.01,
        eval_interval=max(1, steps // 6),
        seed=seed,
        device="cpu",
        precision="fp32",
        sample_tokens=0,
    )


def python_rng(gen: torch.Generator) -> random.Random:
    """A `random.Random` seeded from the Trainer's batch generator, for tasks that generate
    their examples in Python: the batches of a resumed run are then the ones it would have had."""
    return random.Random(int(torch.randint(2**62, (), generator=gen)))


def train_task(
    name: str,
    model: torch.nn.Module,
    vocab,
    cfg: TrainConfig,
    out_dir: str | Path,
    batches: Callable[[int, torch.Generator], tuple[torch.Tensor, ...]],
    loss: Callable[[torch.nn.Module, tuple[torch.Tensor, ...]], torch.Tensor],
    evaluate: Callable[[], dict],
    extra: dict | None = None,
    log: Callable[[str], None] | None = None,
    progress: bool = True,
    resume: bool = False,
    stop_after: int | None = None,
) -> dict:
    """Train task `name`'s model, saving its folder at each evaluation; return the final
    held-out numbers, `extra` (e.g. the size of the held-out set), `steps` and `train_seconds`.
    `resume` continues the run saved in `out_dir`; `stop_after` ends this run after that many
    steps with a checkpoint, as an interruption would."""
    out_dir = Path(out_dir)
    state = None
    if resume:
        meta = checkpoint.read_meta(out_dir)
        if meta.get("task") != name:
            raise UserError(
                f"{out_dir} holds no {name} task run to resume; pass the --out folder of "
                f"`glassformer train --task {name}`, or train without --resume"
            )
        state = checkpoint.resume(out_dir, model, log)

    def results() -> dict:
        done = {"steps": trainer.step, "train_seconds": round(trainer.elapsed, 1)}
        return {**trainer.evaluation, **(extra or {}), **done}

    def save(trainer_state: dict) -> None:
        meta = {"task": name, "results": results()}
        checkpoint.save(out_dir, trainer.whole_model, vocab, meta, trainer_state)  # unsharded

    trainer = Trainer(
        model,
        cfg,
        batches,
        loss,
        out_dir,
        evaluate=torch.no_grad()(evaluate),
        save=save,
        state=state,
        progress=progress,
        log=log,
    )
    trainer.run(stop_after)
    model.eval()
    return results()
