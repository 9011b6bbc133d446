"""The trainer: loss falls, records and checkpoints are written, resume is exact."""

import json

import pytest
import torch

import glassformer
from glassformer.cli import main
from glassformer.core.metrics import read_metrics
from glassformer.train.data import Batches, split_ids
from glassformer.train.optim import learning_rate, param_groups
from glassformer.train.presets import get_preset


def train(out, *extra):
    return main(["train", "--preset", "tiny", "--quiet", "--out", str(out), *extra])


def test_tiny_run_learns_and_writes_a_checkpoint(tmp_path, small_corpus, capsys):
    out = tmp_path / "run"
    assert train(out, "--data", str(small_corpus), "--max-steps", "40") == 0
    for name in (
        "model.safetensors",
        "config.json",
        "tokenizer.model",
        "trainer_state.pt",
        "metrics.jsonl",
        "loss.png",
        "README.md",
    ):
        assert (out / name).exists(), name
    records = read_metrics(out / "metrics.jsonl")
    assert [r["step"] for r in records] == list(range(1, 41))
    vals = [r["val_loss"] for r in records if "val_loss" in r]
    assert len(vals) == 4 and vals[-1] < vals[0]
    assert records[-1]["val_loss"] and records[-1]["val_bpb"] > 0
    assert "---- sample ----" in capsys.readouterr().out
    assert not list(out.glob(".*tmp"))  # no temporary files left behind

    model, tok = glassformer.load(out)
    assert not model.training
    ids = torch.tensor([tok.encode("the ")])
    assert model(ids)[0].shape == (1, 4, tok.vocab_size)


def test_resume_is_exact(tmp_path, small_corpus):
    straight, split = tmp_path / "straight", tmp_path / "split"
    common = ["--data", str(small_corpus), "--max-steps", "24", "--model.dropout", "0.1"]
    assert train(straight, *common) == 0
    assert train(split, *common, "--stop-after", "12") == 0
    assert json.loads((split / "metrics.jsonl").read_text().splitlines()[-1])["step"] == 12
    assert train(split, *common, "--resume") == 0
    a = [r["train_loss"] for r in read_metrics(straight / "metrics.jsonl")]
    b = [r["train_loss"] for r in read_metrics(split / "metrics.jsonl")]
    assert len(a) == len(b) == 24
    assert max(abs(x - y) for x, y in zip(a, b, strict=True)) <= 1e-6


def test_grad_accumulation_equals_a_bigger_batch(tmp_path, small_corpus):
    """Two micro-batches of 4 give the same step as one batch of 8 with the same windows."""
    from glassformer.train.lm import LanguageModelRun

    losses = []
    for batch, accum in ((8, 1), (4, 2)):
        cfg = get_preset("tiny")
        cfg.data.path = str(small_corpus)
        cfg.train.batch_size, cfg.train.grad_accum, cfg.train.precision = batch, accum, "fp32"
        t = LanguageModelRun(cfg, tmp_path / f"b{batch}", progress=False).trainer
        losses.append([t.train_step(1e-3) for _ in range(3)])
    assert max(abs(x - y) for x, y in zip(*losses, strict=True)) < 1e-5


def test_batches_are_shifted_windows():
    b = Batches(torch.arange(1000).numpy(), block_size=8)
    x, y = b.sample(5, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (5, 8)
    assert (y == x + 1).all()


def test_split_refuses_a_corpus_shorter_than_the_context():
    from glassformer.errors import UserError

    with pytest.raises(UserError, match="too short"):
        split_ids(torch.arange(50).numpy(), 0.1, block_size=16)


def test_schedules():
    cfg = get_preset("nanogpt-cpu").train
    assert learning_rate(cfg, 0, 0.0) == pytest.approx(cfg.lr / cfg.warmup_steps)
    assert learning_rate(cfg, 99, 99 / 2000) == pytest.approx(cfg.lr)
    assert learning_rate(cfg, 2000, 1.0) == pytest.approx(cfg.min_lr)
    cfg.schedule = "wsd"
    assert learning_rate(cfg, 1000, 0.5) == pytest.approx(cfg.lr)  # stable phase
    assert learning_rate(cfg, 1800, 0.9) == pytest.approx((cfg.lr + cfg.min_lr) / 2)


def test_weight_decay_only_on_matrices():
    model = glassformer.GPT(get_preset("tiny").model)
    decay, no_decay = param_groups(model, 0.1)
    assert all(p.dim() >= 2 for p in decay["params"])
    assert all(p.dim() < 2 for p in no_decay["params"]) and no_decay["weight_decay"] == 0
    n = sum(p.numel() for g in (decay, no_decay) for p in g["params"])
    assert n == sum(p.numel() for p in model.parameters())


def _losses(out) -> list[float]:
    return [r["train_loss"] for r in read_metrics(out / "metrics.jsonl")]


def _lstm_run(out, small_corpus, resume=False, stop_after=None):
    from glassformer.models.lstm import LSTMConfig
    from glassformer.train.config import DataConfig, RunConfig, TrainConfig
    from glassformer.train.lm import LanguageModelRun, read_run_config

    if resume:  # the config comes back from the folder (family "lstm")
        cfg = read_run_config(out)
    else:
        cfg = RunConfig(
            model=LSTMConfig(block_size=32, n_layer=2, n_embd=32, dropout=0.1),
            train=TrainConfig(batch_size=4, max_steps=6, eval_interval=2, eval_iters=2),
            data=DataConfig(path=str(small_corpus)),
        )
        cfg.train.sample_tokens = 0
    LanguageModelRun(cfg, out, resume=resume, progress=False, log=lambda m: None).run(stop_after)


@pytest.mark.parametrize("family", ["gpt", "lstm", "encoder", "seq2seq"])
def test_every_family_trains_saves_loads_and_resumes_through_the_one_loop(
    family, tmp_path, small_corpus
):
    """GPT and LSTM (the language-model run), the encoder (sentiment task) and the
    encoder-decoder (dates task): one Trainer, one checkpoint writer, exact resume."""
    from glassformer.checkpoint import load, read_meta
    from glassformer.tasks import dates, reviews
    from glassformer.tasks.run import train_config

    def train_into(out, **kw):
        if family == "gpt":
            extra = ["--stop-after", str(kw["stop_after"])] if kw.get("stop_after") else []
            extra += ["--resume"] if kw.get("resume") else []
            common = ["--data", str(small_corpus), "--max-steps", "6", "--model.dropout", "0.1"]
            assert train(out, *common, "--train.sample_tokens", "0", *extra) == 0
        elif family == "lstm":
            _lstm_run(out, small_corpus, **kw)
        else:  # small held-out sets: the task evaluates at every one of the 6 steps
            module = {"encoder": reviews, "seq2seq": dates}[family]
            task = {"encoder": reviews.SentimentTask, "seq2seq": dates.DatesTask}[family](n_test=50)
            cfg = train_config(task, max_steps=6)
            module.train(task, cfg, out, progress=False, log=lambda m: None, **kw)

    straight, split = tmp_path / "straight", tmp_path / "split"
    train_into(straight)
    train_into(split, stop_after=3)
    assert len(_losses(split)) == 3
    train_into(split, resume=True)
    a, b = _losses(straight), _losses(split)
    assert len(a) == len(b) == 6
    assert max(abs(x - y) for x, y in zip(a, b, strict=True)) <= 1e-6

    meta = read_meta(split)
    assert meta["family"] == family and (split / "trainer_state.pt").exists()
    model, _ = load(split)
    reference = load(straight)[0].state_dict()
    assert not model.training and model.state_dict().keys() == reference.keys()
    for name, p in model.state_dict().items():  # the resumed run ends on the same weights
        torch.testing.assert_close(p, reference[name], msg=name)
