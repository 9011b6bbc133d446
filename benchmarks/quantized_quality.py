"""What weight-only quantization costs in quality: SmolLM2-135M-Instruct, fp32 vs bf16 / int8 /
int4 weights (nn/quantized.py), measured two ways.

- Perplexity on held-out text: the first `--tokens` tokens of the Shakespeare excerpt in
  tests/data (never used to choose any quantization parameter), in non-overlapping windows of
  `--window` tokens, each scored from its own start.
- Greedy agreement with fp32: `--prompts` prompts of 16 tokens each (windows of Python's own
  documentation, pydoc_data.topics), `--new` greedy tokens each. "prefix" is the share of
  tokens identical to fp32's up to the first difference (mean over prompts), "same" the share
  of prompts whose whole continuation is identical, "overall" the share of positions that hold
  the same token (after a difference the contexts differ, so this mixes in agreement by
  chance).

Every variant is the whole model in that format (`quantize` in place on a fresh fp32 load):
the prompt and every decode step run on the quantized weights, which is stricter than
`--decode-dtype`, where the prompt runs in fp32.

    .venv/bin/python benchmarks/quantized_quality.py            # ~10 minutes on 2 busy cores
    .venv/bin/python benchmarks/quantized_quality.py --tokens 1024 --prompts 10   # a quick look
    .venv/bin/python benchmarks/quantized_quality.py --rss      # peak memory while decoding

`--rss` measures instead, each in a fresh process, the resident memory of a greedy decode of
128 tokens after the model was loaded and quantized in place (`quantize`: the float weights
are freed and handed back to the system): the peak is reset (/proc/self/clear_refs) once the
model is ready, so it is the decode's own peak, next to the process before loading anything
but torch and glassformer.
"""

import argparse
import math
import time
from pathlib import Path

import torch

from glassformer.checkpoint import load
from glassformer.generate.context import Context
from glassformer.nn.quantized import quantize

ROOT = Path(__file__).resolve().parent.parent
HELD_OUT = ROOT / "tests" / "data" / "tinyshakespeare_excerpt.txt"

# name -> how to turn the fp32 model into that variant
VARIANTS = {
    "fp32": lambda m: m,
    "bf16": lambda m: m.to(torch.bfloat16),
    "int8": lambda m: quantize(m, "int8"),
    "int4 g32": lambda m: quantize(m, "int4", group_size=32),  # the LM head in int8
    "int4 g64": lambda m: quantize(m, "int4", group_size=64),
    "int4 g32, int4 head": lambda m: quantize(m, "int4", int8_layers=()),
}


@torch.no_grad()
def perplexity(model, ids: torch.Tensor, window: int) -> float:
    """exp(mean next-token cross-entropy) over non-overlapping windows of `ids` (N,)."""
    total, count = 0.0, 0
    for start in range(0, ids.numel() - 1, window):
        chunk = ids[start : start + window + 1]  # window inputs + their next tokens
        if chunk.numel() < 2:
            break
        _, loss = model(chunk[None, :-1], targets=chunk[None, 1:])
        total += float(loss) * (chunk.numel() - 1)
        count += chunk.numel() - 1
    return math.exp(total / count)


@torch.no_grad()
def greedy(model, prompts: torch.Tensor, new: int) -> torch.Tensor:
    """(P, T) prompts of equal length -> (P, new) greedy continuations, KV cache on."""
    ctx = Context(model, prompts)
    out = []
    for _ in range(new):
        nxt = ctx.logits().argmax(dim=-1, keepdim=True)  # (P, 1)
        out.append(nxt)
        ctx.append(nxt)
    return torch.cat(out, dim=1)


def agreement(ref: torch.Tensor, got: torch.Tensor) -> tuple[float, float, float]:
    """(mean prefix share, share of identical continuations, share of identical positions)."""
    same = ref == got  # (P, new)
    prefix = same.int().cumprod(dim=1).sum(dim=1).float() / ref.size(1)  # (P,)
    return float(prefix.mean()), float(same.all(dim=1).float().mean()), float(same.float().mean())


def prompt_windows(tokenizer, n: int, length: int) -> torch.Tensor:
    """`n` windows of `length` tokens from Python's documentation, spread over its topics."""
    from pydoc_data.topics import topics

    texts = [topics[k] for k in sorted(topics)]
    step = max(1, len(texts) // n)
    rows = []
    for text in texts[::step]:
        ids = tokenizer.encode(" ".join(text.split()))
        if len(ids) >= length:
            rows.append(ids[:length])
        if len(rows) == n:
            break
    return torch.tensor(rows)


RSS_CHILD = """
import sys, torch
from pathlib import Path
from glassformer.checkpoint import load
from glassformer.generate.context import Context
from glassformer.nn.quantized import quantize

def kb(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1])

torch.set_num_threads(1)
base = kb("VmRSS:")
model, tok = load(sys.argv[1])
if sys.argv[2] != "fp32":
    quantize(model, sys.argv[2])
Path("/proc/self/clear_refs").write_text("5")  # the peak starts again here
ready = kb("VmRSS:")
with torch.no_grad():
    ctx = Context(model, torch.tensor([tok.encode("The capital of France is")]))
    for _ in range(128):
        ctx.append(ctx.logits().argmax(-1, keepdim=True))
    kv = ctx.cache.k.numel() * ctx.cache.k.element_size() * 2
print(base, ready, kb("VmHWM:"), kv // 1024)
"""


def rss_table(model: str) -> None:
    """Peak resident memory of a 128-token greedy decode per weight format (MB)."""
    import subprocess
    import sys

    from glassformer.interop.gguf import gguf_file

    path = gguf_file(model)
    size = f"; the GGUF file is {path.stat().st_size / 2**20:.1f} MiB" if path else ""
    print(f"{model}: resident memory (MiB) of a 128-token greedy decode, 1 thread{size}\n")
    print("| weights | before loading | model ready | decode peak | KV cache allocated |")
    print("|---|---|---|---|---|")
    for dtype in ("fp32", "int8", "int4"):
        out = subprocess.run(
            [sys.executable, "-c", RSS_CHILD, model, dtype], capture_output=True, text=True
        )
        base, ready, peak, kv = (int(v) / 1024 for v in out.stdout.split())
        print(f"| {dtype} | {base:.0f} | {ready:.0f} | {peak:.0f} | {kv:.0f} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="smollm2")
    ap.add_argument("--tokens", type=int, default=4096, help="held-out tokens scored")
    ap.add_argument("--window", type=int, default=512)
    ap.add_argument("--prompts", type=int, default=50)
    ap.add_argument("--new", type=int, default=64, help="greedy tokens per prompt")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--rss", action="store_true", help="measure decode memory instead")
    args = ap.parse_args()
    if args.rss:
        return rss_table(args.model)
    torch.set_num_threads(args.threads)

    _, tokenizer = load(args.model)
    text_ids = torch.tensor(tokenizer.encode(HELD_OUT.read_text())[: args.tokens + 1])
    prompts = prompt_windows(tokenizer, args.prompts, 16)
    print(
        f"{args.model}: perplexity over {text_ids.numel() - 1} tokens of {HELD_OUT.name} "
        f"(windows of {args.window}); greedy agreement over {prompts.size(0)} prompts x "
        f"{args.new} tokens; {args.threads} threads\n"
    )
    print("| weights | perplexity | vs fp32 | prefix | same | overall | seconds |")
    print("|---|---|---|---|---|---|---|")
    ref_ppl, ref_tokens = None, None
    for name in ["fp32", *(v for v in args.variants if v != "fp32")]:
        t0 = time.perf_counter()
        model, _ = load(args.model)
        model = VARIANTS[name](model).eval()
        ppl = perplexity(model, text_ids, args.window)
        tokens = greedy(model, prompts, args.new)
        if ref_ppl is None:
            ref_ppl, ref_tokens = ppl, tokens
        prefix, same, overall = agreement(ref_tokens, tokens)
        print(
            f"| {name} | {ppl:.3f} | {100 * (ppl / ref_ppl - 1):+.2f}% | {prefix:.3f} | "
            f"{same:.2f} | {overall:.3f} | {time.perf_counter() - t0:.0f} |",
            flush=True,
        )
        del model


if __name__ == "__main__":
    main()
