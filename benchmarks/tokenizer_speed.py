"""Tokenizer speed: our BPE vs Hugging Face `tokenizers` and raw tiktoken, side by side.

On tinyshakespeare (1.1 MB), with the same vocabulary size for everyone:

- training: `BPETokenizer.train` vs HF `ByteLevelBPETokenizer.train_from_iterator`;
- encoding one string, MB/s: our reference encoder (cold chunk cache, then warm), our fast
  path (`BPETokenizer.encode_ordinary`), raw tiktoken (the `tiktoken.Encoding` from
  `to_tiktoken()`, called directly), and HF `tokenizers` (our exported tokenizer.json, which
  gives identical ids);
- batch encoding (the corpus cut into ~1 KB texts) for the fast path, tiktoken and HF;
- scaling: s/MB for 10 KB, 100 KB and 1 MB of one repeated character (one that the
  vocabulary has merged runs of, so BPE has real work to do).

Every number is the median of `--runs` runs; competitors run in turn (interleaved), so a
busy machine slows them alike.

    python benchmarks/tokenizer_speed.py [--runs 5] [--vocab-size 4096] [--data PATH]
"""

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from tokenizers import ByteLevelBPETokenizer, Tokenizer

from glassformer.tokenizers import BPETokenizer, save_hf_tokenizer_json
from glassformer.tokenizers.bpe_encode import ReferenceEncoder

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "tinyshakespeare.txt"


def median_seconds(
    fn: Callable[[], object], runs: int, setup: Callable[[], object] | None = None
) -> float:
    times = []
    for _ in range(runs):
        if setup is not None:
            setup()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def interleaved_medians(fns: dict[str, Callable[[], object]], runs: int) -> dict[str, float]:
    """Median seconds of each function, run in turn (order rotating) under the same load.

    A short pause before each call lets the thread pools of the previous one (HF's rayon
    workers spin for a while after a batch) go idle first.
    """
    names = list(fns)
    times: dict[str, list[float]] = {name: [] for name in names}
    for run in range(runs):
        for name in names[run % len(names) :] + names[: run % len(names)]:
            time.sleep(0.05)
            start = time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per measurement (median)")
    parser.add_argument("--vocab-size", type=int, default=4096)
    parser.add_argument("--data", type=Path, default=DATA, help="a UTF-8 text file")
    args = parser.parse_args()
    if not args.data.is_file():
        print(f"no corpus at {args.data}; pass --data PATH to a text file", file=sys.stderr)
        return 2
    text = args.data.read_text(encoding="utf-8")
    mb = len(text.encode("utf-8")) / 1e6
    runs = args.runs
    print(f"corpus {args.data.name}: {mb:.2f} MB, vocab {args.vocab_size}, median of {runs} runs")

    # ---- training ----------------------------------------------------------------------
    ours_train = median_seconds(lambda: BPETokenizer.train(text, args.vocab_size), runs)

    def hf_train() -> None:
        hf = ByteLevelBPETokenizer()
        hf.train_from_iterator(
            [text],
            vocab_size=args.vocab_size,
            special_tokens=["<|endoftext|>"],
            show_progress=False,
        )

    hf_train_s = median_seconds(hf_train, runs)
    print("\ntraining")
    print(f"  glassformer BPETokenizer.train   {ours_train:7.3f} s")
    print(f"  HF tokenizers (Rust)             {hf_train_s:7.3f} s")
    print(f"  ratio (ours / HF time)           {ours_train / hf_train_s:7.2f}x")

    # ---- encoding one string ---------------------------------------------------------------
    tok = BPETokenizer.train(text, args.vocab_size)
    enc = tok.to_tiktoken()
    with tempfile.TemporaryDirectory() as tmp:
        save_hf_tokenizer_json(tok, Path(tmp) / "tokenizer.json")
        hf = Tokenizer.from_file(str(Path(tmp) / "tokenizer.json"))
    reference = ReferenceEncoder(tok.ranks, tok.pattern)
    expected = enc.encode_ordinary(text)
    assert reference.encode(text) == expected == tok.encode_ordinary(text) == hf.encode(text).ids

    def fresh_cache() -> None:
        reference.cache.clear()

    timings = {
        "reference, cold cache": median_seconds(lambda: reference.encode(text), runs, fresh_cache),
        "reference, warm cache": median_seconds(lambda: reference.encode(text), runs),
    }
    timings |= interleaved_medians(
        {
            "fast path (ours)": lambda: tok.encode_ordinary(text),
            "raw tiktoken": lambda: enc.encode_ordinary(text),
            "HF tokenizers": lambda: hf.encode(text),
        },
        runs,
    )
    print("\nencode one string (identical ids from all four)")
    for name, seconds in timings.items():
        print(f"  {name:<24} {mb / seconds:7.2f} MB/s")
    raw = timings["raw tiktoken"]
    print(f"  ratio fast path / raw tiktoken   {raw / timings['fast path (ours)']:5.2f}x speed")
    print(
        f"  ratio reference(cold) / tiktoken {raw / timings['reference, cold cache']:5.2f}x speed"
    )
    hf_ratio = timings["HF tokenizers"] / timings["fast path (ours)"]
    print(f"  ratio fast path / HF tokenizers  {hf_ratio:5.2f}x speed")

    # ---- batch encoding --------------------------------------------------------------------
    lines = text.splitlines(keepends=True)
    texts, current = [], ""
    for line in lines:
        current += line
        if len(current) >= 1000:
            texts.append(current)
            current = ""
    texts.append(current)
    batch = interleaved_medians(
        {
            "fast path (ours)": lambda: tok.encode_batch(texts),
            "raw tiktoken": lambda: enc.encode_ordinary_batch(texts),
            "HF tokenizers": lambda: hf.encode_batch(texts),
        },
        runs,
    )
    print(f"\nencode a batch of {len(texts)} texts (~1 KB each)")
    for name, seconds in batch.items():
        print(f"  {name:<24} {mb / seconds:7.2f} MB/s")
    batch_ratio = batch["raw tiktoken"] / batch["fast path (ours)"]
    print(f"  ratio fast path / raw tiktoken   {batch_ratio:5.2f}x speed")

    # ---- scaling on one repeated character ------------------------------------------------
    runs_of_one = [t for t in tok.ranks if len(t) > 1 and len(set(t)) == 1 and t[0] < 128]
    char = chr(max(runs_of_one, key=len)[0]) if runs_of_one else "a"  # one with merges
    print(f"\nscaling: one repeated character ({char!r} * n), s/MB (flat = linear)")
    for n in (10_000, 100_000, 1_000_000):
        s = char * n
        ref_s = median_seconds(
            lambda s=s: tok.encode_ordinary(s, reference=True), max(1, runs // 2)
        )
        fast_s = median_seconds(lambda s=s: tok.encode_ordinary(s), max(1, runs // 2))
        ref_per_mb, fast_per_mb = ref_s / n * 1e6, fast_s / n * 1e6
        print(f"  {n:>9,} chars   reference {ref_per_mb:6.3f} s/MB   fast {fast_per_mb:6.3f} s/MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
