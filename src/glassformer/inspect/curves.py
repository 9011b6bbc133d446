"""Training curves from a run's `metrics.jsonl` (one JSON object per step; see
core/metrics.py): train loss every step, validation loss at each evaluation, the learning
rate schedule and the throughput."""

from pathlib import Path

from glassformer.core.metrics import read_metrics
from glassformer.errors import UserError

SERIES = ("train_loss", "val_loss", "lr", "tokens_per_s")


def metrics_path(path: str | Path) -> Path:
    """A metrics.jsonl file, or a checkpoint folder that holds one."""
    path = Path(path)
    if path.is_dir():
        path = path / "metrics.jsonl"
    if not path.is_file():
        raise UserError(
            f"no training records at {path}; pass --model a folder written by glassformer train"
        )
    return path


def curves_view(path: str | Path) -> dict:
    path = metrics_path(path)
    try:
        records = read_metrics(path)
    except ValueError:
        raise UserError(f"{path} is not a metrics.jsonl file (a line is not JSON)") from None
    if not records:
        raise UserError(f"{path} holds no records yet; train for at least one step")
    series = {
        key: [[r["step"], r[key]] for r in records if isinstance(r.get(key), int | float)]
        for key in SERIES
    }
    return {
        "kind": "curves",
        "title": "Training curves",
        "source": str(path),
        "steps": records[-1]["step"],
        "series": {k: v for k, v in series.items() if v},
    }
