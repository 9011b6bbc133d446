"""`heads`: does splitting attention into more heads help, at the same width?

1, 2, 4 and 8 heads over the same 64-wide residual stream: head sizes 64, 32, 16 and 8.
The parameter count is identical (the QKV and output projections do not depend on the
split), so any difference comes from attending to several places at once with smaller
heads against one place with a large head.
"""

from glassformer.experiments.runner import Experiment, Variant, base_config
from glassformer.experiments.stats import budget_caveat, verdicts

HEADS = (1, 2, 4, 8)


def conclude(results: dict) -> list[str]:
    vs = results["variants"]
    params = {v["params"] for v in vs.values()}
    counts = ", ".join(f"{p:,}" for p in sorted(params))
    lines = verdicts(vs, "1 head")
    lines.append(f"- parameter counts: {counts} ({'equal' if len(params) == 1 else 'unequal'}).")
    return lines + budget_caveat(results)


EXPERIMENT = Experiment(
    name="heads",
    question="what happens with fewer or more attention heads at the same width?",
    variants=[Variant("1 head" if h == 1 else f"{h} heads", {"model.n_head": h}) for h in HEADS],
    base=base_config,
    default_budget=200.0,
    default_seeds=3,
    conclude=conclude,
    notes="Width 64, so head sizes are 64, 32, 16, 8; parameters are identical across variants.",
)
