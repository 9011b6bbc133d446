"""The task training loop: the same optimizer and schedule as `glassformer train`.

    for step in range(max_steps):                 (or until the time budget is spent)
        loss = task_loss(model, batch(step))      each task makes its own batches
        loss.backward(); clip; AdamW step at the scheduled learning rate
        every eval_every steps: held-out numbers -> log line + metrics.jsonl

AdamW groups and the warmup + cosine schedule are `train/optim.py`'s, so a task differs from
language-model training only in its data and its loss.
"""

import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from glassformer.errors import UserError
from glassformer.train.config import TrainConfig
from glassformer.train.metrics import MetricsLog
from glassformer.train.optim import learning_rate, make_optimizer


@dataclass
class LoopSettings:
    max_steps: int
    lr: float = 1e-3
    min_lr: float = 1e-4
    warmup_steps: int = 100
    time_budget: float = 0.0
    eval_every: int = 250
    seed: int = 1337
    progress: bool = True


def fit(
    model: torch.nn.Module,
    step_loss: Callable[[int], torch.Tensor],
    evaluate: Callable[[], dict],
    s: LoopSettings,
    out_dir: Path,
    log: Callable[[str], None] = lambda msg: tqdm.write(msg, file=sys.stderr),
) -> dict:
    """Train `model` with `step_loss(step)` until max_steps or the time budget; return the
    final `evaluate()` results plus `steps` and `train_seconds`."""
    cfg = TrainConfig(
        lr=s.lr,
        min_lr=s.min_lr,
        warmup_steps=min(s.warmup_steps, s.max_steps),
        max_steps=s.max_steps,
        beta2=0.98,
        weight_decay=0.01,
    )
    optimizer = make_optimizer(model, cfg, torch.device("cpu"))
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics = MetricsLog(out_dir / "metrics.jsonl")
    bar = tqdm(
        total=s.max_steps, unit="step", disable=None if s.progress else True, file=sys.stderr
    )
    elapsed, step, results = 0.0, 0, {}
    model.train()
    try:
        while step < s.max_steps and not (s.time_budget and elapsed >= s.time_budget):
            t0 = time.perf_counter()
            progress = max(step / s.max_steps, elapsed / s.time_budget if s.time_budget else 0)
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(cfg, step, progress)
            loss = step_loss(step)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            elapsed += time.perf_counter() - t0
            step += 1
            value = loss.item()
            if not math.isfinite(value):
                raise UserError(f"the loss became {value} at step {step}: lower the learning rate")
            record = {"step": step, "train_loss": value, "elapsed_s": round(elapsed, 3)}
            bar.update(1)
            bar.set_postfix(loss=f"{value:.4f}", refresh=False)
            last = step == s.max_steps or bool(s.time_budget and elapsed >= s.time_budget)
            if last or step % s.eval_every == 0:
                model.eval()
                with torch.no_grad():
                    results = evaluate()
                model.train()
                record.update(results)
                shown = " | ".join(
                    f"{k} {v:.4f}" for k, v in results.items() if isinstance(v, float)
                )
                log(f"step {step}/{s.max_steps} | train loss {value:.4f} | {shown}")
            metrics.write(record)
    finally:
        bar.close()
        metrics.close()
    model.eval()
    return {**results, "steps": step, "train_seconds": round(elapsed, 1)}
