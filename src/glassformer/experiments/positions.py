"""`positions`: what does a model lose without positional information?

Four ways to tell the model where a token is: none, a learned table added to the token
embeddings, the fixed sinusoidal table of the original transformer (token embeddings times
sqrt(d) beside it, as in the paper: `model.emb_scale`), and rotary embeddings (RoPE: q and k
rotated by an angle proportional to the position).

The permutation test: take validation windows, put the tokens before the last one in random
order, and score the prediction after the last token. Attention by itself is blind to order
(a softmax-weighted sum does not change when its terms are reordered), so a model with no
position signal should lose little or nothing; a model that reads word order should lose a
lot. A *causal* model is not fully blind, though: the mask lets later layers infer order
(the number of tokens a position can see grows with its position), so the test measures how
much order the causal structure alone recovers.
"""

import math

import torch

from glassformer.experiments.probes import fixed_batch, prefix_lengths, prefix_loss
from glassformer.experiments.runner import Experiment, Variant, base_config
from glassformer.experiments.stats import (
    budget_caveat,
    compare,
    fmt,
    mean_std,
    over_seeds,
    signed,
    verdicts,
)

KINDS = ("none", "learned", "sinusoidal", "rotary")


def measure(run) -> dict:
    model = run.model
    x, y = fixed_batch(run, n=64)
    lengths = prefix_lengths(run.cfg.model.block_size, 4)
    normal = prefix_loss(model, x, y, lengths)
    shuffled = prefix_loss(model, x, y, lengths, shuffle=torch.Generator().manual_seed(0))
    out = {"loss_in_order": normal, "loss_shuffled": shuffled, "shuffle_gap": shuffled - normal}
    if model.pos_emb is not None:  # added position vectors: how long next to token vectors?
        with torch.no_grad():
            pos = torch.arange(run.cfg.model.block_size, device=run.device)
            p_norm = model.pos_emb(pos).norm(dim=-1).mean()
            t_norm = model.tok_emb.weight.norm(dim=-1).mean() * model.embed_scale
        out["pos_over_token_norm"] = (p_norm / t_norm).item()
    return out


def conclude(results: dict) -> list[str]:
    vs = results["variants"]
    stat = {
        key: {k: over_seeds(v, key) for k, v in vs.items()}
        for key in ("shuffle_gap", "loss_in_order", "pos_over_token_norm")
    }
    gaps = stat["shuffle_gap"]
    lines = ["Permutation test (loss with the prefix shuffled minus loss in order, nats):"]
    for k, g in gaps.items():
        lines.append(f"- {k}: {mean_std(g)} (mean ± std over seeds).")
    none = gaps["none"]["mean"]
    for k in KINDS[1:]:
        g = gaps[k]["mean"]
        diff, se, real = compare(vs[k], vs["none"], "shuffle_gap")
        if real and diff > 0:
            lines.append(
                f"- {k}: shuffling costs {signed(diff)} ± {fmt(se)} nats more than it costs the "
                f"model without positions ({fmt(g / none, 1) + '×' if none > 0 else 'far more'}"
                "), beyond the seed-to-seed noise: this model reads word order."
            )
        else:
            ratio = stat["pos_over_token_norm"][k]["mean"]
            why = (
                f" Its position vectors are {fmt(ratio, 1)}× as long as its token vectors."
                if math.isfinite(ratio)
                else ""
            )
            lines.append(
                f"- {k}: shuffling costs no measurably more than without positions "
                f"({signed(diff)} ± {fmt(se)} nats), and its loss in order is "
                f"{fmt(stat['loss_in_order'][k]['mean'])} against "
                f"{fmt(stat['loss_in_order']['none']['mean'])} without positions: this run "
                f"did not (yet) learn to use the order.{why}"
            )
    most = max(gaps[k]["mean"] for k in KINDS[1:])
    reading = (
        "small next to what it costs a model that reads order: nearly blind to word order"
        if none < 0.25 * most
        else "comparable to the models with positions"
    )
    lines.append(
        f"- without positions the shuffle costs {fmt(none)} nats: not zero, because a causal "
        "model can infer some order from the mask alone (a later position sees more "
        f"tokens), but {reading}."
    )
    lines.append("Final val loss of each position scheme against none:")
    return lines + verdicts(vs, "none") + budget_caveat(results)


EXPERIMENT = Experiment(
    name="positions",
    question="what does the model lose without positional encoding?",
    variants=[Variant(k, {"model.pos_emb": k}) for k in KINDS],
    base=base_config,
    default_budget=180.0,
    default_seeds=3,
    measure=measure,
    conclude=conclude,
    table_metrics=("loss_in_order", "loss_shuffled", "shuffle_gap", "pos_over_token_norm"),
    notes="Context 64 characters. The permutation test scores 64 validation windows at "
    "prefix lengths 16, 32, 48 and 64, in order and with the prefix shuffled. Beside the "
    "sinusoidal table the token embeddings start at N(0, 1/64) and are multiplied by "
    "sqrt(64) (`model.emb_scale`, the original transformer's): unit variance, like the "
    "table. Unscaled, the table drowned the tokens (position vectors 14× as long) and the "
    "model learned almost nothing. Scaled, it starts slower than the others for another "
    "reason: with the LM head tied to unit-variance embeddings, the untrained model predicts "
    "the current token again (tests/test_positions.py measures it).",
)
