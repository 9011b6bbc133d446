"""`mask`: why mask the future?

A language model is trained to predict token t+1 from tokens 0..t. Without the causal mask,
position t can attend to position t+1 — the very token it must predict — so the training
loss collapses (the model copies the answer), but at generation time there is no future to
copy from. We measure both: the ordinary validation loss (computed the same leaky way as the
training loss) and the generation loss, where each next token is predicted from its prefix
alone (exactly what `generate` does), plus a sample of generated text.
"""

from glassformer.experiments.probes import fixed_batch, prefix_lengths, prefix_loss
from glassformer.experiments.runner import Experiment, Variant, base_config
from glassformer.experiments.stats import budget_caveat, fmt, mean_std, over_seeds, summarize


def measure(run) -> dict:
    x, y = fixed_batch(run, n=64)
    lengths = prefix_lengths(run.cfg.model.block_size, 8)
    sample = run.sample(120)
    return {"generation_loss": prefix_loss(run.model, x, y, lengths), "sample": sample}


def conclude(results: dict) -> list[str]:
    vs = results["variants"]
    lines = []
    for k, v in vs.items():
        s = v["summary"]
        g = over_seeds(v, "generation_loss")
        train = summarize([r["curve"][-1]["train_loss"] for r in v["runs"] if r["curve"]])
        lines.append(
            f"- {k}: training loss {fmt(train['mean'])}, validation loss (with the leak, if "
            f"any) {mean_std(s)}, generation loss {mean_std(g)} nats."
        )
    gaps = {
        k: summarize([r["generation_loss"] - r["final_val_loss"] for r in v["runs"]])
        for k, v in vs.items()
        if all("generation_loss" in r for r in v["runs"])
    }
    if len(gaps) == 2:
        lines.append(
            f"- generation loss minus validation loss: causal {fmt(gaps['causal']['mean'])}, "
            f"no mask {mean_std(gaps['no mask'])} nats. "
            "The gap of the unmasked model is what its validation loss owes to copying from "
            "the future: at generation time there is no future to copy from."
        )
    for k, v in vs.items():
        sample = v["runs"][0].get("sample")
        if sample is not None:
            lines += ["", f"Sample from the {k} model (seed 0):", "", "```text", sample, "```"]
    return lines + budget_caveat(results)


EXPERIMENT = Experiment(
    name="mask",
    question="what happens if the model may look at the future during training?",
    variants=[
        Variant("causal", {"model.causal": True}),
        Variant("no mask", {"model.causal": False}),
    ],
    base=base_config,
    default_budget=200.0,
    default_seeds=3,
    measure=measure,
    conclude=conclude,
    table_metrics=("generation_loss",),
    notes="Generation loss: 64 validation windows, each scored at prefix lengths 8, 16, ..., "
    "64 from the prefix alone. A causal model gets the same number both ways.",
)
