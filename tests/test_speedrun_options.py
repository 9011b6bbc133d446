"""The speedrun recipe's model options each do what they say; the preset trains; the CPU
bf16 attention path equals fp32 attention; the speedrun's exact validation loss."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from glassformer.inspect.cache import run_with_cache
from glassformer.models.config import GPTConfig
from glassformer.models.gpt import GPT
from glassformer.nn.attention import attend
from glassformer.nn.hooks import HookPoint
from glassformer.train.presets import get_preset


def small(**kw) -> GPTConfig:
    return GPTConfig(
        **{"vocab_size": 30, "block_size": 16, "n_layer": 2, "n_head": 2, "n_embd": 16, **kw}
    )


def ids(seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 30, (3, 16), generator=torch.Generator().manual_seed(seed))


def test_zero_init_proj_makes_every_block_start_as_the_identity():
    torch.manual_seed(0)
    model = GPT(small(zero_init_proj=True))
    x = torch.randn(2, 16, 16)
    pos = torch.arange(16)
    for block in model.blocks:
        torch.testing.assert_close(block(x, pos), x, atol=0, rtol=0)
    assert not torch.equal(GPT(small()).blocks[0](x, pos), x)


def test_logit_softcap_is_cap_tanh_of_the_raw_logits():
    torch.manual_seed(0)
    model = GPT(small(logit_softcap=2.0))
    with torch.no_grad():
        model.lm_head.weight.mul_(200)  # raw logits far beyond the cap
    (logits, _), cache = run_with_cache(model, ids(), names=["final"])
    raw = model.lm_head(cache["final"])
    torch.testing.assert_close(logits, 2.0 * torch.tanh(raw / 2.0))
    assert logits.abs().max() <= 2.0 and raw.abs().max() > 4.0


def test_relu2_activation_is_relu_squared():
    torch.manual_seed(0)
    _, cache = run_with_cache(GPT(small(activation="relu2")), ids(), names=lambda n: "mlp" in n)
    pre, post = cache["blocks.0.mlp.pre"], cache["blocks.0.mlp.post"]
    torch.testing.assert_close(post, F.relu(pre) ** 2)


@pytest.mark.parametrize("pos_emb", ["learned", "rotary"])
def test_qk_norm_gives_unit_rms_queries_and_keys(pos_emb):
    torch.manual_seed(0)
    model = GPT(small(qk_norm=True, pos_emb=pos_emb))
    _, cache = run_with_cache(model, ids(), names=["blocks.1.attn.q", "blocks.1.attn.k"])
    for name in ("blocks.1.attn.q", "blocks.1.attn.k"):
        rms = cache[name].pow(2).mean(-1).sqrt()  # (B, nh, T): rotation keeps the norm
        torch.testing.assert_close(rms, torch.ones_like(rms), atol=1e-4, rtol=0)


def test_rmsnorm_noaffine_has_no_parameters_and_equals_torch():
    torch.manual_seed(0)
    model = GPT(small(norm="rmsnorm-noaffine", bias=False))
    assert not list(model.blocks[0].ln_1.parameters())
    x = torch.randn(2, 5, 16)
    ref = torch.nn.RMSNorm(16, eps=model.config.norm_eps, elementwise_affine=False)
    torch.testing.assert_close(model.blocks[0].ln_1(x), ref(x))


def test_untied_head_is_its_own_matrix_and_trains_apart():
    torch.manual_seed(0)
    model = GPT(small(tie_weights=False))
    assert model.lm_head.weight.data_ptr() != model.tok_emb.weight.data_ptr()
    _, loss = model(ids(), ids(1))
    loss.backward()
    assert model.lm_head.weight.grad is not None and model.tok_emb.weight.grad is not None


def test_cpu_bf16_attention_equals_fp32_attention():
    """The bf16 fast path attends in fp32 and hands back bf16 (within bf16 rounding)."""
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 2, 16, 8, generator=gen) for _ in range(3))
    ref = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        z = attend(q.bfloat16(), k.bfloat16(), v.bfloat16(), True, 8**-0.5, None, 0.0,
                   HookPoint())  # fmt: skip
    assert z.dtype == torch.bfloat16
    torch.testing.assert_close(z.float(), ref, atol=3e-2, rtol=0)


def test_speedrun_preset_uses_the_recipe_and_learns(tmp_path, small_corpus):
    from glassformer.train.lm import LanguageModelRun

    cfg = get_preset("speedrun-cpu")
    m, t = cfg.model, cfg.train
    assert (m.pos_emb, m.norm, m.activation) == ("rotary", "layernorm", "gelu")
    assert m.qk_norm and m.zero_init_proj and not m.tie_weights
    assert (t.optimizer, t.schedule) == ("muon", "wsd")
    assert (m.n_layer, m.n_head, m.n_embd, m.block_size) == (4, 4, 128, 64)  # nanoGPT's shape
    cfg.data.path = str(small_corpus)
    cfg.train.precision, cfg.train.max_steps, cfg.train.batch_size = "fp32", 30, 8
    run = LanguageModelRun(cfg, tmp_path, progress=False)
    before = run.estimate_loss(run.val_batches, 2)
    for _ in range(30):
        run.trainer.train_step(cfg.train.lr)
    assert run.estimate_loss(run.val_batches, 2) < before - 0.5


def _speedrun_module():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "speedrun.py"
    spec = importlib.util.spec_from_file_location("speedrun", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_exact_val_loss_scores_every_token_once(tmp_path, small_corpus):
    from glassformer.train.lm import LanguageModelRun

    speedrun = _speedrun_module()
    cfg = get_preset("tiny")
    cfg.data.path, cfg.train.precision = str(small_corpus), "fp32"
    run = LanguageModelRun(cfg, tmp_path, progress=False)
    val_ids = np.array(run.val_batches.ids)  # a writable copy
    exact = speedrun.ExactValLoss(val_ids, cfg.model.block_size, batch=5)
    T = cfg.model.block_size
    assert exact.windows == (len(val_ids) - 1) // T
    assert torch.equal(exact.x.flatten(), torch.from_numpy(val_ids[: exact.windows * T]).long())
    losses = []  # the same loss, one window at a time, summed token by token
    with torch.no_grad():
        for w in range(exact.windows):
            x = torch.from_numpy(val_ids[w * T : (w + 1) * T].astype("int64"))[None]
            y = torch.from_numpy(val_ids[w * T + 1 : (w + 1) * T + 1].astype("int64"))
            logits, _ = run.model(x)
            losses.append(F.cross_entropy(logits[0], y, reduction="sum"))
    want = float(torch.stack(losses).sum()) / (exact.windows * T)
    assert exact(run) == pytest.approx(want, rel=1e-5)
