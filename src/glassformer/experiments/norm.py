"""`norm`: why pre-norm rather than post-norm, and why normalise at all?

Pre-norm (x + f(norm(x))) keeps an untouched residual path from the embeddings to the head;
post-norm (norm(x + f(x)), the original transformer) puts a norm on that path after every
sublayer, which is known to make deep models hard to train without a long warmup; no norm at
all leaves the scale of the residual stream to the weights. Each is trained at two depths and
two peak learning rates. A run whose loss becomes NaN or infinite, or explodes or keeps
growing (the trainer's divergence guard), has diverged: that is recorded as a result, not an
error.
"""

from glassformer.experiments.runner import Experiment, Variant, base_config
from glassformer.experiments.stats import budget_caveat, compare, fmt, mean_std

KINDS = {
    "pre": {"model.norm_position": "pre"},
    "post": {"model.norm_position": "post"},
    "none": {"model.norm": "none"},
}
DEPTHS = (2, 6)
LRS = (3e-3, 3e-2)


def name(kind: str, depth: int, lr: float) -> str:
    return f"{kind} L{depth} lr{lr:g}"


def variants() -> list[Variant]:
    return [
        Variant(name(kind, depth, lr), {**o, "model.n_layer": depth, "train.lr": lr})
        for depth in DEPTHS
        for lr in LRS
        for kind, o in KINDS.items()
    ]


def conclude(results: dict) -> list[str]:
    vs = results["variants"]
    lines, pre_wins, post_wins = [], 0, 0
    for depth in DEPTHS:
        for lr in LRS:
            cells = []
            for kind in KINDS:
                s = vs[name(kind, depth, lr)]["summary"]
                failed = f", {s['n_failed']} diverged" if s["n_failed"] else ""
                cells.append(f"{kind} {mean_std(s)}{failed}")
            pre, post = (vs[name(k, depth, lr)] for k in ("pre", "post"))
            diff, se, real = compare(post, pre)
            pre_wins += real and diff > 0
            post_wins += real and diff < 0
            verdict = f"post − pre {fmt(diff)} ± {fmt(se)} ({'measurable' if real else 'noise'})"
            lines.append(f"- depth {depth}, lr {lr:g}: {'; '.join(cells)}; {verdict}.")
    cells = len(DEPTHS) * len(LRS)
    lines.append(
        f"- pre-norm ends measurably lower than post-norm in {pre_wins} of {cells} settings, "
        f"post-norm lower than pre-norm in {post_wins}."
    )
    for kind in KINDS:
        runs = [r for k, v in vs.items() if k.startswith(kind + " ") for r in v["runs"]]
        failed = [r for r in runs if r["diverged"]]
        where = sorted({k for k, v in vs.items() if any(r["diverged"] for r in v["runs"])})
        where = [w for w in where if w.startswith(kind + " ")]
        lines.append(
            f"- {kind}: {len(failed)} of {len(runs)} runs diverged"
            + (f" ({', '.join(where)})." if where else ".")
        )
    return lines + budget_caveat(results)


EXPERIMENT = Experiment(
    name="norm",
    question="pre-norm, post-norm or no norm: which trains, at which depth and learning rate?",
    variants=variants(),
    base=base_config,
    default_budget=200.0,
    default_seeds=2,
    conclude=conclude,
    expect_divergence=True,
    notes="LayerNorm; depths 2 and 6; peak learning rates 3e-3 (the base) and 3e-2 (10×), "
    "20 warmup steps, gradient clipping at 1.0 as in every run of the project.",
)
