"""`--log tensorboard,csv`: the same scalars as metrics.jsonl, read back by TensorBoard's own
reader and by csv; a resumed run drops what it will write again; a missing backend package
is one sentence."""

import csv
import sys

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from glassformer.core.metrics import read_metrics
from glassformer.errors import UserError
from glassformer.train.loggers import open_loggers
from glassformer.train.metrics import MetricsLog

RECORDS = [
    {"step": 1, "train_loss": 3.5, "lr": 1e-3, "tokens_per_s": 100.0},
    {"step": 2, "train_loss": 3.0, "lr": 1e-3, "tokens_per_s": 110.0, "val_loss": 3.2},
    {"step": 3, "train_loss": 2.5, "lr": 5e-4, "tokens_per_s": 120.0},
]


def log(out, records, resume_step=None):
    metrics = MetricsLog(
        out / "metrics.jsonl", resume_step, open_loggers("tensorboard,csv", out, {}, resume_step)
    )
    for r in records:
        metrics.write(dict(r))
    metrics.close()


def scalars_in_jsonl(out) -> dict[str, list[tuple[int, float]]]:
    found: dict[str, list[tuple[int, float]]] = {}
    for r in read_metrics(out / "metrics.jsonl"):
        for k, v in r.items():
            if k != "step":
                found.setdefault(k, []).append((r["step"], float(v)))
    return found


def scalars_in_tensorboard(out) -> dict[str, list[tuple[int, float]]]:
    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    return {
        tag: [(e.step, pytest.approx(e.value)) for e in events.Scalars(tag)]
        for tag in events.Tags()["scalars"]
    }


def scalars_in_csv(out) -> dict[str, list[tuple[int, float]]]:
    found: dict[str, list[tuple[int, float]]] = {}
    with open(out / "metrics.csv", newline="") as f:
        for row in csv.DictReader(f):
            found.setdefault(row["name"], []).append((int(row["step"]), float(row["value"])))
    return found


def test_tensorboard_and_csv_hold_the_scalars_of_metrics_jsonl(tmp_path):
    log(tmp_path, RECORDS)
    expected = scalars_in_jsonl(tmp_path)
    assert expected["val_loss"] == [(2, 3.2)]
    assert scalars_in_tensorboard(tmp_path) == expected
    assert scalars_in_csv(tmp_path) == expected


def test_a_resumed_run_drops_what_it_writes_again(tmp_path):
    log(tmp_path, RECORDS)
    log(tmp_path, [{**RECORDS[2], "train_loss": 2.4}], resume_step=2)
    assert scalars_in_csv(tmp_path) == scalars_in_jsonl(tmp_path)
    assert scalars_in_csv(tmp_path)["train_loss"] == [(1, 3.5), (2, 3.0), (3, 2.4)]
    assert scalars_in_tensorboard(tmp_path)["train_loss"][-1] == (3, pytest.approx(2.4))


def test_unknown_or_missing_backends_are_one_sentence(tmp_path, monkeypatch):
    with pytest.raises(UserError, match="--log neptune is not a logger; choose from"):
        open_loggers("csv,neptune", tmp_path, {})
    monkeypatch.setitem(sys.modules, "wandb", None)  # as if not installed
    with pytest.raises(UserError, match="--log wandb needs the wandb package; pip install it"):
        open_loggers("wandb", tmp_path, {})
    assert open_loggers("", tmp_path, {}) == []
