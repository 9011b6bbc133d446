"""`cross-attention`: what does the decoder of an encoder-decoder get through cross-attention?

The `dates` task (tasks/dates.py): "the 3rd of march 1999" -> "1999-03-03". Every character
of the answer depends on the source, and cross-attention is the decoder's only way to read
it. Three variants of the same encoder-decoder (`model.cross_attention`, models/seq2seq.py):

- `cross-attention`: every decoder block attends to every encoder position (the transformer);
- `one vector`: to one vector per source, the mean of the encoder's output (what an
  encoder-decoder before attention passed on: a fixed-size summary, however long the source);
- `no cross-attention`: no cross-attention sublayer; the decoder is a GPT that reads only the
  answer so far.

Measured on the same 500 held-out days (never trained on, in any format): the loss per target
character with teacher forcing (`val_loss`), exact match of greedy decoding, and after
training the teacher-forced accuracy of the year, month and day characters.
"""

import math

import torch

from glassformer import checkpoint
from glassformer.experiments.runner import Experiment, Variant
from glassformer.experiments.stats import (
    budget_caveat,
    compare,
    fmt,
    over_seeds,
    signed,
    verdicts,
)
from glassformer.models.seq2seq import Seq2Seq
from glassformer.tasks.dates import (
    FIRST,
    LAST,
    DatesTask,
    encode_batch,
    exact_match,
    heldout_loss,
    heldout_pairs,
    sampler,
    seq2seq_loss,
)
from glassformer.tasks.run import train_config
from glassformer.train.config import DataConfig, RunConfig
from glassformer.train.trainer import Trainer

TASK = DatesTask(n_embd=64, batch_size=32, lr=3e-3, n_test=500)
VARIANTS = {"cross-attention": "full", "one vector": "mean", "no cross-attention": "none"}
FIELDS = {"year": slice(0, 4), "month": slice(5, 7), "day": slice(8, 10)}  # of "YYYY-MM-DD"


def base_config() -> RunConfig:
    """The dates task's encoder-decoder at width 64 (2 + 2 blocks, 0.24 M parameters),
    batch 32, peak lr 3e-3 after 100 warmup steps (post-norm needs them), fp32 on the CPU."""
    cfg = train_config(TASK, max_steps=1000)
    return RunConfig(model=TASK.config(TASK.vocab()), train=cfg, data=DataConfig())


class DatesRun:
    """One run of the `dates` task in the shape the runner drives (as train/lm.py's
    `LanguageModelRun`): the `Seq2Seq` of `cfg.model`, trained by the Trainer on generated
    training days. Each evaluation records the held-out loss (`val_loss`) and the exact match
    of greedy decoding; the folder is a `dates` task checkpoint, so
    `glassformer generate RUN_FOLDER "3 March 2021"` decodes with the trained model."""

    def __init__(self, cfg, out_dir, on_eval=None, model_config=None, progress=True, log=None):
        if model_config is not None:
            cfg.model = model_config(cfg)
        self.on_eval, self.out_dir = on_eval, out_dir
        torch.manual_seed(cfg.train.seed)
        self.vocab = TASK.vocab()
        self.model = Seq2Seq(cfg.model)
        self.test = heldout_pairs(TASK.n_test)
        self.trainer = Trainer(
            self.model,
            cfg.train,
            sampler(self.vocab),
            seq2seq_loss,
            out_dir,
            evaluate=torch.no_grad()(self.evaluate),
            save=self.save,
            progress=progress,
            log=log,
        )

    def evaluate(self) -> dict:
        results = {
            "val_loss": heldout_loss(self.model, self.vocab, self.test),
            "heldout_exact_match": exact_match(self.model, self.vocab, self.test),
        }
        return results | (self.on_eval(self) if self.on_eval is not None else {})

    def save(self, trainer_state: dict) -> None:
        meta = {"task": "dates", "results": self.trainer.evaluation}
        checkpoint.save(self.out_dir, self.model, self.vocab, meta, trainer_state)

    def run(self) -> None:
        self.trainer.run()


@torch.no_grad()
def measure(run: DatesRun) -> dict:
    """Final exact match, and teacher-forced accuracy of each field's characters."""
    src, mask, tgt_in, targets = encode_batch(run.test, run.vocab)  # (N, S), (N, 11) ...
    run.model.eval()
    right = run.model(src, tgt_in, src_mask=mask)[0].argmax(-1) == targets  # (N, 11)
    fields = {f"acc_{k}": right[:, cols].float().mean().item() for k, cols in FIELDS.items()}
    return {"exact_match": run.trainer.evaluation["heldout_exact_match"], **fields}


def calendar_loss() -> float:
    """The loss per target token of a decoder that knows every day of 1900-2099 is equally
    likely but nothing of the source: ln(number of days) spread over 10 characters + [EOS]."""
    return math.log(LAST - FIRST + 1) / 11


def bits_per_date(nats_per_token: float) -> float:
    """A loss difference per target token as bits over the 11 tokens of one date."""
    return 11 * nats_per_token / math.log(2)


def exact_match_line(name: str, v: dict, ref_name: str, ref: dict) -> str:
    """Exact match of `name` against `ref_name` in points, paired by seed as `compare`."""
    diff, se, real = compare(v, ref, key="exact_match")
    head = f"- {name} against {ref_name}: {signed(100 * diff, 1)} ± {fmt(100 * se, 1)} points"
    if not math.isfinite(se):
        return f"{head}: one seed, no spread to judge the difference by."
    if real:
        return f"{head}: measurably {'higher' if diff > 0 else 'lower'} (> 2 SE)."
    return f"{head}: within the seed-to-seed noise (≤ 2 SE)."


def conclude(results: dict) -> list[str]:
    vs = results["variants"]
    ref, others = "cross-attention", [n for n in VARIANTS if n != "cross-attention"]
    lines = ["Held-out loss per target character against full cross-attention:"]
    lines += verdicts(vs, ref, others)
    lines.append("Exact match on the held-out days (greedy decoding; mean ± std over seeds):")
    for name in VARIANTS:
        s = over_seeds(vs[name], "exact_match")
        lines.append(f"- {name}: {fmt(100 * s['mean'], 1)}% ± {fmt(100 * s['std'], 1)}.")
    lines += [exact_match_line(n, vs[n], ref, vs[ref]) for n in others]
    lines.append(
        "Teacher-forced accuracy of each field's characters (mean over seeds), given the "
        "right answer so far:"
    )
    for field in FIELDS:
        cells = [f"{n} {fmt(over_seeds(vs[n], f'acc_{field}')['mean'])}" for n in VARIANTS]
        lines.append(f"- {field}: {'; '.join(cells)}.")
    none = vs["no cross-attention"]["summary"]["mean"]
    carried = {n: bits_per_date(none - vs[n]["summary"]["mean"]) for n in (ref, others[0])}
    lines.append(
        "- what reaches the decoder from the source, as the loss it removes ((no "
        "cross-attention's loss - the variant's) x 11 tokens / ln 2): "
        + "; ".join(f"{n} {fmt(b, 1)} bits per date" for n, b in carried.items())
        + f"; naming one day of {LAST - FIRST + 1:,} takes log2({LAST - FIRST + 1:,}) = "
        f"{math.log2(LAST - FIRST + 1):.2f} bits."
    )
    lines.append(
        f"- reference: a decoder that knows which days exist, all equally likely, but nothing "
        f"of the source has a loss of ln({LAST - FIRST + 1:,} days) / 11 tokens = "
        f"{calendar_loss():.3f} nats per character and an exact match of 1 in "
        f"{LAST - FIRST + 1:,}; without cross-attention the decoder measured {fmt(none)} "
        f"({signed(none - calendar_loss())} from that)."
    )
    full = vs[ref]["summary"]["mean"]
    if full > calendar_loss() - 0.1:
        steps = sum(r["steps"] for r in vs[ref]["runs"]) / len(vs[ref]["runs"])
        lines.append(
            f"- after {steps:.0f} steps even full cross-attention is within 0.1 nats of that "
            "loss: the decoder has learned what a date looks like, not yet where to read it in "
            "the source; what cross-attention carries shows only in a longer run "
            "(e.g. `--steps 800`)."
        )
    return lines + budget_caveat(results)


EXPERIMENT = Experiment(
    name="cross-attention",
    question="what does the decoder lose without cross-attention (dates -> ISO)?",
    variants=[Variant(n, {"model.cross_attention": v}) for n, v in VARIANTS.items()],
    base=base_config,
    default_budget=180.0,
    default_seeds=2,
    eval_interval=100,
    measure=measure,
    conclude=conclude,
    curve_metrics=("heldout_exact_match",),
    table_metrics=("exact_match", "acc_year", "acc_month", "acc_day"),
    run=DatesRun,
    data="dates in 12 formats, generated (the dates task)",
    notes="The `dates` task's encoder-decoder (tasks/dates.py) at width 64: 2 encoder and 2 "
    "decoder blocks, post-norm, char-level, batch 32, lr 3e-3. `model.cross_attention` full, "
    "mean (the decoder attends to one vector: the mean of the encoder's output) or none (no "
    "cross-attention sublayer: the encoder still runs, but nothing connects it to the "
    "decoder, so its parameters are counted and never trained). val loss: cross-entropy per "
    "target character (10 characters and [EOS], teacher-forced) on 500 held-out days never "
    "trained on; exact match: greedy decoding of the same 500; acc_year/month/day: "
    "teacher-forced accuracy of those characters.",
)
