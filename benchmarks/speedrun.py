"""The CPU speedrun: wall seconds to nanoGPT's validation loss on char-level tinyshakespeare.

nanoGPT's documented small CPU run (4 layers, 4 heads, 128 wide, context 64, batch 12, 2000
steps) ends at val loss 1.886. This trains a preset (default `speedrun-cpu`) with the
project's own Trainer on the same corpus and split (the first 90% of the characters train,
the last 10% validate) and stops the clock as soon as the validation loss is <= the target.

Validation loss here is exact, not sampled: every token of the validation split, cut into
non-overlapping windows of the context length (1,742 windows of 64 = 111,488 tokens at the
default shape), so the target check carries no sampling noise. To keep evaluation cheap,
each `eval_interval` steps a fixed screen of every 8th window (218 windows, 13,952 tokens)
is scored first; the full split runs only when the screen is within 0.05 of the target.
The clock includes all evaluation; it excludes building the model and reading the corpus.

    python benchmarks/speedrun.py [--runs 3] [--threads auto|N] [--preset speedrun-cpu]
                                  [--train.muon_lr 0.05 ...]   (any --section.field override)
    python benchmarks/speedrun.py --vs-hf     # also: throughput vs HF GPT2LMHeadModel

Prints, per run, seconds to target, steps, tokens/s and MFU; then medians, and a final line
`seconds to target: X` (median of the runs), or `target not reached: ...` when a run missed.
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from glassformer.commands.overrides import add_config_flags, apply_overrides
from glassformer.core.device import autocast
from glassformer.train.config import RunConfig
from glassformer.train.lm import LanguageModelRun
from glassformer.train.mfu import flops_per_token, matmul_peak
from glassformer.train.optim import learning_rate
from glassformer.train.presets import get_preset

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "tinyshakespeare.txt"
TARGET = 1.886  # nanoGPT's val loss after its 2000-step CPU run
SCREEN_EVERY = 8  # the screen scores every 8th validation window
SCREEN_MARGIN = 0.05  # run the full split once the screen is this close to the target


class ExactValLoss:
    """Mean next-token loss over every token of the validation split (fixed windows)."""

    def __init__(self, ids, block_size: int, batch: int = 256):
        ids = torch.from_numpy(ids.astype("int64"))
        n = (len(ids) - 1) // block_size
        self.x = ids[: n * block_size].view(n, block_size)  # (n, T)
        self.y = ids[1 : n * block_size + 1].view(n, block_size)  # (n, T): shifted by one
        self.batch = batch

    @property
    def windows(self) -> int:
        return self.x.size(0)

    @torch.no_grad()
    def __call__(self, trainer: LanguageModelRun, every: int = 1) -> float:
        model, device = trainer.model, trainer.device
        x, y = self.x[::every], self.y[::every]
        model.eval()
        total = 0.0
        for i in range(0, x.size(0), self.batch):
            xb, yb = x[i : i + self.batch].to(device), y[i : i + self.batch].to(device)
            with autocast(trainer.precision, device):
                _, loss = model(xb, yb)
            total += loss.item() * xb.size(0)  # every window has T tokens: weight by windows
        model.train()
        return total / x.size(0)


def one_run(cfg: RunConfig, target: float, log) -> dict:
    with tempfile.TemporaryDirectory() as out:
        trainer = LanguageModelRun(cfg, out, progress=False)
        val = ExactValLoss(trainer.val_batches.ids, cfg.model.block_size)
        tc = cfg.train
        tokens_per_step = tc.grad_accum * tc.batch_size * cfg.model.block_size
        step, train_s, reached, full = 0, 0.0, False, float("nan")
        start = time.perf_counter()
        while step < tc.max_steps:
            t0 = time.perf_counter()
            trainer.trainer.train_step(learning_rate(tc, step, step / tc.max_steps))
            train_s += time.perf_counter() - t0
            step += 1
            if step % tc.eval_interval == 0 or step == tc.max_steps:
                screen = val(trainer, SCREEN_EVERY)
                line = (
                    f"  step {step:5d} | {time.perf_counter() - start:6.1f} s | screen {screen:.4f}"
                )
                if screen <= target + SCREEN_MARGIN or step == tc.max_steps:
                    full = val(trainer)
                    line += f" | full val {full:.4f}"
                    reached = full <= target
                log(line)
                if reached:
                    break
        wall = time.perf_counter() - start
        tok_s = step * tokens_per_step / train_s
        peak = matmul_peak(
            torch.bfloat16 if trainer.precision == "bf16" else torch.float32, trainer.device
        )
        mfu = flops_per_token(trainer.model) * tok_s / peak
    return dict(
        reached=reached, wall=wall, steps=step, val=full, tok_s=tok_s, mfu=mfu, peak=peak,
        precision=trainer.precision, windows=val.windows,
    )  # fmt: skip


def pick_threads(cfg: RunConfig, steps: int = 6) -> int:
    """1 thread or torch's default, whichever trains faster right now (on a throwaway model).

    On a machine shared with other jobs, OpenMP threads that wait for a busy core can make
    2 threads many times slower than 1; on an idle machine more threads win.
    """
    default, times = torch.get_num_threads(), {}
    with tempfile.TemporaryDirectory() as out:
        trainer = LanguageModelRun(cfg, out, progress=False).trainer
        for n in sorted({1, default}):
            torch.set_num_threads(n)
            trainer.train_step(cfg.train.lr)  # warm up at this thread count
            t0 = time.perf_counter()
            for _ in range(steps):
                trainer.train_step(cfg.train.lr)
            times[n] = time.perf_counter() - t0
    best = min(times, key=times.get)
    torch.set_num_threads(best)
    return best


def throughput_vs_hf(cfg: RunConfig, windows: int, steps: int) -> tuple[float, float]:
    """Median tokens/s of our speedrun step and of HF GPT-2 on nanoGPT's recipe, interleaved."""
    sys.path.insert(0, str(Path(__file__).parent))
    from train_throughput import hf_loop, timed

    nano = get_preset("nanogpt-cpu")
    nano.data.path = cfg.data.path
    with tempfile.TemporaryDirectory() as out:
        ours = LanguageModelRun(cfg, out, progress=False)
        nano.model.vocab_size = cfg.model.vocab_size
        hf_step = hf_loop(nano, ours.train_batches, torch.Generator().manual_seed(0))
        ours_step = lambda: ours.trainer.train_step(cfg.train.lr)  # noqa: E731
        timed(ours_step, 3), timed(hf_step, 3)  # warm up
        ours_r, hf_r = [], []
        for _ in range(windows):
            ours_r.append(
                cfg.train.batch_size * cfg.model.block_size * steps / timed(ours_step, steps)
            )
            hf_r.append(
                nano.train.batch_size * nano.model.block_size * steps / timed(hf_step, steps)
            )
    return statistics.median(ours_r), statistics.median(hf_r)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(DATA), help="char-level corpus (tinyshakespeare)")
    ap.add_argument("--preset", default="speedrun-cpu", help="the recipe to time")
    ap.add_argument("--runs", type=int, default=3, help="timed runs (median reported)")
    ap.add_argument("--target", type=float, default=TARGET, help="validation loss to reach")
    ap.add_argument(
        "--threads",
        default="auto",
        help="torch threads: a number, or auto (1 or torch's default, whichever is faster "
        "right now, measured before the clock starts)",
    )
    ap.add_argument("--vs-hf", action="store_true", help="also measure throughput vs HF GPT-2")
    add_config_flags(ap, RunConfig())
    args = ap.parse_args()
    if not Path(args.data).exists():
        sys.exit(f"no corpus at {args.data}; pass --data the tinyshakespeare text file")
    cfg = get_preset(args.preset)
    cfg.data.path = args.data
    cfg.train.sample_tokens = 0
    apply_overrides(cfg, args)
    if args.threads == "auto":
        print(f"threads: {pick_threads(cfg)} (auto: measured 1 vs torch's default)")
    else:
        torch.set_num_threads(int(args.threads))

    results = []
    for r in range(args.runs):
        print(f"run {r + 1}/{args.runs} ({args.preset}, {torch.get_num_threads()} threads)")
        res = one_run(cfg, args.target, lambda s: print(s, flush=True))
        results.append(res)
        status = "reached" if res["reached"] else "NOT reached"
        print(
            f"  {status}: val {res['val']:.4f} at step {res['steps']} after {res['wall']:.1f} s "
            f"| {res['tok_s']:,.0f} tok/s | MFU {100 * res['mfu']:.1f}% of the measured "
            f"{res['precision']} matmul peak ({res['peak'] / 1e9:.0f} GFLOP/s)",
            flush=True,
        )
    print(f"val loss: exact over all {results[0]['windows']} validation windows")
    print(f"tokens/s: median {statistics.median(r['tok_s'] for r in results):,.0f}")
    print(f"MFU: median {100 * statistics.median(r['mfu'] for r in results):.1f}%")
    if args.vs_hf:
        ours, hf = throughput_vs_hf(cfg, windows=5, steps=20)
        print(f"throughput: ours ({args.preset}) {ours:,.0f} tok/s, HF GPT-2 (nanoGPT recipe) "
              f"{hf:,.0f} tok/s, ratio {ours / hf:.2f}")  # fmt: skip
    missed = [r for r in results if not r["reached"]]
    if missed:
        best = min(r["val"] for r in missed)
        print(f"target not reached: {len(missed)} of {len(results)} runs ended above "
              f"{args.target} (best of those: {best:.4f})")  # fmt: skip
    else:
        print(f"seconds to target: {statistics.median(r['wall'] for r in results):.1f}")


if __name__ == "__main__":
    main()
