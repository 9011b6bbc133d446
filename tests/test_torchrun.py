"""The README's `torchrun --standalone --nproc-per-node 2 -m glassformer train ...` runs as
written: the step keeps the config's batch (grad_accum x batch_size sequences, split over the
processes), so the losses equal one process's; only rank 0 logs, writes and samples."""

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from glassformer.core.metrics import read_metrics

pytestmark = pytest.mark.slow

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_torchrun() -> list[str]:
    """The README's command up to its `...`, as a list of arguments."""
    text = " ".join(README.read_text(encoding="utf-8").split())
    found = re.search(r"`(torchrun [^`]*?) \.\.\.`", text)
    assert found, "the README no longer shows a torchrun command"
    return shlex.split(found.group(1))


def test_the_readme_torchrun_command(tmp_path, small_corpus):
    command = readme_torchrun()
    assert command[0] == "torchrun" and command[-2:] == ["glassformer", "train"]
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    assert torchrun, "torch installs torchrun beside its Python"
    # tiny: grad_accum 1 x batch_size 4, which the two processes split into 2 + 2 sequences
    args = ["--preset", "tiny", "--data", str(small_corpus), "--max-steps", "6",
            "--train.precision", "fp32", "--train.eval_interval", "3", "--quiet"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    two = subprocess.run(
        [torchrun, *command[1:], *args, "--out", str(tmp_path / "two")],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert two.returncode == 0, two.stderr[-3000:]
    one = subprocess.run(
        [sys.executable, "-m", "glassformer", "train", *args, "--out", str(tmp_path / "one")],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert one.returncode == 0, one.stderr[-3000:]

    losses = {
        run: [r["train_loss"] for r in read_metrics(tmp_path / run / "metrics.jsonl")]
        for run in ("one", "two")
    }
    assert len(losses["one"]) == len(losses["two"]) == 6  # one writer: no line twice
    assert max(abs(a - b) for a, b in zip(*losses.values(), strict=True)) < 1e-5
    # rank 0 alone logs the eval lines and prints the sample
    assert len(re.findall(r"step 3/6 \|", two.stderr)) == 1, two.stderr
    assert len(re.findall(r"step 6/6 \|", two.stderr)) == 1, two.stderr
    assert two.stdout.count("---- sample ----") == 1, two.stdout
    assert two.stderr.count("checkpoint: ") == 1 and two.stderr.count("training a ") == 1
