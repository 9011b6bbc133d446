"""Ablation experiments: each one end to end with a tiny budget, the probes they rely on,
and the CLI's answers to mistakes."""

import json
import math
import re
import shutil

import pytest
import torch

from glassformer.cli import main
from glassformer.experiments import NAMES, get_experiment
from glassformer.experiments.probes import attention_stats, prefix_loss
from glassformer.experiments.runner import (
    Experiment,
    Variant,
    base_config,
    refresh,
    run_experiment,
)
from glassformer.experiments.stats import compare, summarize
from glassformer.models.config import GPTConfig
from glassformer.models.gpt import GPT
from glassformer.nn.norm import make_norm

# the experiments that train their variants (decoding measures strategies on one model:
# tests/test_experiments_decoding.py)
TRAINED = tuple(n for n in NAMES if get_experiment(n).measure_all is None)


@pytest.mark.parametrize("name", TRAINED)
def test_experiment_end_to_end(name, tmp_path, small_corpus, capsys):
    out = tmp_path / name
    exp = get_experiment(name)
    argv = ["experiment", name, "--steps", "2", "--seeds", "1"]
    argv += [] if exp.data else ["--data", str(small_corpus)]  # or the data it generates
    assert main([*argv, "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text(), parse_constant=pytest.fail)
    assert list(results["variants"]) == [v.name for v in exp.variants]
    for v in results["variants"].values():
        (run,) = v["runs"]
        assert run["steps"] == 2 and run["curve"][-1]["step"] == 2
        assert run["diverged"] or math.isfinite(run["final_val_loss"])
    assert results["budget"] == {"steps": 2} and results["threads"] == 1
    assert results["answer"], "every experiment states a measured answer"
    report = (out / "report.md").read_text()
    assert "Measured answer" in report and report in capsys.readouterr().out
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_time_budget_is_shared_by_the_runs(tmp_path, small_corpus):
    exp = get_experiment("mask")
    results = run_experiment(exp, tmp_path, budget=2.0, seeds=1, data=str(small_corpus))
    assert results["budget"] == {"seconds": 2.0}
    for v in results["variants"].values():
        (run,) = v["runs"]  # each run trains for 1 s: it stops within one step of that
        per_step = run["train_time_s"] / run["steps"]
        assert 1.0 <= run["train_time_s"] <= 1.0 + per_step + 0.5


def test_divergence_is_recorded_not_raised(tmp_path, small_corpus):
    exp = Experiment(
        name="blowup",
        question="does lr 1e6 without clipping diverge?",
        variants=[Variant("huge lr", {"train.lr": 1e6, "train.grad_clip": 0.0})],
        base=base_config,
        default_budget=10.0,
        expect_divergence=True,
    )
    run_experiment(exp, tmp_path, steps=10, seeds=1, data=str(small_corpus))
    results = json.loads((tmp_path / "results.json").read_text())  # NaN is written as null
    (run,) = results["variants"]["huge lr"]["runs"]
    assert "diverged" in run["diverged"] and run["final_val_loss"] is None
    assert results["variants"]["huge lr"]["summary"]["n_failed"] == 1
    assert "every run diverged" in (tmp_path / "report.md").read_text()


@pytest.mark.parametrize(
    "argv, match",
    [
        (["experiment", "depth"], "choose one of: heads, positions, scaling, norm, mask"),
        (["experiment", "heads", "--budget", "soon"], "--budget must be a number of seconds"),
        (["experiment", "heads", "--budget", "0"], "at least 1"),
        (["experiment", "heads", "--budget", "nan"], "--budget must be"),
        (["experiment", "heads", "--steps", "-5"], "--steps must be a whole number"),
        (["experiment", "heads", "--seeds", "0"], "--seeds must be a whole number"),
        (["experiment", "heads", "--budget", "5", "--steps", "5"], "not both"),
        (["experiment", "heads", "--data", "no/such.txt"], "does not exist"),
    ],
)
def test_mistakes_exit_2_and_write_nothing(argv, match, tmp_path, capsys):
    out = tmp_path / "out"
    assert main([*argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert match in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_norm_none_is_the_identity():
    x = torch.randn(2, 3, 8)
    assert torch.equal(make_norm("none", 8)(x), x)
    cfg = dict(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=8)
    with_norm, without = GPT(GPTConfig(**cfg)), GPT(GPTConfig(**cfg, norm="none"))
    n_norms = 2 * 2 + 1  # two per block and the final one, weight and bias of 8 each
    assert with_norm.num_params() - without.num_params() == n_norms * 16
    with pytest.raises(ValueError, match="none"):
        GPTConfig(**cfg, norm="batchnorm")


def _model(**overrides) -> GPT:
    torch.manual_seed(0)
    cfg = dict(vocab_size=13, block_size=16, n_layer=2, n_head=2, n_embd=16)
    return GPT(GPTConfig(**{**cfg, **overrides})).eval()


def test_prefix_loss_of_a_causal_model_is_its_per_position_loss():
    model = _model()
    x = torch.randint(13, (4, 17))
    x, y = x[:, :-1], x[:, 1:]  # (4, 16) each
    logits, _ = model(x)
    per_pos = torch.nn.functional.cross_entropy(
        logits.transpose(1, 2), y, reduction="none"
    )  # (4, 16)
    lengths = [3, 9, 16]
    expected = sum(per_pos[:, L - 1].mean().item() for L in lengths) / len(lengths)
    assert prefix_loss(model, x, y, lengths) == pytest.approx(expected, rel=1e-5)
    leaky = _model(causal=False)  # it sees the future in a full window: the numbers differ
    full, _ = leaky(x)
    per_pos = torch.nn.functional.cross_entropy(full.transpose(1, 2), y, reduction="none")
    assert abs(prefix_loss(leaky, x, y, [9]) - per_pos[:, 8].mean().item()) > 1e-5


def test_shuffling_the_prefix_is_invisible_without_positions():
    """Without positions, attention is a weighted sum that ignores order: a non-causal model,
    or a one-layer causal one, gives the same prediction after a shuffled prefix."""
    x = torch.randint(13, (8, 17))
    x, y = x[:, :-1], x[:, 1:]
    for model in (_model(pos_emb="none", causal=False), _model(pos_emb="none", n_layer=1)):
        normal = prefix_loss(model, x, y, [16])
        shuffled = prefix_loss(model, x, y, [16], shuffle=torch.Generator().manual_seed(1))
        assert shuffled == pytest.approx(normal, abs=1e-5)
    model = _model(pos_emb="learned")
    shuffled = prefix_loss(model, x, y, [16], shuffle=torch.Generator().manual_seed(1))
    assert shuffled != pytest.approx(prefix_loss(model, x, y, [16]), abs=1e-5)


def test_attention_stats_of_uniform_attention(small_corpus, tmp_path):
    from glassformer.train.lm import LanguageModelRun

    cfg = base_config()
    cfg.data.path = str(small_corpus)
    run = LanguageModelRun(cfg, tmp_path, progress=False)
    with torch.no_grad():
        for block in run.model.blocks:  # q = k = 0: every score is 0, attention uniform
            block.attn.qkv.weight.zero_()
    stats = attention_stats(run)
    assert stats["attn_entropy"] == pytest.approx(stats["attn_entropy_uniform"], rel=1e-4)
    expected = sum(math.log(t) for t in range(2, 65)) / 63  # rows 1..63 see 2..64 keys
    assert stats["attn_entropy_uniform"] == pytest.approx(expected, rel=1e-6)
    assert stats["attn_saturated"] == 0.0


def _variant(*losses: float) -> dict:
    return {"runs": [{"seed": i, "final_val_loss": v} for i, v in enumerate(losses)]}


def test_summary_and_comparison():
    s = summarize([1.0, 2.0, 3.0, float("nan")])
    assert (s["n"], s["n_failed"], s["mean"], s["std"]) == (3, 1, 2.0, 1.0)
    assert s["sem"] == pytest.approx(1 / math.sqrt(3))
    # seeds share their batches: a variant 0.1 better on every seed is measurably better,
    # although the spread between seeds (0.5) is larger than the difference
    diff, se, real = compare(_variant(2.0, 2.5, 3.0), _variant(2.1, 2.6, 3.1))
    assert diff == pytest.approx(-0.1) and se == pytest.approx(0.0, abs=1e-12) and real
    diff, se, real = compare(_variant(2.0, 2.5, 3.0), _variant(2.1, 2.4, 3.1))
    assert diff == pytest.approx(-1 / 30) and not real
    # a diverged run: unpaired comparison of what finished
    diff, se, real = compare(_variant(2.0, 2.5, 3.0), _variant(2.1, None, 3.1))
    assert diff == pytest.approx(-0.1) and se == pytest.approx(math.sqrt(0.25 / 3 + 0.25))
    assert not compare(_variant(9.0), _variant(1.0))[2]  # one seed: no verdict


def test_equal_parameter_counts():
    from glassformer.experiments.rnn import lstm_config
    from glassformer.models.lstm import LSTMLanguageModel

    cfg = base_config()
    cfg.model.vocab_size = 96
    counts = {}
    for act in ("relu", "gelu", "swiglu"):
        cfg.model.activation = act
        counts[act] = GPT(cfg.model).num_params()
    assert counts["relu"] == counts["gelu"]
    assert abs(counts["swiglu"] - counts["relu"]) / counts["relu"] < 0.02
    cfg.model.activation = "gelu"
    gpt, lstm = GPT(cfg.model).num_params(), LSTMLanguageModel(lstm_config(cfg)).num_params()
    assert gpt <= lstm < 1.1 * gpt


def test_docs_page_is_built_from_the_result_folders(tmp_path, small_corpus):
    from glassformer.experiments.docs import build

    out = tmp_path / "runs" / "mask"
    run_experiment(get_experiment("mask"), out, steps=2, seeds=1, data=str(small_corpus))
    shutil.copytree(out, tmp_path / "runs" / "mask-again")  # a second run gets its own section
    page = build(tmp_path / "runs", tmp_path / "docs").read_text()
    assert "## `mask` (step budget, 2 steps): what happens" in page
    assert (tmp_path / "docs" / "experiments" / "mask-again.png").exists()
    report = (tmp_path / "runs" / "mask" / "report.md").read_text().rstrip()
    assert report in page
    assert f"glassformer experiment mask --steps 2 --seeds 1 --data {small_corpus}\n" in page
    not_run = ", ".join(n for n in NAMES if n != "mask")
    assert f"Not run for this page: {not_run}." in page
    refresh(out)  # re-rendering from results.json reproduces the report exactly
    assert (out / "report.md").read_text().rstrip() == report
    png = (tmp_path / "docs" / "experiments" / "mask.png").read_bytes()
    assert png == (tmp_path / "runs" / "mask" / "curves.png").read_bytes()


VERDICT = re.compile(
    r"^- (?P<a>.+) against (?P<b>.+): (?P<d>[+-]\d+\.\d+) ± \S+ nats: "
    r"(?:measurably (?P<word>better|worse)|within the seed-to-seed noise)"
)
OFFSETS = (0.0, 0.3, -0.2, 0.004, 0.48, -0.05)  # worse, better and within noise of the first


def synthetic_results(name: str) -> dict:
    """A results.json for experiment `name` whose numbers are known: variant i's loss is
    2 + OFFSETS[i] (± 0.01 by seed), under a time budget in which later variants took fewer
    steps; every extra number a conclusion reads is filled in."""
    exp = get_experiment(name)
    variants = {}
    for i, v in enumerate(exp.variants):
        runs = []
        for seed in range(3):
            loss = 2.0 + OFFSETS[i % len(OFFSETS)] + 0.01 * (seed - 1) * (1 + i % 2)
            extra = {k: 0.5 + 0.1 * i for k in ("shuffle_gap", "loss_in_order", "grad_norm")}
            extra |= {"pos_over_token_norm": 1.0, "loss_shuffled": 3.0, "attn_entropy": 2.0 - i}
            extra |= {"attn_saturated": 0.1 * i, "grad_norm_qkv": 1.0 + i, "generation_loss": 3.0}
            extra |= {"grad_first_over_last": 1.0 / (1 + i)}
            extra |= {k: 0.9 - 0.1 * i for k in ("exact_match", "acc_year", "acc_month", "acc_day")}
            curve = [{"step": 100, "elapsed_s": 5.0, "val_loss": loss, "train_loss": loss}]
            runs.append(
                {"seed": seed, "params": 1000, "steps": 400 - 50 * i, "train_time_s": 10.0}
                | {"final_val_loss": loss, "diverged": None, "curve": curve, "sample": "ab"}
                | extra
                | {"attn_entropy_uniform": 3.0}
            )
        variants[v.name] = {
            "params": 1000,
            "runs": runs,
            "summary": summarize([r["final_val_loss"] for r in runs]),
        }
    rows = [{"seq_len": 64, "transformer_s": 0.01, "lstm_s": 0.02}]
    return {
        "variants": variants,
        "budget": {"seconds": 100.0},
        "seeds": 3,
        "base_config": base_config().to_dict(),
        "extra": {"threads": 1, "step_time_vs_seq_len": rows},
    }


@pytest.mark.parametrize("name", TRAINED)
def test_the_written_conclusion_agrees_with_the_numbers(name):
    results = synthetic_results(name)
    vs = results["variants"]
    lines = get_experiment(name).conclude(results)
    checked = 0
    for line in lines:
        if m := VERDICT.match(line):  # every verdict: the sign and the word from compare()
            diff, _, real = compare(vs[m["a"]], vs[m["b"]])
            assert float(m["d"]) == pytest.approx(diff, abs=1e-3), line
            assert m["word"] == (("worse" if diff > 0 else "better") if real else None), line
            checked += 1
        if line.startswith("- in sum,"):  # the summary sorts each named variant the same way
            for part in line.removeprefix("- in sum, ").rstrip(".").split("; "):
                group, names = part.split(": ")
                ref = group.split(" than " if " than " in group else " from ")[1]
                for other in names.split(", "):
                    diff, _, real = compare(vs[other.split(" (")[0]], vs[ref])
                    word = ("worse" if diff > 0 else "better") if real else None
                    assert group.startswith(f"measurably {word}" if word else "no measurable")
        assert "makes no difference" not in line
    if name not in ("mask", "norm"):  # these two compare in tables of their own
        assert checked, f"{name}: no verdict line found in {lines}"
    if name != "rnn":  # unequal steps under a time budget are pointed out (rnn lists them)
        assert any("unequal numbers of steps" in line for line in lines), name


def test_the_heads_conclusion_says_worse_when_more_heads_measure_worse():
    results = synthetic_results("heads")  # 2 heads +0.30, 4 heads -0.20, 8 heads +0.004
    lines = get_experiment("heads").conclude(results)
    assert "- 2 heads against 1 head: +0.300 ± 0.006 nats: measurably worse (> 2 SE)." in lines
    assert any(ln.startswith("- 4 heads against 1 head: -0.200") and "better" in ln for ln in lines)
    assert any(ln.startswith("- 8 heads against 1 head") and "noise" in ln for ln in lines)


def test_curves_of_runs_that_stopped_at_different_steps_are_all_drawn():
    from glassformer.experiments.report import mean_curve

    def run(points):
        return {"curve": [{"step": s, "elapsed_s": t, "val_loss": v} for s, t, v in points]}

    a = run([(50, 2.0, 3.0), (100, 4.0, 2.0), (130, 5.0, 1.8)])
    b = run([(50, 3.0, 3.2), (90, 5.0, 2.4)])  # slower: fewer steps in the same time
    x, mean, lo, hi = mean_curve([a, b], "val_loss", "elapsed_s")
    assert x == [3.0, 4.0, 5.0]  # the span both runs cover, on the union of their times
    assert mean[0] == pytest.approx((2.5 + 3.2) / 2) and mean[-1] == pytest.approx(2.1)
    assert lo[-1] == 1.8 and hi[-1] == 2.4
    x, mean, _, _ = mean_curve([a, b], "val_loss")
    assert x == [50, 90] and mean[-1] == pytest.approx((2.2 + 2.4) / 2)  # a: 3 - 40/50


def test_a_rerun_replaces_its_section_of_the_page_and_keeps_the_others(tmp_path, small_corpus):
    from glassformer.experiments.docs import build

    first, again = tmp_path / "first", tmp_path / "again"
    for name in ("mask", "heads"):
        run_experiment(get_experiment(name), first / name, steps=1, seeds=1, data=str(small_corpus))
    page = build(first, tmp_path / "docs").read_text()
    run_experiment(get_experiment("mask"), again / "mask", steps=2, seeds=1, data=str(small_corpus))
    new = build(again, tmp_path / "docs").read_text()
    heads = page[page.index("## `heads`") : page.index("## `mask`")]
    assert heads in new  # kept as it was
    assert new.index("## `heads`") < new.index("## `mask`") and new.count("## `mask`") == 1
    assert "glassformer experiment mask --steps 2" in new and "mask --steps 1" not in new
    assert (again / "mask" / "report.md").read_text().rstrip() in new
