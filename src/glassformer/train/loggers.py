"""Where the training scalars go besides `metrics.jsonl`: `--log tensorboard,csv,wandb,mlflow`.

Each logger receives the same records as `metrics.jsonl` (`{"step": 100, "train_loss":
2.31, "lr": 0.0006, ...}`) and writes their numbers under the same names. A backend's
package is imported only when it is asked for, and a missing one is one sentence:

    tensorboard   RUN/tensorboard/ event files (torch.utils.tensorboard; pip install tensorboard)
                  -> tensorboard --logdir RUN/tensorboard
    csv           RUN/metrics.csv, one row per scalar: step,name,value
    wandb         a Weights & Biases run (pip install wandb; WANDB_MODE=offline works offline)
    mlflow        an MLflow run (pip install mlflow; MLFLOW_TRACKING_URI, else ./mlruns)
"""

import csv
from pathlib import Path
from typing import Protocol

from glassformer.errors import UserError

LOGGERS = ("tensorboard", "csv", "wandb", "mlflow")


class Logger(Protocol):
    def write(self, record: dict) -> None: ...

    def close(self) -> None: ...


def scalars(record: dict) -> dict[str, float]:
    """The numbers of a record, without its step."""
    return {
        k: float(v)
        for k, v in record.items()
        if k != "step" and isinstance(v, int | float) and not isinstance(v, bool)
    }


def _need(package: str):
    """Import the backend `package` (named as on PyPI and in --log) or say how to get it."""
    import importlib

    try:
        return importlib.import_module(package)
    except ImportError:
        raise UserError(f"--log {package} needs the {package} package; pip install it") from None


class TensorBoardLogger:
    def __init__(self, out_dir: Path, resume_step: int | None):
        _need("tensorboard")
        from torch.utils.tensorboard import SummaryWriter

        # purge_step drops the events a resumed run is about to write again
        self.writer = SummaryWriter(str(out_dir / "tensorboard"), purge_step=resume_step)

    def write(self, record: dict) -> None:
        for name, value in scalars(record).items():
            self.writer.add_scalar(name, value, record["step"])
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class CSVLogger:
    """Long format (step,name,value): the set of scalars may differ from step to step."""

    def __init__(self, out_dir: Path, resume_step: int | None):
        self.path = out_dir / "metrics.csv"
        rows = []
        if resume_step is not None and self.path.exists():
            with open(self.path, newline="", encoding="utf-8") as f:
                rows = [r for r in csv.DictReader(f) if int(r["step"]) <= resume_step]
        self._file = open(self.path, "w", newline="", encoding="utf-8")
        self._csv = csv.writer(self._file)
        self._csv.writerow(["step", "name", "value"])
        self._csv.writerows([r["step"], r["name"], r["value"]] for r in rows)
        self._file.flush()

    def write(self, record: dict) -> None:
        self._csv.writerows([record["step"], k, v] for k, v in scalars(record).items())
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class WandbLogger:
    def __init__(self, out_dir: Path, config: dict):
        self.wandb = _need("wandb")
        self.run = self.wandb.init(
            project="glassformer", name=out_dir.name, dir=str(out_dir), config=config
        )

    def write(self, record: dict) -> None:
        self.run.log(scalars(record), step=record["step"])

    def close(self) -> None:
        self.run.finish()


class MLflowLogger:
    def __init__(self, out_dir: Path, config: dict):
        self.mlflow = _need("mlflow")
        self.mlflow.start_run(run_name=out_dir.name)
        self.mlflow.log_params(
            {f"{section}.{k}": v for section, values in config.items() for k, v in values.items()}
            if all(isinstance(v, dict) for v in config.values())
            else config
        )

    def write(self, record: dict) -> None:
        self.mlflow.log_metrics(scalars(record), step=record["step"])

    def close(self) -> None:
        self.mlflow.end_run()


def logger_names(kinds: str) -> list[str]:
    """ "tensorboard, csv" -> ["tensorboard", "csv"], each checked to be a logger."""
    names = list(dict.fromkeys(k.strip() for k in kinds.split(",") if k.strip()))
    for name in names:
        if name not in LOGGERS:
            raise UserError(f"--log {name} is not a logger; choose from {', '.join(LOGGERS)}")
    return names


def open_loggers(
    kinds: str, out_dir: Path, config: dict, resume_step: int | None = None
) -> list[Logger]:
    """The loggers named in `kinds` ("tensorboard,csv"; "" = none), opened for `out_dir`."""
    out_dir = Path(out_dir)
    loggers: list[Logger] = []
    for name in logger_names(kinds):
        if name == "tensorboard":
            loggers.append(TensorBoardLogger(out_dir, resume_step))
        elif name == "csv":
            loggers.append(CSVLogger(out_dir, resume_step))
        elif name == "wandb":
            loggers.append(WandbLogger(out_dir, config))
        else:
            loggers.append(MLflowLogger(out_dir, config))
    return loggers
