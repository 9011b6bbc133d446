"""Named starting points for `glassformer train --preset NAME` (any field can be overridden).

- `default`:     what `glassformer train` runs with no arguments: a char-level GPT on Python's
                 own documentation, about two minutes on 2 CPU cores.
- `nanogpt-cpu`: nanoGPT's documented small CPU run (shakespeare_char): 4 layers, 4 heads,
                 128 wide, context 64, batch 12, lr 1e-3, 2000 steps, no dropout, char tokens.
- `speedrun-cpu`: the same shape and context trained to nanoGPT's loss in far less time:
                 Muon + AdamW, rotary, QK-norm, zero-initialised output projections, untied
                 head, warmup-stable-decay, batch 32, 200 steps (docs/performance.md: what
                 each bought; ReLU² and parameter-free RMSNorm were measured and left out).
- `tiny`:        a seconds-long smoke test (what the test-suite uses).
"""

from glassformer.models.config import GPTConfig
from glassformer.train.config import DataConfig, RunConfig, TrainConfig


def _nanogpt_cpu() -> RunConfig:
    return RunConfig(
        model=GPTConfig(block_size=64, n_layer=4, n_head=4, n_embd=128, dropout=0.0, bias=False),
        train=TrainConfig(
            batch_size=12,
            max_steps=2000,
            lr=1e-3,
            min_lr=1e-4,
            warmup_steps=100,
            beta2=0.99,
            weight_decay=0.1,
            grad_clip=1.0,
            eval_interval=250,
            eval_iters=20,
        ),
        data=DataConfig(tokenizer="char"),
    )


def _default() -> RunConfig:
    cfg = _nanogpt_cpu()
    cfg.train.time_budget = 110.0
    cfg.train.eval_interval = 200
    return cfg


def _tiny() -> RunConfig:
    return RunConfig(
        model=GPTConfig(block_size=32, n_layer=2, n_head=2, n_embd=32, bias=False),
        train=TrainConfig(
            batch_size=4,
            max_steps=20,
            lr=3e-3,
            min_lr=3e-4,
            warmup_steps=2,
            eval_interval=10,
            eval_iters=2,
            sample_tokens=20,
        ),
        data=DataConfig(tokenizer="char"),
    )


def _speedrun_cpu() -> RunConfig:
    """nanoGPT's shape and context, trained with the small-scale speedrun recipe."""
    return RunConfig(
        model=GPTConfig(
            block_size=64,
            n_layer=4,
            n_head=4,
            n_embd=128,
            dropout=0.0,
            bias=False,
            pos_emb="rotary",
            qk_norm=True,
            zero_init_proj=True,
            tie_weights=False,
        ),
        train=TrainConfig(
            batch_size=32,
            max_steps=200,
            optimizer="muon",
            lr=3e-3,
            muon_lr=0.05,
            min_lr=0.0,
            warmup_steps=20,
            schedule="wsd",
            decay_frac=0.4,
            weight_decay=0.0,
            grad_clip=0.0,
            eval_interval=25,
            eval_iters=20,
        ),
        data=DataConfig(tokenizer="char"),
    )


PRESETS = {
    "default": _default,
    "nanogpt-cpu": _nanogpt_cpu,
    "speedrun-cpu": _speedrun_cpu,
    "tiny": _tiny,
}


def get_preset(name: str) -> RunConfig:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[name]()
