"""Numbers over seeds, and how a report writes them.

Each variant of an experiment runs with several seeds; its final val losses are summarised
(`summarize`), two variants are compared seed by seed (`compare`), and a conclusion states
the difference with its standard error in both directions (`against`: measurably better,
measurably worse, or within noise), and `verdicts` sums it up for a set of variants, so no
sentence of a conclusion is written without the number behind it:

    >>> a = {"runs": [{"seed": 0, "final_val_loss": 2.0}, {"seed": 1, "final_val_loss": 2.2}]}
    >>> b = {"runs": [{"seed": 0, "final_val_loss": 2.1}, {"seed": 1, "final_val_loss": 2.2}]}
    >>> against("a", a, "b", b)
    '- a against b: -0.050 ± 0.050 nats: within the seed-to-seed noise (≤ 2 SE).'
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


def compare(a: dict, b: dict, key: str = "final_val_loss") -> tuple[float, float, bool]:
    """Variant a's final val loss (or other number `key` of its runs) minus variant b's:
    (mean, standard error, > 2 SE?).

    Seed s of every variant trains on the same batches and is evaluated on the same ones, so
    when both variants finished the same seeds the difference is taken seed by seed (paired),
    which cancels the luck of the draw that both share. Otherwise (a run diverged) the means
    are compared unpaired. With one seed there is no spread to judge by: never "measurable".
    """
    la = {r["seed"]: r.get(key) for r in a["runs"]}
    lb = {r["seed"]: r.get(key) for r in b["runs"]}
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


def signed(x: float, digits: int = 3) -> str:
    """`+0.300` / `-0.120`: a difference with its sign always shown."""
    return fmt(x, digits) if not math.isfinite(x) else f"{x:+.{digits}f}"


def against(name: str, v: dict, ref_name: str, ref: dict) -> str:
    """One verdict line: variant `name`'s final val loss against `ref_name`'s, both ways.

    >>> a = {"runs": [{"seed": 0, "final_val_loss": 2.3}, {"seed": 1, "final_val_loss": 2.5}]}
    >>> b = {"runs": [{"seed": 0, "final_val_loss": 2.0}, {"seed": 1, "final_val_loss": 2.2}]}
    >>> against("8 heads", a, "1 head", b)
    '- 8 heads against 1 head: +0.300 ± 0.000 nats: measurably worse (> 2 SE).'
    """
    diff, se, real = compare(v, ref)
    head = f"- {name} against {ref_name}: {signed(diff)} ± {fmt(se)} nats"
    if not math.isfinite(diff):
        return f"- {name} against {ref_name}: no finite loss to compare."
    if not math.isfinite(se):
        return f"{head}: one seed, no spread to judge the difference by."
    if real:
        return f"{head}: measurably {'worse' if diff > 0 else 'better'} (> 2 SE)."
    return f"{head}: within the seed-to-seed noise (≤ 2 SE)."


def verdicts(variants: dict, ref_name: str, names: list[str] | None = None) -> list[str]:
    """`against` for each of `names` (default: every other variant), then one summary line
    that sorts them into measurably better, measurably worse and within noise."""
    ref = variants[ref_name]
    names = [n for n in (names or variants) if n != ref_name]
    lines = [against(n, variants[n], ref_name, ref) for n in names]
    groups: dict[str, list[str]] = {"better": [], "worse": [], "noise": []}
    for n in names:
        diff, se, real = compare(variants[n], ref)
        key = ("worse" if diff > 0 else "better") if real else "noise"
        groups[key].append(f"{n} ({signed(diff)})" if real else n)
    parts = []
    if groups["better"]:
        parts.append(f"measurably better than {ref_name}: {', '.join(groups['better'])}")
    if groups["worse"]:
        parts.append(f"measurably worse than {ref_name}: {', '.join(groups['worse'])}")
    if groups["noise"]:
        parts.append(f"no measurable difference from {ref_name}: {', '.join(groups['noise'])}")
    lines.append(f"- in sum, {'; '.join(parts)}.")
    return lines


def mean_steps(variant: dict) -> float:
    return sum(r["steps"] for r in variant["runs"]) / len(variant["runs"])


def at_step(run: dict, step: float, key: str = "val_loss") -> float:
    """`key` of a run interpolated linearly at `step` from its evaluations."""
    pts = sorted((r["step"], r[key]) for r in run["curve"] if key in r)
    for (s0, v0), (s1, v1) in zip(pts, pts[1:], strict=False):
        if s0 <= step <= s1:
            return v0 + (v1 - v0) * (step - s0) / (s1 - s0) if s1 > s0 else v0
    return pts[-1][1] if pts and step == pts[-1][0] else float("nan")


def budget_caveat(results: dict) -> list[str]:
    """Under a time budget where the variants took unequal numbers of steps, a difference in
    loss is partly a difference in speed per step: say so, and compare them again at the
    largest step every run reached (val loss interpolated between evaluations)."""
    if "seconds" not in results["budget"]:
        return []
    vs = results["variants"]
    steps = {k: mean_steps(v) for k, v in vs.items()}
    if max(steps.values()) <= 1.1 * min(steps.values()):
        return []
    listed = ", ".join(f"{k} {s:.0f}" for k, s in steps.items())
    lines = [
        f"- under the time budget the variants took unequal numbers of steps (mean: {listed}): "
        "a variant slower per step (or run while the CPU was busier) gets fewer of them, so "
        "the differences above are what the same wall time bought, not what a step learns."
    ]
    common = min(r["curve"][-1]["step"] for v in vs.values() for r in v["runs"] if r["curve"])
    first = {k: v for k, v in vs.items() if v["runs"] and v["runs"][0]["curve"]}
    if not first or common < min(r["curve"][0]["step"] for v in first.values() for r in v["runs"]):
        return lines
    at = {
        k: {"runs": [{"seed": r["seed"], "final_val_loss": at_step(r, common)} for r in v["runs"]]}
        for k, v in first.items()
    }
    ref = next(iter(at))
    lines.append(f"- step for step instead: val loss at step {common}, which every run reached:")
    return lines + ["  " + line for line in verdicts(at, ref)]
