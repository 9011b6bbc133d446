"""Memory per process and step time of one process, DDP, FSDP2 and tensor parallelism.

The same GPT (default: 8 layers, 512 wide, 8 heads, context 64, vocabulary 256; 25.4 M
parameters) takes training steps of the same global batch (8 sequences) through our own
Trainer's `train_step` (what `glassformer train` runs), on random tokens, in fp32 with AdamW:

    one    1 process
    ddp    torchrun --nproc-per-node 2 ... --train.parallel ddp    (4 sequences each)
    fsdp   ... fsdp                                                 (4 sequences each)
    tp     ... tp                                                   (8 sequences each)

Each process reports the bytes it holds of the parameters, of their gradients (counted just
before the optimizer step, when they all exist), of the optimizer state (AdamW's two
moments), and its resident memory (everything, torch's own libraries included): before
building the model, once the Trainer has built (and sharded) it, at its peak while training
(the peak count restarted after building), and at its peak over the whole run (ru_maxrss:
each process builds the whole model before sharding it); and the median step time over
`--steps` steps after one untimed step. Allocations over 128 KB are mapped and unmapped
one by one (MALLOC_MMAP_THRESHOLD_), so resident memory is what the tensors take. A
torchrun's processes split the machine's cores (train/distributed.py: 1 thread each on 2
cores); the single process gets `--threads`.

    python benchmarks/model_parallel_memory.py [--steps 5] [--layers 8] [--width 512]
                                               [--heads 8] [--context 64]
"""

import argparse
import ctypes
import gc
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.distributed.tensor import DTensor

from glassformer.models.config import GPTConfig
from glassformer.models.gpt import GPT
from glassformer.train.config import TrainConfig
from glassformer.train.trainer import Trainer

MODES = ("one", "ddp", "fsdp", "tp")
MB = 2**20


def local_bytes(tensors) -> int:
    """Bytes this process holds of `tensors` (a DTensor: its own shard only)."""
    return sum(
        (t.to_local() if isinstance(t, DTensor) else t).numel() * t.element_size()
        for t in tensors
        if t is not None
    )


def status_mb(field: str) -> float:
    """A memory line of /proc/self/status (VmRSS: resident now, VmHWM: its peak), in MB."""
    with open("/proc/self/status") as f:
        line = next(line for line in f if line.startswith(field + ":"))
    return int(line.split()[1]) / 1024


def settle() -> None:
    """Give freed memory back to the system and restart the peak count (VmHWM) from now."""
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def worker(args) -> None:
    """One process of one mode: build, train `steps` steps, print one JSON line."""
    if args.mode == "one":
        torch.set_num_threads(args.threads)
    before = status_mb("VmRSS")
    torch.manual_seed(0)
    cfg = GPTConfig(block_size=args.context, vocab_size=256, n_layer=args.layers,
                    n_head=args.heads, n_embd=args.width, dropout=0.0, bias=False)  # fmt: skip
    model = GPT(cfg)
    n_params = sum(p.numel() for p in model.parameters())
    train = TrainConfig(batch_size=8, max_steps=1000, precision="fp32", device="cpu",
                        parallel="ddp" if args.mode == "one" else args.mode)  # fmt: skip

    def batches(n: int, gen: torch.Generator):
        tokens = torch.randint(256, (n, args.context + 1), generator=gen)
        return tokens[:, :-1], tokens[:, 1:]

    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(model, train, batches, lambda m, b: m(*b)[1], out, progress=False)
        grads = []
        step = trainer.optimizer.step

        def counted_step(*a, **k):  # the gradients all exist just before the update
            grads.append(local_bytes(p.grad for p in trainer.model.parameters()))
            return step(*a, **k)

        trainer.optimizer.step = counted_step
        settle()  # the whole model each process built before sharding it is gone now
        built = status_mb("VmRSS")
        times = []
        for _ in range(args.steps + 1):
            t0 = time.perf_counter()
            trainer.train_step(1e-4)
            times.append(time.perf_counter() - t0)
        optimizer_state = [t for s in trainer.optimizer.state.values() for t in s.values()]
        row = {
            "mode": args.mode,
            "rank": trainer.dist.rank,
            "threads": torch.get_num_threads(),
            "params_total": n_params,
            "params_mb": local_bytes(trainer.model.parameters()) / MB,
            "grads_mb": grads[-1] / MB,
            "optimizer_mb": local_bytes(t for t in optimizer_state if t.dim() > 0) / MB,
            "rss_before_mb": before,
            "rss_built_mb": built,
            "peak_training_mb": status_mb("VmHWM"),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "step_s": statistics.median(times[1:]),
        }
    print("RESULT " + json.dumps(row), flush=True)
    trainer.dist.close()


def launch(mode: str, args) -> list[dict]:
    flags = ["--mode", mode, "--steps", str(args.steps), "--threads", str(args.threads),
             "--layers", str(args.layers),
             "--width", str(args.width), "--heads", str(args.heads),
             "--context", str(args.context)]  # fmt: skip
    cmd = [sys.executable, __file__, *flags]
    if mode != "one":
        torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
        cmd = [torchrun, "--standalone", "--nproc-per-node", "2", __file__, *flags]
    # big allocations straight from the system and back to it when freed, so that resident
    # memory follows the live tensors: with glibc's default (a threshold that rises as big
    # blocks are freed) FSDP's freed all-gather and reduce-scatter buffers stay resident, and
    # its peak measured 957-980 MB against DDP's 892 on the default model
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(128 * 1024)}
    run = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    if run.returncode:
        sys.exit(f"{mode} failed:\n{run.stderr[-3000:]}")
    rows = [json.loads(line[7:]) for line in run.stdout.splitlines() if line.startswith("RESULT ")]
    return sorted(rows, key=lambda r: r["rank"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mode", choices=MODES)  # set for the worker processes
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="of the single process")
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--context", type=int, default=64)
    args = parser.parse_args()
    if args.mode:
        worker(args)
        return
    rows = [row for mode in MODES for row in launch(mode, args)]
    n = rows[0]["params_total"]
    load = os.getloadavg()[0]
    print(f"GPT {args.layers} layers x {args.width} wide, {args.heads} heads, context "
          f"{args.context}: {n / 1e6:.2f} M parameters ({4 * n / MB:.1f} MB in fp32); "
          f"global batch 8 sequences, fp32, AdamW; load average {load:.1f}")  # fmt: skip
    print()
    print("| mode | rank | threads | parameters MB | gradients MB | optimizer state MB "
          "| RSS: before the model / built / peak while training / peak of the run MB "
          "| step s (median) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        rss = [r[k] for k in ("rss_before_mb", "rss_built_mb", "peak_training_mb", "peak_rss_mb")]
        rss = " / ".join(f"{mb:.0f}" for mb in rss)
        print(f"| {r['mode']} | {r['rank']} | {r['threads']} | {r['params_mb']:.1f} "
              f"| {r['grads_mb']:.1f} | {r['optimizer_mb']:.1f} | {rss} "
              f"| {r['step_s']:.2f} |")  # fmt: skip


if __name__ == "__main__":
    main()
