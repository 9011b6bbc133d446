"""Training records: `metrics.jsonl` (one JSON object per logged step), the same records to
the `--log` backends (loggers.py), and a loss-curve PNG."""

import json
from pathlib import Path

from glassformer.core.files import atomic_write
from glassformer.core.metrics import read_metrics
from glassformer.train.loggers import Logger


class MetricsLog:
    """Appends one JSON line per record (and hands it to `loggers`); on resume, drops records
    past the checkpoint's step."""

    def __init__(
        self, path: Path, resume_step: int | None = None, loggers: list[Logger] | None = None
    ):
        self.path = Path(path)
        self.loggers = loggers or []
        if resume_step is None:
            self.path.unlink(missing_ok=True)
        elif self.path.exists():
            kept = [r for r in read_metrics(self.path) if r["step"] <= resume_step]
            text = "".join(json.dumps(r) + "\n" for r in kept)
            atomic_write(self.path, lambda tmp: tmp.write_text(text))
        self._file = open(self.path, "a", encoding="utf-8")

    def write(self, record: dict) -> None:
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        for logger in self.loggers:
            logger.write(record)

    def close(self) -> None:
        self._file.close()
        for logger in self.loggers:
            logger.close()


def plot_loss_curve(metrics_path: Path, png_path: Path) -> None:
    """Train loss per step and val loss per evaluation, on one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_metrics(metrics_path)
    train = [(r["step"], r["train_loss"]) for r in records if "train_loss" in r]
    val = [(r["step"], r["val_loss"]) for r in records if "val_loss" in r]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    if train:
        ax.plot(*zip(*train, strict=True), lw=0.8, alpha=0.7, label="train loss")
    if val:
        ax.plot(*zip(*val, strict=True), "o-", label="val loss")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (nats/token)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    atomic_write(Path(png_path), lambda tmp: fig.savefig(tmp, format="png"))
    plt.close(fig)
