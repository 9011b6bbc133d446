"""FSDP2 (`--train.parallel fsdp`) on 2 processes (gloo) equals 1 process: the same per-step
losses, and a checkpoint of whole weights that one process loads; it resumes in another mode."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from glassformer import checkpoint
from glassformer.core.metrics import read_metrics

pytestmark = pytest.mark.slow

# 10 steps of 2 micro-batches (FSDP's gradient sync waits for the last), a checkpoint at step 5
ARGS = ["--preset", "tiny", "--quiet", "--max-steps", "10", "--train.grad_accum", "2",
        "--train.eval_interval", "5", "--train.precision", "fp32",
        "--train.sample_tokens", "8"]  # fmt: skip
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def train(out: Path, *args: str, processes: int = 1) -> subprocess.CompletedProcess:
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    assert torchrun, "torch installs torchrun beside its Python"
    launch = [sys.executable]
    if processes > 1:
        launch = [torchrun, "--standalone", "--nproc-per-node", str(processes)]
    return subprocess.run(
        [*launch, "-m", "glassformer", "train", *args, "--out", str(out)],
        capture_output=True, text=True, timeout=300, env=ENV,
    )  # fmt: skip


def losses(out: Path) -> list[float]:
    return [r["train_loss"] for r in read_metrics(out / "metrics.jsonl")]


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    """The reference: the same run in one process (corpus shared by the runs of this file)."""
    root = tmp_path_factory.mktemp("fsdp")
    corpus = root / "corpus.txt"
    corpus.write_text(
        (Path(__file__).parent / "data" / "tinyshakespeare_excerpt.txt").read_text()[:20_000]
    )
    run = train(root / "one", *ARGS, "--data", str(corpus))
    assert run.returncode == 0, run.stderr[-3000:]
    return root, corpus


def test_fsdp_matches_one_process_and_saves_whole_weights(one_process):
    root, corpus = one_process
    run = train(root / "fsdp", *ARGS, "--data", str(corpus), "--train.parallel", "fsdp",
                processes=2)  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    one, two = losses(root / "one"), losses(root / "fsdp")
    assert len(one) == len(two) == 10
    assert max(abs(a - b) for a, b in zip(one, two, strict=True)) < 1e-5
    assert one[-1] < one[0]
    assert run.stdout.count("---- sample ----") == 1  # from the unsharded copy, on rank 0

    # the checkpoint holds whole tensors, in the one-process layout
    single, _ = checkpoint.load(root / "one")
    sharded_run, _ = checkpoint.load(root / "fsdp")
    expected, got = single.state_dict(), sharded_run.state_dict()
    assert list(got) == list(expected)
    for name, tensor in expected.items():
        torch.testing.assert_close(got[name], tensor, atol=1e-5, rtol=0, msg=name)


def test_an_fsdp_run_resumes_exactly_under_tensor_parallelism(one_process):
    """Stopped at step 5 with fsdp, resumed with tp: the whole optimizer state is cut anew."""
    root, corpus = one_process
    out = root / "resumed"
    first = train(out, *ARGS, "--data", str(corpus), "--train.parallel", "fsdp",
                  "--stop-after", "5", processes=2)  # fmt: skip
    assert first.returncode == 0, first.stderr[-3000:]
    assert len(losses(out)) == 5
    rest = train(out, "--resume", "--data", str(corpus), "--quiet", "--train.parallel", "tp",
                 processes=2)  # fmt: skip
    assert rest.returncode == 0, rest.stderr[-3000:]
    one, resumed = losses(root / "one"), losses(out)
    assert len(resumed) == 10
    assert max(abs(a - b) for a, b in zip(one, resumed, strict=True)) < 1e-5


def test_an_unknown_parallel_mode_is_one_sentence(tmp_path):
    run = train(tmp_path / "out", "--preset", "tiny", "--train.parallel", "pipeline")
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [
        "glassformer: error: invalid setting: train.parallel must be one of ddp, fsdp, tp; "
        "got 'pipeline'"
    ]
    assert not (tmp_path / "out").exists()
