"""`heads`: does splitting attention into more heads help, at the same width?

1, 2, 4 and 8 heads over the same 64-wide residual stream: head sizes 64, 32, 16 and 8.
The parameter count is identical (the QKV and output projections do not depend on the
split), so any difference comes from attending to several places at once with smaller
heads against one place with a large head.
"""

from glassformer.experiments.runner import Experiment, Variant, base_config
from glassformer.experiments.stats import compare, difference

HEADS = (1, 2, 4, 8)


def conclude(results: dict) -> list[str]:
    vs = results["variants"]
    better, lines = [], []
    for h in HEADS[1:]:
        diff, _, real = compare(vs["1 head"], vs[f"{h} heads"])
        if real and diff > 0:
            better.append(f"{h} heads")
        lines.append(difference(f"1 head minus {h} heads", vs["1 head"], vs[f"{h} heads"]))
    params = {v["params"] for v in vs.values()}
    lines.append(f"- parameter counts: {', '.join(f'{p:,}' for p in sorted(params))} (equal).")
    if better:
        lines.append(
            f"- measurably better than one head: {', '.join(better)} — by a few hundredths "
            "of a nat at most in this setting (compare the seed-to-seed spread in the table)."
            if max(compare(vs["1 head"], vs[b])[0] for b in better) < 0.05
            else f"- measurably better than one head: {', '.join(better)}."
        )
    else:
        lines.append(
            "- at this scale and budget, the number of heads makes no difference beyond the "
            "seed-to-seed spread."
        )
    return lines


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
