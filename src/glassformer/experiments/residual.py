"""`residual`: what do the residual connections do? Remove them, or scale them down.

A block adds its sublayers' outputs to the residual stream, `x -> x + f(norm(x))`. The skip
path `x` is what lets a deep stack train: the gradient of the loss reaches the first block
through the additions unchanged, whatever the sublayers do. With `model.residual_scale` s the
skip path carries `s * x` instead: s = 0.5 shrinks the stream at every sublayer, s = 0 removes
the connection (each block's output is its sublayers' alone). Each is trained at depth 2 and
6; after training, the gradient that reaches the first block is measured against the last's.
"""

import math

from glassformer.experiments.probes import fixed_batch
from glassformer.experiments.runner import Experiment, Variant, base_config
from glassformer.experiments.stats import budget_caveat, fmt, mean_std, over_seeds, verdicts

SCALES = {"residual": 1.0, "skip x 0.5": 0.5, "no residual": 0.0}
DEPTHS = (2, 6)


def name(kind: str, depth: int) -> str:
    return f"{kind} L{depth}"


def measure(run) -> dict:
    """Gradient norms of the first and the last block on a fixed train batch."""
    model = run.model
    x, y = fixed_batch(run, "train", n=16)
    model.zero_grad(set_to_none=True)
    model(x, y)[1].backward()

    def norm(block) -> float:
        grads = [p.grad for p in block.parameters() if p.grad is not None]
        return math.sqrt(sum(g.float().pow(2).sum().item() for g in grads))

    first, last = norm(model.blocks[0]), norm(model.blocks[-1])
    model.zero_grad(set_to_none=True)
    ratio = first / last
    return {"grad_first_block": first, "grad_last_block": last, "grad_first_over_last": ratio}


def conclude(results: dict) -> list[str]:
    vs = results["variants"]
    lines = []
    for depth in DEPTHS:
        lines.append(f"Depth {depth}, final val loss against the residual connection:")
        lines += verdicts(vs, name("residual", depth), [name(k, depth) for k in SCALES])
    lines.append("Gradient reaching the first block over the last block's (mean ± std):")
    for depth in DEPTHS:
        cells = [
            f"{k} {mean_std(over_seeds(vs[name(k, depth)], 'grad_first_over_last'))}"
            for k in SCALES
        ]
        lines.append(f"- depth {depth}: {'; '.join(cells)}.")
    mean = {k: v["summary"]["mean"] for k, v in vs.items()}
    cost = {d: mean[name("no residual", d)] - mean[name("residual", d)] for d in DEPTHS}
    lines.append(
        "- removing the residual connections changes the final val loss by "
        + ", ".join(f"{fmt(cost[d])} nats at depth {d}" for d in DEPTHS)
        + " (mean over seeds)."
    )
    return lines + budget_caveat(results)


EXPERIMENT = Experiment(
    name="residual",
    question="what breaks without residual connections, and when?",
    variants=[
        Variant(name(k, d), {"model.residual_scale": s, "model.n_layer": d})
        for d in DEPTHS
        for k, s in SCALES.items()
    ],
    base=base_config,
    default_budget=180.0,
    default_seeds=2,
    measure=measure,
    conclude=conclude,
    table_metrics=("grad_first_block", "grad_last_block", "grad_first_over_last"),
    notes="Width 64; depth 2 and 6; `model.residual_scale` 1, 0.5 and 0 (pre-norm blocks). "
    "Gradient norms: all parameters of the first and of the last block, on 16 fixed training "
    "windows, after training.",
)
