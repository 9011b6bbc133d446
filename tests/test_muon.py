"""Muon: equal to torch.optim.Muon, orthogonal updates, the right parameter split, resume."""

import copy

import pytest
import torch

from glassformer.cli import main as cli_main
from glassformer.core.metrics import read_metrics
from glassformer.models.config import GPTConfig
from glassformer.models.gpt import GPT
from glassformer.train.config import TrainConfig
from glassformer.train.muon import Muon, MuonWithAdamW, hidden_matrices, orthogonalize
from glassformer.train.optim import make_optimizer


def test_orthogonalize_keeps_singular_vectors_and_flattens_singular_values():
    """Against torch.linalg.svd: U^T Q V is nearly diagonal, its diagonal in [0.6, 1.25]."""
    gen = torch.Generator().manual_seed(0)
    for shape in [(32, 8), (8, 32), (16, 16)]:
        G = torch.randn(*shape, generator=gen, dtype=torch.float64)
        U, S, Vh = torch.linalg.svd(G, full_matrices=False)
        Q = orthogonalize(G.float(), steps=5).double()
        core = U.T @ Q @ Vh.T  # (k, k): diagonal if Q = U f(S) V^T
        diag = torch.diagonal(core)
        off = core - torch.diag(diag)
        assert off.abs().max() < 2e-3, shape
        assert ((diag > 0.6) & (diag < 1.25)).all(), (shape, diag)


def test_batched_orthogonalize_equals_one_matrix_at_a_time():
    G = torch.randn(3, 24, 8, generator=torch.Generator().manual_seed(1))
    batched = orthogonalize(G)
    single = torch.stack([orthogonalize(g) for g in G])
    torch.testing.assert_close(batched, single, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("ns_dtype", [torch.bfloat16, torch.float32])
def test_muon_steps_like_torch_optim_muon(ns_dtype):
    """Three steps on several matrices (two of one shape, batched) vs PyTorch's own Muon.

    torch.optim.Muon always orthogonalises in bf16, and bf16 rounding through five
    Newton-Schulz iterations moves an update by ~1-3%: the total change of each matrix must
    agree with PyTorch's within 5% (measured: 2.6-3.1% in bf16, 1.0-1.4% in fp32).
    """
    gen = torch.Generator().manual_seed(2)
    shapes = [(16, 8), (16, 8), (8, 24), (12, 12)]
    ours = [torch.nn.Parameter(torch.randn(*s, generator=gen)) for s in shapes]
    ref = [torch.nn.Parameter(p.detach().clone()) for p in ours]
    start = [p.detach().clone() for p in ours]
    opt = Muon(ours, lr=0.05, momentum=0.9, ns_dtype=ns_dtype)
    ref_opt = torch.optim.Muon(ref, lr=0.05, momentum=0.9, weight_decay=0.0)
    for _ in range(3):
        grads = [torch.randn(*s, generator=gen) for s in shapes]
        for p, q, g in zip(ours, ref, grads, strict=True):
            p.grad, q.grad = g.clone(), g.clone()
        opt.step()
        ref_opt.step()
    for p, q, p0 in zip(ours, ref, start, strict=True):
        ours_change, ref_change = p.detach() - p0, q.detach() - p0
        assert (ours_change - ref_change).norm() / ref_change.norm() < 0.05


def test_muon_refuses_vectors():
    with pytest.raises(ValueError, match="2-D"):
        Muon([torch.nn.Parameter(torch.zeros(4))])


@pytest.mark.parametrize("tie", [True, False])
def test_hidden_matrices_are_the_block_linears(tie):
    model = GPT(GPTConfig(vocab_size=20, block_size=8, n_layer=2, n_head=2, n_embd=16,
                          tie_weights=tie))  # fmt: skip
    got = {id(p) for p in hidden_matrices(model)}
    want = {
        id(m.weight)
        for block in model.blocks
        for m in (block.attn.qkv, block.attn.proj, block.mlp.fc, block.mlp.proj)
    }
    assert got == want
    assert id(model.tok_emb.weight) not in got and id(model.lm_head.weight) not in got


def test_make_optimizer_splits_parameters_and_scales_muon_lr():
    model = GPT(GPTConfig(vocab_size=20, block_size=8, n_layer=2, n_head=2, n_embd=16))
    cfg = TrainConfig(optimizer="muon", lr=2e-3, muon_lr=0.04)
    opt = make_optimizer(model, cfg, torch.device("cpu"))
    assert isinstance(opt, MuonWithAdamW)
    in_groups = [id(p) for g in opt.param_groups for p in g["params"]]
    assert sorted(in_groups) == sorted(id(p) for p in model.parameters())  # each exactly once
    muon_group = opt.muon.param_groups[0]
    assert muon_group["lr_scale"] * cfg.lr == pytest.approx(cfg.muon_lr)
    assert all(p.dim() == 2 for p in muon_group["params"])


def test_state_dict_round_trip_continues_identically():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=20, block_size=8, n_layer=1, n_head=2, n_embd=16))
    cfg = TrainConfig(optimizer="muon")
    x = torch.randint(0, 20, (4, 8))

    def step(m, o):
        _, loss = m(x, x)
        loss.backward()
        o.step()
        o.zero_grad()

    opt = make_optimizer(model, cfg, torch.device("cpu"))
    step(model, opt)
    clone = copy.deepcopy(model)
    opt2 = make_optimizer(clone, cfg, torch.device("cpu"))
    opt2.load_state_dict(copy.deepcopy(opt.state_dict()))
    step(model, opt), step(clone, opt2)
    for a, b in zip(model.parameters(), clone.parameters(), strict=True):
        torch.testing.assert_close(a, b, atol=0, rtol=0)
    with pytest.raises(ValueError, match="Muon"):
        opt2.load_state_dict(torch.optim.SGD(model.parameters(), lr=1).state_dict())


def _train(*args) -> int:
    return cli_main(["train", "--preset", "tiny", "--quiet", "--train.precision", "fp32",
                     "--train.sample_tokens", "0", "--train.optimizer", "muon", *args])  # fmt: skip


def test_muon_training_learns_and_resumes_exactly(tmp_path, small_corpus):
    common = ["--data", str(small_corpus), "--max-steps", "12"]
    assert _train(*common, "--out", str(tmp_path / "full")) == 0
    assert _train(*common, "--out", str(tmp_path / "split"), "--stop-after", "5") == 0
    assert _train(*common, "--out", str(tmp_path / "split"), "--resume") == 0
    full = read_metrics(tmp_path / "full" / "metrics.jsonl")
    split = read_metrics(tmp_path / "split" / "metrics.jsonl")
    assert [r["train_loss"] for r in full] == [r["train_loss"] for r in split]
    assert full[-1]["train_loss"] < full[0]["train_loss"]
