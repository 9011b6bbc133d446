"""BERT vs GPT on the same text: what each can and cannot do, measured.

Two models of the same shape (the `mlm` task's: 2 blocks, width 128, 4 heads, context 64,
char-level, one symbol vocabulary) trained by the one Trainer with the `mlm` task's settings
(`tasks/run.py: train_config`) on the same windows of the same corpus, the same steps
(`--encoder-steps` gives the encoder more: it learns from 15% of the positions, the GPT
from all of them):

- the encoder (BERT): masked-LM, BERT's 15% with 80/10/10 (`tasks/mlm.py`); it reads both ways;
- the GPT: next-character prediction at every position; it reads left to right.

Measured on windows of the held-out last 10% of the corpus, the same windows for both:

1. fill-in-the-middle: the character at position 32 of a 64-character window, with 32
   characters to its left and 31 to its right. The encoder reads the window with [MASK]
   there (one pass); the GPT predicts it from the left 32 alone (one pass). A GPT can use the
   right side only by scoring the whole window once per candidate character (V passes
   instead of one): reported too, on fewer windows.
2. continuation: the character after 63 characters, nothing to its right: the encoder with
   [MASK] in the last position, the GPT as always.
3. generation: a greedy continuation of a prompt from each. The GPT takes one cached step
   per character; the encoder can only append a [MASK] and re-read the whole window each
   time (a new token changes what every earlier position attends to, so nothing can be
   cached).

    python benchmarks/bert_vs_gpt.py [--steps 800] [--encoder-steps N] [--data PATH] \
        [--json results.json]

Prints a Markdown table (accuracy and loss at the same positions) and the generated text.
"""

import argparse
import json
import math
import tempfile
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from glassformer.generate import GenerationOptions, generate_tokens
from glassformer.models.config import GPTConfig
from glassformer.models.encoder import Encoder
from glassformer.models.gpt import GPT
from glassformer.tasks.mlm import MLMTask, mask_tokens, masked_lm_loss, windows
from glassformer.tasks.run import train_config
from glassformer.tokenizers.symbols import MASK, SPECIALS, SymbolVocab
from glassformer.train.corpus import read_corpus
from glassformer.train.data import split_ids
from glassformer.train.trainer import Trainer

T = 64  # context of both models
MIDDLE = 32  # the hidden character of fill-in-the-middle: 32 characters left, 31 right


@dataclass
class Models:
    encoder: Encoder
    gpt: GPT
    vocab: SymbolVocab
    val_ids: np.ndarray
    majority: int  # the most frequent character of the training text
    train_seconds: dict


def train_both(
    text: str, steps: int, encoder_steps: int | None = None, seed: int = 1337, log=print
) -> Models:
    """Train the encoder and the GPT on the same windows (each step: the same 32 windows of
    65 characters; the encoder masks the first 64, the GPT predicts each next character)."""
    task = MLMTask(max_steps=steps, block_size=T)
    vocab = SymbolVocab.of_chars(text)
    ids = np.asarray(vocab.encode(text), dtype=np.int64)
    train_ids, val_ids = split_ids(ids, 0.1, T + 1)
    torch.manual_seed(seed)
    encoder = task.model(vocab)
    torch.manual_seed(seed)
    gpt = GPT(GPTConfig(vocab_size=vocab.vocab_size, block_size=T, n_layer=task.n_layer,
                        n_head=task.n_head, n_embd=task.n_embd, dropout=0.0))  # fmt: skip

    def mlm_batches(n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        x = windows(train_ids, n, T + 1, gen)[:, :T]  # (n, T)
        return mask_tokens(x, vocab.vocab_size, gen)

    def lm_batches(n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        x = windows(train_ids, n, T + 1, gen)  # (n, T + 1)
        return x[:, :-1], x[:, 1:]

    seconds = {}
    for name, model, batches, loss, n_steps in (
        ("encoder", encoder, mlm_batches, masked_lm_loss, encoder_steps or steps),
        ("gpt", gpt, lm_batches, lambda m, b: m(*b)[1], steps),
    ):
        cfg = train_config(task, max_steps=n_steps, seed=seed)
        with tempfile.TemporaryDirectory() as out:
            trainer = Trainer(model, cfg, batches, loss, out, progress=False, log=log)
            result = trainer.run()
        seconds[name] = round(trainer.elapsed, 1)
        log(f"{name}: {result.step} steps, last train loss {result.train_loss:.3f}")
        model.eval()
    majority = int(np.bincount(train_ids, minlength=vocab.vocab_size).argmax())
    return Models(encoder, gpt, vocab, val_ids, majority, seconds)


def score(logits: torch.Tensor, targets: torch.Tensor) -> dict:
    """Accuracy of the argmax and mean cross-entropy (nats) of logits (N, V) for targets (N,)."""
    return {
        "accuracy": (logits.argmax(-1) == targets).float().mean().item(),
        "loss": F.cross_entropy(logits.float(), targets).item(),
    }


def encoder_at(encoder: Encoder, x: torch.Tensor, pos: int) -> torch.Tensor:
    """The encoder's logits (N, V) for position `pos` of windows x (N, T), hidden by [MASK]."""
    hidden = x.clone()
    hidden[:, pos] = MASK
    return encoder(hidden)[0][:, pos]


def gpt_at(gpt: GPT, x: torch.Tensor, pos: int) -> torch.Tensor:
    """The GPT's logits (N, V) for position `pos` of x (N, T): read from x[:, :pos] alone."""
    return gpt(x[:, :pos])[0][:, -1]


def gpt_rescored(gpt: GPT, x: torch.Tensor, pos: int, n_specials: int) -> torch.Tensor:
    """Log-likelihood (N, V) of each window with candidate c at `pos`: log p(c | left) +
    log p(everything right of pos | left, c). One pass per candidate and window; the special
    symbols are never candidates (-inf)."""
    V = gpt.config.vocab_size
    out = torch.full((x.size(0), V), -math.inf)
    for i, window in enumerate(x):
        cands = window.repeat(V - n_specials, 1)  # (V', T)
        cands[:, pos] = torch.arange(n_specials, V)
        logp = F.log_softmax(gpt(cands[:, :-1])[0].float(), -1)  # (V', T - 1, V)
        # log p(token t | tokens < t) for t = pos .. T-1: the candidate and all to its right
        per_token = logp[:, pos - 1 :].gather(-1, cands[:, pos:, None])[..., 0]  # (V', T - pos)
        out[i, n_specials:] = per_token.sum(-1)
    return out


@torch.no_grad()
def measure(m: Models, n_windows: int = 2000, n_rescored: int = 200, seed: int = 0) -> dict:
    """Accuracy and loss of both models at the same positions of the same held-out windows:
    {what: {model: {"accuracy": ..., "loss": ...}}}."""
    gen = torch.Generator().manual_seed(seed)
    x = windows(m.val_ids, n_windows, T, gen)  # (N, T)
    mid, last = x[:, MIDDLE], x[:, T - 1]
    majority = lambda t: (t == m.majority).float().mean().item()  # noqa: E731
    n = min(n_rescored, n_windows)
    rescored = gpt_rescored(m.gpt, x[:n], MIDDLE, len(SPECIALS))  # (n, V)
    passes = m.vocab.vocab_size - len(SPECIALS)
    return {
        "fill-in-the-middle": {
            "encoder (both sides, 1 pass)": score(encoder_at(m.encoder, x, MIDDLE), mid),
            "gpt (left side only, 1 pass)": score(gpt_at(m.gpt, x, MIDDLE), mid),
            "most frequent character": {"accuracy": majority(mid)},
        },
        f"fill-in-the-middle, first {n} windows": {
            "encoder (both sides, 1 pass)": score(encoder_at(m.encoder, x[:n], MIDDLE), mid[:n]),
            "gpt (left side only, 1 pass)": score(gpt_at(m.gpt, x[:n], MIDDLE), mid[:n]),
            f"gpt (both sides: {passes} passes, every candidate scored)": {
                "accuracy": (rescored.argmax(-1) == mid[:n]).float().mean().item()
            },
        },
        "continuation": {
            "encoder ([MASK] at the end, 1 pass)": score(encoder_at(m.encoder, x, T - 1), last),
            "gpt (1 pass)": score(gpt_at(m.gpt, x, T - 1), last),
            "most frequent character": {"accuracy": majority(last)},
        },
    }


@torch.no_grad()
def continue_text(m: Models, prompt: torch.Tensor, n: int) -> dict:
    """Greedy continuations of `prompt` (P,) by n characters, and the passes each took."""
    opts = GenerationOptions(max_new_tokens=n, strategy="greedy")
    gpt_ids = generate_tokens(m.gpt, prompt[None], opts)[0, len(prompt) :]
    ids = prompt.clone()
    for _ in range(n):  # the encoder: append [MASK], re-read everything, keep its guess
        window = torch.cat((ids, torch.tensor([MASK])))[-T:]
        ids = torch.cat((ids, m.encoder(window[None])[0][0, -1:].argmax(-1)))
    return {
        "prompt": m.vocab.decode(prompt.tolist()),
        "gpt": m.vocab.decode(gpt_ids.tolist()),
        "encoder": m.vocab.decode(ids[len(prompt) :].tolist()),
        "gpt_passes": f"1 over the prompt + {n - 1} cached steps of one token",
        "encoder_passes": f"{n} over the whole window (up to {T} tokens), no cache",
    }


def markdown(measured: dict) -> str:
    """`measure`'s results as a Markdown table."""
    lines = ["| task | model | accuracy | loss (nats) |", "|---|---|---|---|"]
    for task, models in measured.items():
        for model, r in models.items():
            loss = f"{r['loss']:.3f}" if "loss" in r else "–"
            acc = f"{100 * r['accuracy']:.1f}%"
            lines.append(f"| {task} | {model} | {acc} | {loss} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=800, help="training steps of each model")
    p.add_argument("--encoder-steps", type=int, help="the encoder's steps (default: --steps)")
    p.add_argument("--data", default="", help="corpus (default: the embedded Python docs)")
    p.add_argument("--windows", type=int, default=2000, help="held-out windows measured")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    models = train_both(read_corpus(args.data), args.steps, args.encoder_steps)
    measured = measure(models, args.windows)
    results = {"measured": measured, "n_windows": args.windows}
    prompt = windows(models.val_ids, 1, 32, torch.Generator().manual_seed(5))[0]  # (32,)
    results["generation"] = continue_text(models, prompt, 32)
    steps = {"encoder": args.encoder_steps or args.steps, "gpt": args.steps}
    results |= {"steps": steps, "threads": args.threads, "train_seconds": models.train_seconds}
    results["params"] = {"encoder": models.encoder.num_params(), "gpt": models.gpt.num_params()}
    results["wall_s"] = round(time.perf_counter() - started, 1)
    print(markdown(measured))
    print(json.dumps({k: v for k, v in results.items() if k != "measured"}, indent=1))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
