"""Training throughput: our trainer vs Hugging Face GPT2LMHeadModel, side by side.

Same shape (the `nanogpt-cpu` preset: 4 layers, 4 heads, 128 wide, context 64), same batch
(12), same data (char-level tinyshakespeare), same optimizer (AdamW, weight decay on matrices,
lr 1e-3, betas (0.9, 0.99), gradient clipping at 1.0). The two loops alternate in windows of
steps in one process, so both see the same machine state; tokens/s is the median over
windows.

    python benchmarks/train_throughput.py [--windows 5] [--steps 40] [--precision auto|fp32|bf16]
                                          [--threads N]

Prints tokens/s of each (wall clock, and per CPU-second of the process, which a machine
shared with other jobs disturbs less) and a final line `ratio (ours / HF tokens/s): X`
(wall clock).
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from glassformer.train.lm import LanguageModelRun
from glassformer.train.presets import get_preset

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "tinyshakespeare.txt"


def hf_loop(cfg, batches, data_gen):
    """A plain training step for HF GPT-2 as its users write it: fp32, torch's AdamW."""
    from transformers import GPT2Config, GPT2LMHeadModel

    m = cfg.model
    hf_cfg = GPT2Config(
        vocab_size=m.vocab_size,
        n_positions=m.block_size,
        n_embd=m.n_embd,
        n_layer=m.n_layer,
        n_head=m.n_head,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        activation_function="gelu",
    )
    model = GPT2LMHeadModel(hf_cfg)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.train.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, lr=cfg.train.lr, betas=(cfg.train.beta1, cfg.train.beta2))

    def step():
        x, y = batches.sample(cfg.train.batch_size, data_gen)
        logits = model(input_ids=x).logits  # (B, T, V)
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), y.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.item()

    return step


def timed(step, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        step()
    return time.perf_counter() - t0


def timed_both(step, n: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) for n steps."""
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(n):
        step()
    return time.perf_counter() - t0, time.process_time() - c0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(DATA), help="char-level corpus")
    ap.add_argument("--windows", type=int, default=5, help="timed windows per side")
    ap.add_argument("--steps", type=int, default=40, help="steps per window")
    ap.add_argument(
        "--precision",
        default="auto",
        choices=["auto", "fp32", "bf16"],
        help="our trainer's precision (HF runs fp32, as its users' loops do)",
    )
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = ap.parse_args()
    if not Path(args.data).exists():
        sys.exit(f"no corpus at {args.data}; pass --data a text file")
    if args.threads:
        torch.set_num_threads(args.threads)

    cfg = get_preset("nanogpt-cpu")
    cfg.data.path = args.data
    cfg.train.precision = args.precision
    import tempfile

    with tempfile.TemporaryDirectory() as out:
        ours = LanguageModelRun(cfg, out, progress=False)
        hf_step = hf_loop(cfg, ours.train_batches, torch.Generator().manual_seed(0))
        tokens = cfg.train.batch_size * cfg.model.block_size * args.steps
        ours_step = lambda: ours.trainer.train_step(cfg.train.lr)  # noqa: E731
        timed(ours_step, 5), timed(hf_step, 5)  # warm up
        rates = {"ours": [], "hf": []}
        cpu_rates = {"ours": [], "hf": []}
        for _ in range(args.windows):
            for name, step in (("ours", ours_step), ("hf", hf_step)):
                wall, cpu = timed_both(step, args.steps)
                rates[name].append(tokens / wall)
                cpu_rates[name].append(tokens / cpu)
    med = {k: statistics.median(v) for k, v in rates.items()}
    cpu_med = {k: statistics.median(v) for k, v in cpu_rates.items()}
    print(f"threads: {torch.get_num_threads()}, our precision: {ours.precision}")
    for k in ("ours", "hf"):
        spread = f"{min(rates[k]):,.0f}..{max(rates[k]):,.0f}"
        print(
            f"{k:5s} tokens/s: median {med[k]:,.0f} (windows: {spread}); "
            f"per CPU-second of the process: {cpu_med[k]:,.0f}"
        )
    print(
        f"per CPU-second ratio (ours / HF; steadier than wall time on a busy machine): "
        f"{cpu_med['ours'] / cpu_med['hf']:.2f}"
    )
    print(f"ratio (ours / HF tokens/s): {med['ours'] / med['hf']:.2f}")


if __name__ == "__main__":
    main()
