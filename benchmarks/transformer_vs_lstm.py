"""Why transformers replaced RNNs, measured: GPT vs LSTM on the same corpus and budget.

1. Same char corpus (tinyshakespeare where it exists, else the embedded Python docs), same
   run (`glassformer.train.lm.LanguageModelRun`, the one Trainer), same optimizer, batch
   and context, same wall-time budget of training steps: the validation loss each reaches.
   Repeated, medians reported.
2. Time per training step (forward + backward + AdamW) as the sequence length T grows, batch
   fixed: attention computes all T positions at once, an LSTM has to walk them one by one.

    python benchmarks/transformer_vs_lstm.py [--budget 60] [--repeats 3] [--plot docs/x.png]

Prints one line per run, medians, the step-time table and the ratios LSTM / GPT.
"""

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from glassformer.core.metrics import read_metrics
from glassformer.models.config import GPTConfig
from glassformer.models.gpt import GPT
from glassformer.models.lstm import LSTMConfig, LSTMLanguageModel
from glassformer.train.config import DataConfig, RunConfig, TrainConfig
from glassformer.train.lm import LanguageModelRun
from glassformer.train.optim import make_optimizer

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "tinyshakespeare.txt"


def models(block_size: int) -> dict:
    """Two models of about the same size (~0.8M parameters)."""
    return {
        "gpt": GPTConfig(block_size=block_size, n_layer=4, n_head=4, n_embd=128),
        "lstm": LSTMConfig(block_size=block_size, n_layer=2, n_embd=224),
    }


def budget_run(name: str, model_cfg, budget: float, seed: int, data: str) -> dict:
    train = TrainConfig(
        batch_size=16,
        max_steps=100_000,
        time_budget=budget,
        lr=2e-3,
        min_lr=2e-4,
        warmup_steps=50,
        eval_interval=100,
        eval_iters=20,
        seed=seed,
        sample_tokens=0,
        device="cpu",
        precision="fp32",
    )
    cfg = RunConfig(model=model_cfg, train=train, data=DataConfig(path=data))
    with tempfile.TemporaryDirectory() as out:
        run = LanguageModelRun(cfg, out, progress=False, log=lambda msg: None)
        result = run.run()
        curve = [
            (r["elapsed_s"], r["train_loss"]) for r in read_metrics(Path(out) / "metrics.jsonl")
        ]
    return {
        "model": name,
        "seed": seed,
        "params": run.model.num_params(non_embedding=False),
        "steps": result.step,
        "val_loss": result.val_loss,
        "curve": curve,
    }


def step_time(model: torch.nn.Module, B: int, T: int, vocab: int, steps: int) -> float:
    """Median seconds of one training step at sequence length T."""
    opt = make_optimizer(model, TrainConfig(), torch.device("cpu"))
    x = torch.randint(vocab, (B, T))
    times = []
    for i in range(steps + 2):
        t0 = time.perf_counter()
        _, loss = model(x, x)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if i >= 2:  # the first steps warm up allocators and kernels
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--budget", type=float, default=60.0, help="seconds of training per run")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--block-size", type=int, default=128)
    p.add_argument("--lengths", default="32,64,128,256,512,1024")
    p.add_argument("--batch", type=int, default=8, help="batch size of the step-time table")
    p.add_argument("--timing-steps", type=int, default=7)
    p.add_argument("--plot", metavar="PNG", help="write a two-panel figure here")
    args = p.parse_args()
    data = str(DATA) if DATA.exists() else ""
    print(f"corpus: {data or 'the embedded Python docs'}; torch threads {torch.get_num_threads()}")

    runs = []
    for seed in range(args.repeats):
        for name, cfg in models(args.block_size).items():
            r = budget_run(name, cfg, args.budget, 1337 + seed, data)
            runs.append(r)
            print(
                f"{name:4s} seed {r['seed']}: {r['params'] / 1e6:.2f}M params, {r['steps']} steps "
                f"in {args.budget:.0f}s, val loss {r['val_loss']:.4f}"
            )
    summary = {}
    for name in ("gpt", "lstm"):
        mine = [r for r in runs if r["model"] == name]
        summary[name] = {
            "median_val_loss": statistics.median(r["val_loss"] for r in mine),
            "median_steps": statistics.median(r["steps"] for r in mine),
        }
        print(
            f"median {name}: val loss {summary[name]['median_val_loss']:.4f} after "
            f"{summary[name]['median_steps']:.0f} steps of {args.budget:.0f}s"
        )

    lengths = [int(t) for t in args.lengths.split(",")]
    table = []
    print(f"\nstep time (batch {args.batch}, median of {args.timing_steps} steps):")
    print(f"{'T':>6} {'gpt ms':>9} {'lstm ms':>9} {'lstm/gpt':>9}")
    for T in lengths:
        torch.manual_seed(0)
        cfgs = models(T)
        cfgs["gpt"].vocab_size = cfgs["lstm"].vocab_size = 65
        gpt_s = step_time(GPT(cfgs["gpt"]), args.batch, T, 65, args.timing_steps)
        lstm_s = step_time(LSTMLanguageModel(cfgs["lstm"]), args.batch, T, 65, args.timing_steps)
        table.append({"T": T, "gpt_s": gpt_s, "lstm_s": lstm_s})
        print(f"{T:>6} {gpt_s * 1e3:>9.1f} {lstm_s * 1e3:>9.1f} {lstm_s / gpt_s:>9.2f}")
    print(json.dumps({"summary": summary, "step_times": table}))

    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
        for r in runs:
            color = "C0" if r["model"] == "gpt" else "C1"
            xs, ys = zip(*r["curve"], strict=True)
            a.plot(xs, ys, color=color, alpha=0.5, linewidth=1)
            a.plot([xs[-1]], [r["val_loss"]], "o", color=color)
        a.plot([], [], color="C0", label="GPT (4 layers, 128 wide)")
        a.plot([], [], color="C1", label="LSTM (2 layers, 224 wide)")
        a.plot([], [], "ok", label="final validation loss")
        a.set(xlabel="training seconds", ylabel="loss (nats/char)", title="same time budget")
        a.set_ylim(top=4.5)
        a.legend()
        Ts = [row["T"] for row in table]
        b.plot(Ts, [row["gpt_s"] * 1e3 for row in table], "o-", label="GPT")
        b.plot(Ts, [row["lstm_s"] * 1e3 for row in table], "o-", label="LSTM")
        b.set(xscale="log", yscale="log", xlabel="sequence length T", ylabel="ms per step")
        b.set_title(f"training step time, batch {args.batch}")
        b.legend()
        fig.tight_layout()
        fig.savefig(args.plot, dpi=110)
        print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
