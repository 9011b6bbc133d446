"""`glassformer tour --yes` runs end to end (tiny budget) and shows what it promises."""

import re
from pathlib import Path

import pytest
import torch

from glassformer.cli import main
from glassformer.commands.tour import finite_differences


def test_tour_runs_through_every_step(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GLASSFORMER_CACHE", str(tmp_path / "cache"))
    assert main(["tour", "--yes", "--budget", "2", "--steps", "6"]) == 0
    out = capsys.readouterr().out
    titles = re.findall(r"== Step (\d)/6: ([^=]+?) =", out)
    assert [int(n) for n, _ in titles] == [1, 2, 3, 4, 5, 6]
    for word in ("Tokenization", "Embedding", "block", "Layer norm", "Attention", "Training"):
        assert any(word in title for _, title in titles), word
    root = Path(__file__).resolve().parents[1]
    for line in re.findall(r"^code: +(.+)$", out, flags=re.M):  # every file it names exists
        for path in line.split(", "):
            assert (root / path).exists() or Path(path).exists(), path
    assert (tmp_path / "cache" / "tour" / "pages" / "attention.html").exists()
    assert (tmp_path / "cache" / "tour" / "model" / "model.safetensors").exists()
    # the finite-difference table: four weights, each within 1e-6 of autograd
    diffs = re.findall(r"^  \S+\[\d+, \d+\] +[-+][\d.]+ +[-+][\d.]+ +([\d.e+-]+)$", out, re.M)
    assert len(diffs) == 4 and all(float(d) < 1e-6 for d in diffs)
    assert "step    6  train loss" in out

    # a second tour finds the cached model and does not train again
    assert main(["tour", "--yes", "--budget", "2", "--steps", "3"]) == 0
    assert "Training the tour's model first" not in capsys.readouterr().out


def test_finite_differences_agree_with_autograd():
    from glassformer import GPT, GPTConfig

    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=17, block_size=16, n_layer=2, n_head=2, n_embd=16))
    ids = torch.randint(0, 17, (2, 12))
    for name, index, fd, grad in finite_differences(model, ids[:, :-1], ids[:, 1:]):
        assert fd == pytest.approx(grad, abs=1e-7), (name, index)


def test_tour_rejects_bad_options(capsys):
    assert main(["tour", "--yes", "--budget", "0"]) == 2
    assert "--budget must be a positive" in capsys.readouterr().err
