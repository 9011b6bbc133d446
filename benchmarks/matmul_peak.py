"""The measured matmul peak of this machine, fp32 and bf16: the denominator of MFU.

Times square matmuls of a few sizes on the threads torch uses and keeps the best rate of
each, so the peak is what this machine really does, not a spec sheet. On CPUs without
AVX512-BF16 or AMX, bf16 is far slower than fp32 (a 100x gap is usual on AVX2), which is
why training picks its precision by capability (core/device.py).

    python benchmarks/matmul_peak.py [--sizes 512 1024 2048] [--repeats 10] [--threads N]

Prints one line per dtype and size, then `peak fp32: X GFLOP/s, bf16: Y GFLOP/s`.
"""

import argparse

import torch

from glassformer.core.device import has_fast_bf16, pick_device
from glassformer.train.mfu import measure_matmul_peak


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[512, 1024, 2048])
    ap.add_argument("--repeats", type=int, default=10, help="timings per size (best is kept)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    print(f"device {device}, {torch.get_num_threads()} threads, fast bf16: {has_fast_bf16(device)}")
    peaks = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        for n in args.sizes:
            rate = measure_matmul_peak(dtype, device, n=n, repeats=args.repeats)
            print(f"{name} {n}x{n} @ {n}x{n}: {rate / 1e9:,.1f} GFLOP/s")
            peaks[name] = max(peaks.get(name, 0.0), rate)
    print(
        f"peak fp32: {peaks['fp32'] / 1e9:,.1f} GFLOP/s, bf16: {peaks['bf16'] / 1e9:,.1f} GFLOP/s"
    )


if __name__ == "__main__":
    main()
