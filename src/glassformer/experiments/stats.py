"""Numbers over seeds, and how a report writes them.

Each variant of an experiment runs with several seeds; its final val losses are summarised
(`summarize`), two variants are compared seed by seed (`compare`), and a conclusion states
the difference with its standard error (`difference`):

    >>> a = {"runs": [{"seed": 0, "final_val_loss": 2.0}, {"seed": 1, "final_val_loss": 2.2}]}
    >>> b = {"runs": [{"seed": 0, "final_val_loss": 2.1}, {"seed": 1, "final_val_loss": 2.4}]}
    >>> difference("a minus b", a, b)
    '- a minus b: -0.150 ± 0.050 nats (within noise).'
"""

import math


def summarize(values: list[float | None]) -> dict:
    """Mean, sample standard deviation and standard error of the finite values.

    >>> summarize([1.0, 2.0, 3.0])["mean"], summarize([1.0, 2.0, 3.0])["std"]
    (2.0, 1.0)
    """
    finite = [v for v in values if v is not None and math.isfinite(v)]
    n = len(finite)
    mean = sum(finite) / n if n else float("nan")
    std = math.sqrt(sum((v - mean) ** 2 for v in finite) / (n - 1)) if n > 1 else float("nan")
    return {
        "n": n,
        "n_failed": len(values) - n,
        "mean": mean,
        "std": std,
        "sem": std / math.sqrt(n) if n > 1 else float("nan"),
        "min": min(finite) if finite else float("nan"),
        "max": max(finite) if finite else float("nan"),
    }


def compare(a: dict, b: dict) -> tuple[float, float, bool]:
    """Variant a's final val loss minus variant b's: (mean, standard error, > 2 SE?).

    Seed s of every variant trains on the same batches and is evaluated on the same ones, so
    when both variants finished the same seeds the difference is taken seed by seed (paired),
    which cancels the luck of the draw that both share. Otherwise (a run diverged) the means
    are compared unpaired. With one seed there is no spread to judge by: never "measurable".
    """
    la = {r["seed"]: r["final_val_loss"] for r in a["runs"]}
    lb = {r["seed"]: r["final_val_loss"] for r in b["runs"]}
    finite = all(v is not None and math.isfinite(v) for v in (*la.values(), *lb.values()))
    if la.keys() == lb.keys() and finite:
        d = summarize([la[s] - lb[s] for s in la])
        diff, se = d["mean"], d["sem"]
    else:
        sa, sb = summarize(list(la.values())), summarize(list(lb.values()))
        diff, se = sa["mean"] - sb["mean"], math.sqrt(sa["sem"] ** 2 + sb["sem"] ** 2)
    return diff, se, bool(math.isfinite(se) and abs(diff) > 2 * se)


def finite_or_none(obj):
    """A copy of `obj` with NaN and infinities as None, so results.json is strict JSON."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [finite_or_none(v) for v in obj]
    return obj


def fmt(x, digits: int = 3) -> str:
    """A number for a table: `1.235`, or `–` when missing / not finite."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    if isinstance(x, int):
        return str(x)
    return f"{x:.{digits}f}"


def mean_std(s: dict) -> str:
    """A summary as `2.000 ± 1.000` (mean ± standard deviation over seeds)."""
    return f"{fmt(s['mean'])} ± {fmt(s['std'])}"


def over_seeds(variant: dict, key: str) -> dict:
    """`summarize` of the number `key` that each run of `variant` recorded."""
    return summarize([r.get(key) for r in variant["runs"]])


def difference(label: str, a: dict, b: dict) -> str:
    """A conclusion line: variant a's final val loss minus b's, ± its SE, and the verdict."""
    diff, se, real = compare(a, b)
    verdict = "measurable" if real else "within noise"
    return f"- {label}: {fmt(diff)} ± {fmt(se)} nats ({verdict})."
