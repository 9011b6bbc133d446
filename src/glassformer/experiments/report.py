"""What an experiment leaves behind: `curves.png` and `report.md` (results.json: runner.py).

`exp` below is the `runner.Experiment` whose `results` are drawn and written.

The plot has val loss against training wall time and against steps: each variant's mean over
seeds as a line (each run interpolated onto common points, so runs that stopped at different
steps under a time budget are all drawn), the range over seeds (min to max) as a band.
Experiments that record more than the loss at each evaluation (attention entropy, gradient
norms) get a panel each.
"""

import math
from pathlib import Path

import numpy as np

from glassformer.core.files import atomic_write
from glassformer.experiments.stats import compare, fmt


def mean_curve(runs: list[dict], key: str, x: str = "step") -> tuple[list[float], ...]:
    """(x, mean, min, max of `key`) over the runs, against `x` ("step" or "elapsed_s").

    The runs of one variant need not have evaluated at the same x (under a time budget
    each seed stops at its own step, and no two evaluate at the same second), so each run's
    curve is interpolated linearly onto the union of their x values, over the span every run
    covers: from the latest first evaluation to the earliest last one.
    """
    curves = [[(r[x], r[key]) for r in run["curve"] if key in r] for run in runs]
    curves = [sorted(c) for c in curves if c]
    if not curves:
        return [], [], [], []
    lo, hi = max(c[0][0] for c in curves), min(c[-1][0] for c in curves)
    grid = sorted({p for c in curves for p, _ in c if lo <= p <= hi} | {lo, hi})
    cols = np.array([np.interp(grid, [p for p, _ in c], [v for _, v in c]) for c in curves])
    return grid, list(cols.mean(0)), list(cols.min(0)), list(cols.max(0))


def write_plot(exp, results: dict, path: Path) -> None:
    if exp.plot is not None:  # an experiment that draws its results itself
        return exp.plot(results, path)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = ["val_loss", *exp.curve_metrics]
    fig, axes = plt.subplots(1, len(keys) + 1, figsize=(4.2 * (len(keys) + 1), 3.6), dpi=80)
    variants = results["variants"]
    colors = plt.get_cmap("tab10" if len(variants) <= 10 else "tab20").colors
    firsts, lows = [], []  # first mean and lowest val loss of each variant: the loss axes
    for i, (name, v) in enumerate(variants.items()):
        color = colors[i % len(colors)]
        if any(r["diverged"] for r in v["runs"]):
            name += " (diverged)"
        for j, key in enumerate(keys):
            if j == 0:  # val loss against wall time and against steps
                x, mean, lo, hi = mean_curve(v["runs"], key, "elapsed_s")
                if mean and math.isfinite(mean[0]):
                    firsts.append(mean[0])
                    lows.append(min(lo))
                panels = [(axes[0], (x, mean, lo, hi)), (axes[1], mean_curve(v["runs"], key))]
            else:
                panels = [(axes[j + 1], mean_curve(v["runs"], key))]
            for ax, (x, mean, lo, hi) in panels:
                ax.plot(x, mean, color=color, lw=1.4, label=name if ax is axes[0] else None)
                ax.fill_between(x, lo, hi, color=color, alpha=0.2, lw=0)
    if firsts:  # a diverging run's loss of 1e11 would flatten every other curve
        top = sorted(firsts)[len(firsts) // 2] * 1.3
        for ax in axes[:2]:
            ax.set_ylim(min(lows) - 0.05 * (top - min(lows)), top)
    axes[0].set_xlabel("training wall time (s)")
    axes[0].set_ylabel("val loss (nats/token)")
    axes[1].set_xlabel("step")
    axes[1].set_ylabel("val loss (nats/token)")
    for j, key in enumerate(exp.curve_metrics):
        axes[j + 2].set_xlabel("step")
        axes[j + 2].set_ylabel(key.replace("_", " "))
    for ax in axes:
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, loc="upper right")
    seeds = results["seeds"]
    fig.suptitle(f"{exp.name}: mean over {seeds} seed(s), band = min..max", fontsize=10)
    fig.tight_layout()
    atomic_write(Path(path), lambda tmp: fig.savefig(tmp, format="png"))
    plt.close(fig)


def mean_of(runs: list[dict], key: str) -> float | None:
    vals = [r[key] for r in runs if isinstance(r.get(key), int | float) and math.isfinite(r[key])]
    return sum(vals) / len(vals) if vals else None


def budget_text(results: dict) -> str:
    b = results["budget"]
    if "steps" in b:
        return f"{b['steps']} optimizer steps per run (step budget)"
    return f"{b['seconds']:g} s of training in all, shared equally by the runs (time budget)"


def ranking_lines(results: dict) -> list[str]:
    """Every variant against the best one: difference of final val loss ± its SE."""
    vs = results["variants"]
    ok = {k: v for k, v in vs.items() if v["summary"]["n"]}
    if not ok:
        return ["- every run diverged: there is no loss to compare."]
    best = min(ok, key=lambda k: ok[k]["summary"]["mean"])
    lines = [f"- lowest final val loss: **{best}** ({fmt(ok[best]['summary']['mean'])})."]
    for name, v in vs.items():
        if name == best:
            continue
        if not v["summary"]["n"]:
            lines.append(f"- {name}: every run diverged.")
            continue
        diff, se, real = compare(v, ok[best])
        verdict = "measurable (> 2 SE)" if real else "no measurable difference (≤ 2 SE)"
        if not math.isfinite(se):
            verdict = "one seed: no uncertainty estimate"
        lines.append(f"- {name}: +{fmt(diff)} ± {fmt(se)} nats — {verdict}.")
    return lines


def loss_table(exp, results: dict) -> list[str]:
    """The budget, the final val loss of every variant, and each against the best."""
    cols = ["variant", "params", "steps", "train s", "final val loss (mean ± std)", "diverged"]
    cols += list(exp.table_metrics)
    lines = [
        f"Budget: {budget_text(results)}; seeds: {results['seeds']}; "
        f"data: {results['data']}; wall time of the whole experiment: "
        f"{results['wall_time_s']:.0f} s.",
        "",
        "| " + " | ".join(cols) + " |",
        "|" + "---|" * len(cols),
    ]
    for name, v in results["variants"].items():
        s, runs = v["summary"], v["runs"]
        row = [
            name,
            f"{v['params']:,}",
            fmt(mean_of(runs, "steps"), 0),
            fmt(mean_of(runs, "train_time_s"), 1),
            f"{fmt(s['mean'])} ± {fmt(s['std'])}",
            f"{s['n_failed']}/{s['n'] + s['n_failed']}",
        ]
        row += [fmt(mean_of(runs, k)) for k in exp.table_metrics]
        lines.append("| " + " | ".join(row) + " |")
    lines += [
        "",
        "Final val loss against the best variant (difference ± standard error, paired by "
        "seed where every seed finished):",
    ]
    return lines + ranking_lines(results)


def write_report(exp, results: dict, path: Path) -> None:
    """The question, the notes, the table (the experiment's own, if it has one) and the
    measured answer."""
    lines = [f"## `{exp.name}`: {exp.question}", "", exp.notes, ""]
    lines += exp.table(results) if exp.table is not None else loss_table(exp, results)
    if results["answer"]:
        lines += ["", "**Measured answer.**", "", *results["answer"]]
    lines.append("")
    text = "\n".join(lines)
    atomic_write(Path(path), lambda tmp: tmp.write_text(text, encoding="utf-8"))
