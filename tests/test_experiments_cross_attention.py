"""`experiment cross-attention`: the model switch it ablates, its conclusion against the
numbers, and the experiment end to end on the dates task."""

import json
import math
import re

import pytest
import torch

from glassformer.checkpoint import load
from glassformer.cli import main
from glassformer.errors import UserError
from glassformer.experiments import get_experiment
from glassformer.experiments.cross_attention import VARIANTS, calendar_loss
from glassformer.experiments.docs import reproduce_command
from glassformer.experiments.runner import run_experiment
from glassformer.experiments.stats import compare, summarize
from glassformer.interop import to_hf
from glassformer.models.seq2seq import Seq2Seq, Seq2SeqConfig, mean_memory

CFG = dict(vocab_size=12, block_size=10, n_layer=1, n_dec_layer=2, n_head=2, n_embd=8)


def _model(cross_attention: str) -> Seq2Seq:
    torch.manual_seed(0)
    return Seq2Seq(Seq2SeqConfig(**CFG, cross_attention=cross_attention)).eval()


SRC = torch.tensor([[5, 6, 7, 8], [9, 4, 0, 0]])  # (2, 4); the second padded
MASK = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])
TGT = torch.tensor([[1, 3, 4], [1, 5, 5]])  # (2, 3)


def test_without_cross_attention_the_source_changes_nothing():
    model = _model("none")
    assert all(block.cross is None for block in model.dec_blocks)
    logits, _ = model(SRC, TGT, src_mask=MASK)
    other, _ = model(torch.tensor([[3, 3, 3, 3], [4, 5, 6, 7]]), TGT)
    assert torch.equal(logits, other)
    assert not torch.equal(logits, _model("full")(SRC, TGT, src_mask=MASK)[0])


def test_one_vector_is_cross_attention_to_the_mean_of_the_real_positions():
    full, mean = _model("full"), _model("mean")
    mean.load_state_dict(full.state_dict())  # the same parameters, only the memory differs
    memory = full.encode(SRC, MASK)  # (2, 4, C)
    pooled = mean_memory(memory, MASK)  # (2, 1, C)
    assert torch.allclose(pooled[1, 0], memory[1, :2].mean(0))  # padding left out
    expected = full.decode(TGT, pooled)
    assert torch.allclose(mean(SRC, TGT, src_mask=MASK)[0], expected, atol=1e-6)
    more_padding = torch.cat((SRC, torch.zeros(2, 3, dtype=torch.long)), dim=1)  # (2, 7)
    more_mask = torch.cat((MASK, torch.zeros(2, 3, dtype=torch.long)), dim=1)
    assert torch.allclose(mean(more_padding, TGT, src_mask=more_mask)[0], expected, atol=1e-6)
    with pytest.raises(ValueError, match="cross_attention"):
        Seq2SeqConfig(**CFG, cross_attention="last")


def test_marian_export_refuses_an_ablated_model(tmp_path):
    cfg = Seq2SeqConfig(**CFG, sinusoid_layout="halves", head_bias=True, cross_attention="none")
    with pytest.raises(UserError, match="cross_attention='full'"):
        to_hf(Seq2Seq(cfg), tmp_path)


VERDICT = re.compile(r"^- (?P<a>.+) against (?P<b>.+): (?P<d>[+-]\d+\.\d+) ± \S+ (?P<unit>\S+)")


def _synthetic(loss: dict, exact: dict) -> dict:
    """Three seeds per variant around the given loss and exact match, under a step budget."""
    variants = {}
    for i, name in enumerate(VARIANTS):
        runs = []
        for seed in range(3):
            jitter = 0.01 * (seed - 1) * (1 + i)  # a spread of its own: paired differences vary
            curve = [{"step": 100, "elapsed_s": 5.0, "val_loss": loss[name] + jitter}]
            runs.append(
                {"seed": seed, "steps": 100, "final_val_loss": loss[name] + jitter}
                | {"exact_match": exact[name] + jitter, "curve": curve, "diverged": None}
                | {"acc_year": 0.5, "acc_month": 0.6, "acc_day": 0.7 + 0.1 * seed}
            )
        summary = summarize([r["final_val_loss"] for r in runs])
        variants[name] = {"params": 1000, "runs": runs, "summary": summary}
    return {"variants": variants, "budget": {"steps": 100}, "seeds": 3}


@pytest.mark.parametrize(
    "loss, exact",
    [  # the ablations worse (the expected outcome), and one vector better and within noise
        ({"cross-attention": 0.05, "one vector": 0.4, "no cross-attention": 1.2},
         {"cross-attention": 0.97, "one vector": 0.40, "no cross-attention": 0.0}),
        ({"cross-attention": 0.30, "one vector": 0.1, "no cross-attention": 0.302},
         {"cross-attention": 0.50, "one vector": 0.80, "no cross-attention": 0.501}),
    ],
)  # fmt: skip
def test_the_conclusion_agrees_with_the_numbers(loss, exact):
    results = _synthetic(loss, exact)
    vs = results["variants"]
    lines = get_experiment("cross-attention").conclude(results)
    checked = set()
    for line in lines:
        if not (m := VERDICT.match(line)):
            continue
        key, scale = ("final_val_loss", 1) if m["unit"] == "nats:" else ("exact_match", 100)
        diff, _, real = compare(vs[m["a"]], vs[m["b"]], key=key)
        assert float(m["d"]) == pytest.approx(scale * diff, abs=0.06), line
        words = ("worse", "better") if key == "final_val_loss" else ("higher", "lower")
        word = (words[0] if diff > 0 else words[1]) if real else None
        assert (f"measurably {word}" in line) if word else "within the seed-to-seed" in line
        checked.add((m["a"], key))
    others = ("one vector", "no cross-attention")
    assert checked == {(n, k) for n in others for k in ("final_val_loss", "exact_match")}
    means = {n: 100 * sum(r["exact_match"] for r in vs[n]["runs"]) / 3 for n in VARIANTS}
    for i, name in enumerate(VARIANTS):
        assert f"- {name}: {means[name]:.1f}% ± {1 + i:.1f}." in lines
    assert "- day: cross-attention 0.800; one vector 0.800; no cross-attention 0.800." in lines
    floor = calendar_loss()
    assert floor == pytest.approx(11.1988 / 11, abs=1e-4)  # ln(73,049)
    none = loss["no cross-attention"]
    assert f"measured {none:.3f} ({none - floor:+.3f} from that)." in lines[-1]
    for name in ("cross-attention", "one vector"):  # the loss it removes, in bits per date
        bits = 11 * (none - loss[name]) / math.log(2)
        assert f"{name} {bits:.1f} bits per date" in lines[-2]
    assert "log2(73,049) = 16.16 bits" in lines[-2]
    assert not any("not yet where to read it" in line for line in lines)


def test_a_run_too_short_to_read_the_source_says_so():
    lines = get_experiment("cross-attention").conclude(
        _synthetic(*[dict.fromkeys(VARIANTS, x) for x in (1.05, 0.0)])
    )
    assert lines[-1].startswith("- after 100 steps even full cross-attention is within 0.1 nats")


def test_end_to_end_on_the_dates_task(tmp_path, capsys):
    out = tmp_path / "ca"
    exp = get_experiment("cross-attention")
    results = run_experiment(exp, out, steps=1, seeds=1, log=lambda msg: None)
    assert results["data"] == exp.data and reproduce_command(results).endswith("--seeds 1")
    for name, v in results["variants"].items():
        (run,) = v["runs"]
        assert run["steps"] == 1 and 0.0 <= run["exact_match"] <= 1.0
        assert run["curve"][-1]["val_loss"] == run["final_val_loss"] > 0
        model, _ = load(out / "runs" / f"{name}-s0")  # a dates task folder
        assert model.config.cross_attention == VARIANTS[name]
    full, none = (
        results["variants"][n]["params"] for n in ("cross-attention", "no cross-attention")
    )
    assert full - none == 2 * (4 * (64 * 64 + 64) + 2 * 64)  # per decoder block: q, kv, proj, norm
    assert json.loads((out / "results.json").read_text())["answer"] == results["answer"]
    (tmp_path / "x.txt").write_text("some text")
    argv = ["experiment", "cross-attention", "--steps", "1", "--data", str(tmp_path / "x.txt")]
    assert main([*argv, "--out", str(tmp_path / "refused")]) == 2
    err = capsys.readouterr().err
    assert "generates; drop --data" in err and not (tmp_path / "refused").exists()
