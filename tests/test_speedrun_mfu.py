"""MFU: FLOPs per token by hand, the cached peak measurement, MFU in the log and metrics."""

import json

import pytest
import torch

from glassformer.cli import main as cli_main
from glassformer.core.metrics import read_metrics
from glassformer.models.config import GPTConfig
from glassformer.models.gpt import GPT
from glassformer.train import mfu


@pytest.mark.parametrize("tie", [True, False])
def test_flops_per_token_counts_matmul_weights_and_attention(tie):
    c = GPTConfig(vocab_size=50, block_size=32, n_layer=3, n_head=2, n_embd=24, tie_weights=tie)
    model = GPT(c)
    per_layer = 3 * c.n_embd**2 + c.n_embd**2 + 2 * 4 * c.n_embd**2  # qkv, proj, fc, proj
    head = c.vocab_size * c.n_embd  # the head multiplies once, tied or not
    want = 6 * (c.n_layer * per_layer + head) + 12 * c.n_layer * c.block_size * c.n_embd
    assert mfu.flops_per_token(model) == want


def test_peak_is_measured_once_then_read_from_the_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("GLASSFORMER_CACHE", str(tmp_path))
    calls = []

    def fake(dtype, device):
        calls.append(dtype)
        return 1.5e11

    monkeypatch.setattr(mfu, "measure_matmul_peak", fake)
    cpu = torch.device("cpu")
    assert mfu.matmul_peak(torch.float32, cpu) == 1.5e11
    assert mfu.matmul_peak(torch.float32, cpu) == 1.5e11
    assert calls == [torch.float32]
    assert list(json.loads((tmp_path / "matmul_peak.json").read_text()).values()) == [1.5e11]


def test_measured_peak_is_a_real_rate_and_leaves_the_rng_alone():
    torch.manual_seed(0)
    before = torch.get_rng_state()
    rate = mfu.measure_matmul_peak(torch.float32, torch.device("cpu"), n=128, repeats=2)
    assert 1e6 < rate < 1e16  # FLOP/s: any real machine, however busy
    assert torch.equal(torch.get_rng_state(), before)


def test_mfu_is_logged_and_recorded(tmp_path, small_corpus, capsys):
    out = tmp_path / "run"
    args = ["train", "--preset", "tiny", "--data", str(small_corpus), "--out", str(out)]
    assert cli_main([*args, "--max-steps", "10", "--train.sample_tokens", "0"]) == 0
    assert "| MFU " in capsys.readouterr().err
    evals = [r for r in read_metrics(out / "metrics.jsonl") if "val_loss" in r]
    assert evals and all(0 < r["mfu"] < 1 for r in evals)
