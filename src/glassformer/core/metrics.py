"""A run's `metrics.jsonl`: one JSON object per logged step (train/metrics.py writes it; the
curves view, the experiment runner and tests read it)."""

import json
from pathlib import Path


def read_metrics(path: Path) -> list[dict]:
    """The records of a metrics.jsonl file, in order; blank lines skipped."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]
