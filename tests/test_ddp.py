"""Data-parallel training: 2 processes (gloo) == 1 process with 2 accumulated micro-batches."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from glassformer.core.metrics import read_metrics

pytestmark = pytest.mark.slow


def train_cmd(out: Path, corpus: Path) -> list[str]:
    return [
        "-m",
        "glassformer",
        "train",
        "--preset",
        "tiny",
        "--quiet",
        "--data",
        str(corpus),
        "--out",
        str(out),
        "--max-steps",
        "8",
        "--train.grad_accum",
        "2",
        "--train.precision",
        "fp32",
        "--train.sample_tokens",
        "0",
    ]


def test_two_processes_match_one_process_with_accumulation(tmp_path, small_corpus):
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or shutil.which(
        "torchrun"
    )
    if torchrun is None:
        pytest.skip("torchrun is not installed beside this Python")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    single = subprocess.run(
        [sys.executable, *train_cmd(tmp_path / "one", small_corpus)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert single.returncode == 0, single.stderr
    ddp = subprocess.run(
        [
            torchrun,
            "--standalone",
            "--nproc-per-node",
            "2",
            *train_cmd(tmp_path / "two", small_corpus),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    one = [r["train_loss"] for r in read_metrics(tmp_path / "one" / "metrics.jsonl")]
    two = [r["train_loss"] for r in read_metrics(tmp_path / "two" / "metrics.jsonl")]
    assert len(one) == len(two) == 8
    assert max(abs(a - b) for a, b in zip(one, two, strict=True)) < 1e-5
    assert one[-1] < one[0]
