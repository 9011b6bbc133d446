"""`activation`: ReLU, GELU or SwiGLU in the MLP, at (nearly) equal parameter count?

ReLU and GELU MLPs have two matrices, d x 4d and 4d x d. SwiGLU has three (gate, up, down),
so its hidden width is 2/3 of 4d (rounded to a multiple of 8) to keep the count the same;
the report lists the measured counts.
"""

from glassformer.experiments.runner import Experiment, Variant, base_config
from glassformer.experiments.stats import against, budget_caveat, compare, verdicts

KINDS = ("relu", "gelu", "swiglu")


def conclude(results: dict) -> list[str]:
    vs = results["variants"]
    counts = {k: v["params"] for k, v in vs.items()}
    spread = (max(counts.values()) - min(counts.values())) / max(counts.values())
    lines = [
        "- parameters: "
        + ", ".join(f"{k} {n:,}" for k, n in counts.items())
        + f" (largest difference {100 * spread:.1f}%)."
    ]
    lines += verdicts(vs, "relu")
    lines.append(against("swiglu", vs["swiglu"], "gelu", vs["gelu"]))
    order = sorted(vs, key=lambda k: vs[k]["summary"]["mean"])
    lines.append(f"- ranking by mean final val loss, best first: {', '.join(order)}.")
    diff, _, real = compare(vs["swiglu"], vs["relu"])
    if not (real and diff < 0):
        lines.append(
            "- SwiGLU's published advantage (Shazeer 2020) was measured on far larger models "
            "trained far longer; it does not show in this small, short setting"
            + (", where SwiGLU is measurably worse than ReLU." if real else ".")
        )
    return lines + budget_caveat(results)


EXPERIMENT = Experiment(
    name="activation",
    question="ReLU, GELU or SwiGLU: does the MLP's nonlinearity matter?",
    variants=[Variant(k, {"model.activation": k}) for k in KINDS],
    base=base_config,
    default_budget=180.0,
    default_seeds=3,
    conclude=conclude,
    notes="Width 64, MLP hidden 256 (SwiGLU 168: 2/3 of 256 rounded to a multiple of 8).",
)
