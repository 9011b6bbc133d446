"""Generation speed: glassformer vs Hugging Face `GPT2LMHeadModel.generate`, side by side.

GPT-2-small shape (124M parameters, random weights, fp32, batch 1): a 32-token prompt and
128 new tokens, greedy, KV cache on both sides; plus time-to-first-token for a 512-token
prompt. Both models hold the same weights (copied through glassformer.interop), so the first
check is that they produce the same tokens. Runs are interleaved in rotating order and
repeated; the numbers are medians.

    .venv/bin/python benchmarks/generate_speed.py               # ~3 minutes on 2 cores
    .venv/bin/python benchmarks/generate_speed.py --ablation    # + no cache, full-vocab prefill
    .venv/bin/python benchmarks/generate_speed.py --threads 1   # less sensitive to a busy machine

Rows:
    ours fp32          glassformer, fp32 weights (the exact path: the same tokens as HF)
    ours fp32, layout  the same on a copy whose wide weights are stored transposed, as
                       `glassformer generate` decodes one sequence (nn/layout.py)
    ours bf16 decode   prefill in fp32, each one-token decode step on a bf16 copy of the
                       weights (half the bytes read per token; logits carry bf16 rounding)
    ours int8 decode   the same with int8 Linear weights (weight-only, nn/quantized.py):
                       a quarter of the bytes; logits carry int8 rounding
    HF fp32            transformers' generate, fp32, its default (SDPA) attention

The last line holds `ratio` = ours / HF tokens per second (medians): first for ours with bf16
decode weights (the fastest variant that keeps bf16 accuracy), then for the exact fp32 path
and the int8 variant. fp32 decoding of 124M weights is bound by memory bandwidth on both sides.
"""

import argparse
import copy
import statistics
import time
import warnings

import torch

from glassformer import GPT, GPTConfig
from glassformer.generate import GenerationOptions, generate_tokens
from glassformer.interop.export import hf_model
from glassformer.nn.kv_cache import KVCache
from glassformer.nn.layout import for_one_sequence


def gpt2_small() -> tuple[GPT, torch.nn.Module]:
    import transformers

    torch.manual_seed(0)
    cfg = GPTConfig(
        vocab_size=50257, block_size=1024, n_layer=12, n_head=12, n_embd=768,
        activation="gelu_tanh",
    )  # fmt: skip
    ours = GPT(cfg).eval()
    config, tensors = hf_model(ours)
    config = {k: v for k, v in config.items() if k not in ("architectures", "model_type")}
    hf = transformers.GPT2LMHeadModel(transformers.GPT2Config(**config)).eval()
    hf.load_state_dict(tensors, strict=False)  # lm_head is tied to wte
    hf.generation_config.eos_token_id = None  # always 128 new tokens, as ours
    hf.generation_config.pad_token_id = 0
    return ours, hf


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--ablation", action="store_true", help="also time the slower steps")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (both sides)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    ours, hf = gpt2_small()
    n_params = sum(p.numel() for p in ours.parameters())
    gen = torch.Generator().manual_seed(0)
    prompt = torch.randint(0, 50257, (1, 32), generator=gen)
    long_prompt = torch.randint(0, 50257, (1, 512), generator=gen)
    N = args.new_tokens
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {n_params / 1e6:.0f}M")

    one_sequence = copy.deepcopy(ours)
    for_one_sequence(one_sequence)
    runs = {
        "ours fp32": lambda: generate_tokens(ours, prompt, GenerationOptions(N)),
        "ours fp32, layout": lambda: generate_tokens(one_sequence, prompt, GenerationOptions(N)),
        "ours bf16 decode": lambda: generate_tokens(
            ours, prompt, GenerationOptions(N, decode_dtype="bfloat16")
        ),
        "ours int8 decode": lambda: generate_tokens(
            ours, prompt, GenerationOptions(N, decode_dtype="int8")
        ),
        "HF fp32": lambda: hf.generate(prompt, max_new_tokens=N, do_sample=False),
    }
    ttft = {
        "ours fp32": lambda: generate_tokens(ours, long_prompt, GenerationOptions(1)),
        "HF fp32": lambda: hf.generate(long_prompt, max_new_tokens=1, do_sample=False),
    }
    if args.ablation:
        runs["ours, no cache"] = lambda: generate_tokens(
            ours, prompt, GenerationOptions(N, use_cache=False)
        )

        def full_vocab_prefill():  # the LM head on all 512 positions, not just the last
            cache = KVCache.for_model(ours, 1, long_prompt.size(1))
            with torch.no_grad():
                logits, _ = ours(long_prompt, cache=cache)
            return logits[:, -1].argmax(-1)

        ttft["ours, logits at every position"] = full_vocab_prefill

    for name, fn in [*runs.items(), *ttft.items()]:  # warm up (the slow no-cache run aside)
        if name != "ours, no cache":
            fn()
    hf_ids = runs["HF fp32"]()
    same = torch.equal(runs["ours fp32"](), hf_ids) and torch.equal(
        runs["ours fp32, layout"](), hf_ids
    )
    print(f"same {N} greedy tokens as HF: {same}")

    speed = {name: [] for name in runs}
    first = {name: [] for name in ttft}
    names = list(runs)
    for r in range(args.repeats):
        for name in names[r % len(names) :] + names[: r % len(names)]:  # rotating order
            seconds, _ = timed(runs[name])
            speed[name].append(N / seconds)
        for name in ttft:
            seconds, _ = timed(ttft[name])
            first[name].append(seconds)
    med = {name: statistics.median(v) for name, v in speed.items()}
    print(f"\n{'generate, 32-token prompt':32s} {'tokens/s (median)':>18s}   runs")
    for name, values in speed.items():
        runs_text = " ".join(f"{v:.1f}" for v in values)
        print(f"{name:32s} {med[name]:18.1f}   {runs_text}")
    print(f"\n{'time to first token, 512 tokens':32s} {'seconds (median)':>18s}   runs")
    for name, values in first.items():
        runs_text = " ".join(f"{v:.3f}" for v in values)
        print(f"{name:32s} {statistics.median(values):18.3f}   {runs_text}")
    ttft_ratio = statistics.median(first["HF fp32"]) / statistics.median(first["ours fp32"])
    print(f"time-to-first-token speed-up vs HF: {ttft_ratio:.2f}x")
    fp32 = med["ours fp32"] / med["HF fp32"]
    bf16 = med["ours bf16 decode"] / med["HF fp32"]
    int8 = med["ours int8 decode"] / med["HF fp32"]
    print(
        f"ratio ours/HF tokens/s: {bf16:.2f} (ours bf16 decode vs HF fp32); "
        f"fp32 vs fp32 (same tokens): {fp32:.2f}; int8 decode: {int8:.2f}"
    )


if __name__ == "__main__":
    main()
