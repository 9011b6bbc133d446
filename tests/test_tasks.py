"""The family tasks: data generators, short trainings that learn, checkpoints, the CLI."""

import datetime as dt
import json
import random
from dataclasses import replace

import pytest
import torch
from safetensors.torch import load_file, save_file

from glassformer.checkpoint import load, read_meta
from glassformer.cli import main
from glassformer.errors import UserError
from glassformer.generate.seq2seq import translate_tokens
from glassformer.models.encoder import Encoder
from glassformer.models.seq2seq import Seq2Seq
from glassformer.tasks import dates, mlm, reviews
from glassformer.tasks.run import train_config


def _cfg(task, steps: int, warmup: int = 20, **kw):
    """The task's TrainConfig for a short run: one evaluation, at the end."""
    return replace(
        train_config(task, steps), warmup_steps=min(warmup, steps), eval_interval=steps, **kw
    )


def _load(path, family=None):
    model, vocab = load(path, family=family)
    return model, vocab, read_meta(path)


def test_ordinals():
    got = [dates.ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 23, 31)]
    assert got == "1st 2nd 3rd 4th 11th 12th 13th 21st 22nd 23rd 31st".split()


def test_date_examples_are_correct_and_held_out_days_never_train():
    rng = random.Random(0)
    for _ in range(500):
        text, iso = dates.example(rng, held_out=False)
        day = dt.date.fromisoformat(iso)
        assert not dates.is_held_out(day.toordinal())
        assert str(day.year) in text and all(c in dates.ALPHABET for c in text)
    held = [dates.example(rng, held_out=True)[1] for _ in range(200)]
    assert all(dates.is_held_out(dt.date.fromisoformat(iso).toordinal()) for iso in held)
    assert dates.FORMATS[1](dt.date(2026, 11, 23)) == "November 23rd, 2026"


def test_dates_task_learns(tmp_path):
    task = dates.DatesTask(n_test=200)
    cfg = _cfg(task, 300, warmup=100)  # post-norm: long warmup
    results = dates.train(task, cfg, tmp_path, progress=False)
    assert results["heldout_exact_match"] >= 0.3  # the documented full run reaches >= 0.99
    model, vocab, meta = _load(tmp_path, family="seq2seq")
    assert isinstance(model, Seq2Seq) and meta["task"] == "dates"
    src, mask, _, _ = dates.encode_batch([("23 Nov 2026", "2026-11-23")], vocab)
    assert translate_tokens(model, src, mask, max_len=12).shape[0] == 1


def test_review_labels_follow_negation_and_contrast():
    rng = random.Random(3)
    for _ in range(300):
        text, label = reviews.review(rng)
        last = text.split(" but ")[-1].split(" and ")[0].split()
        adjective = next(w for w in reversed(last) if w in reviews.POSITIVE + reviews.NEGATIVE)
        polarity = int(adjective in reviews.POSITIVE)
        negated = any(w in reviews.NEGATIONS for w in last)
        assert label == (1 - polarity if negated else polarity), text


def test_sentiment_task_learns(tmp_path):
    task = reviews.SentimentTask(n_test=300)
    results = reviews.train(task, _cfg(task, 200), tmp_path, progress=False)
    assert results["heldout_accuracy"] >= 0.75
    model, _, meta = _load(tmp_path, family="encoder")
    assert isinstance(model, Encoder) and model.config.n_classes == 2


def test_mlm_masking_follows_bert():
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(10, 50, (64, 128), generator=gen)
    inputs, targets = mlm.mask_tokens(ids, 50, gen)
    chosen = targets >= 0
    assert 0.13 < chosen.float().mean() < 0.17
    assert torch.equal(targets[chosen], ids[chosen])
    masked = (inputs == mlm.MASK)[chosen].float().mean()
    kept = (inputs == ids)[chosen].float().mean()
    assert 0.75 < masked < 0.85 and 0.08 < kept < 0.16  # 10% kept (+ random hits)
    assert torch.equal(inputs[~chosen], ids[~chosen])


def test_mlm_task_beats_the_majority_guess(small_corpus, tmp_path):
    task = mlm.MLMTask(data=str(small_corpus), n_layer=2, n_embd=64, block_size=64, eval_batches=4)
    results = mlm.train(task, _cfg(task, 250, lr=2e-3), tmp_path, progress=False)
    assert results["heldout_masked_accuracy"] > results["majority_baseline_accuracy"] + 0.03


def test_cli_task_runs_and_rejects_gpt_flags(tmp_path, capsys):
    out = tmp_path / "run"
    assert (
        main(["train", "--task", "sentiment", "--max-steps", "3", "--out", str(out), "--quiet"])
        == 0
    )
    assert "heldout_accuracy" in json.loads(capsys.readouterr().out)
    assert (out / "metrics.jsonl").exists() and (out / "model.safetensors").exists()
    assert main(["train", "--task", "dates", "--model.n_layer", "3"]) == 2
    assert "--model.n_layer does not apply" in capsys.readouterr().err
    assert main(["train", "--task", "dates", "--data", str(tmp_path)]) == 2
    assert "mlm task only" in capsys.readouterr().err


@pytest.fixture
def sentiment_ckpt(tmp_path):
    out = tmp_path / "ckpt"
    task = reviews.SentimentTask(n_test=20)
    reviews.train(task, _cfg(task, 2), out, progress=False)
    # these tests change the files by hand: without the manifest they load as they are
    (out / "manifest.json").unlink()
    return out


def test_wrong_family_is_refused(sentiment_ckpt, capsys):
    with pytest.raises(UserError, match="holds a 'encoder' model, not a 'seq2seq' one"):
        load(sentiment_ckpt, family="seq2seq")
    # a GPT command on an encoder folder: one sentence, exit 2
    assert main(["generate", "--model", str(sentiment_ckpt)]) == 2
    assert "'encoder' model, not a 'gpt' one" in capsys.readouterr().err


def test_damaged_weights_name_the_tensor(sentiment_ckpt):
    path = sentiment_ckpt / "model.safetensors"
    good = load_file(str(path))

    save_file({k: v for k, v in good.items() if k != "blocks.1.mlp.fc.weight"}, str(path))
    with pytest.raises(UserError, match="missing tensor 'blocks.1.mlp.fc.weight'"):
        load(sentiment_ckpt)

    save_file({**good, "blocks.7.attn.qkv.weight": torch.zeros(2)}, str(path))
    with pytest.raises(UserError, match="unexpected tensor 'blocks.7.attn.qkv.weight'"):
        load(sentiment_ckpt)

    save_file({**good, "classifier.weight": torch.zeros(5, 64)}, str(path))
    with pytest.raises(UserError, match=r"'classifier.weight' has shape \(5, 64\)"):
        load(sentiment_ckpt)


def test_mismatched_config_names_the_tensor(sentiment_ckpt):
    meta = json.loads((sentiment_ckpt / "config.json").read_text())
    meta["model"]["n_embd"] = 32
    (sentiment_ckpt / "config.json").write_text(json.dumps(meta))
    with pytest.raises(UserError, match=r"tensor '[\w.]+' has shape \(\d+,( \d+)?\), the config"):
        load(sentiment_ckpt)
    meta["model"]["n_embd"] = 33
    (sentiment_ckpt / "config.json").write_text(json.dumps(meta))
    with pytest.raises(UserError, match="invalid model config"):
        load(sentiment_ckpt)


def test_lstm_baseline_trains_in_the_same_trainer(small_corpus, tmp_path):
    from glassformer.models.lstm import LSTMConfig, LSTMLanguageModel
    from glassformer.train.config import DataConfig, RunConfig, TrainConfig
    from glassformer.train.lm import LanguageModelRun

    cfg = RunConfig(
        model=LSTMConfig(block_size=32, n_layer=1, n_embd=64),
        train=TrainConfig(
            batch_size=8, max_steps=60, warmup_steps=5, eval_iters=2, sample_tokens=0, lr=5e-3
        ),
        data=DataConfig(path=str(small_corpus)),
    )
    run = LanguageModelRun(cfg, tmp_path, progress=False, log=lambda msg: None)
    assert isinstance(run.model, LSTMLanguageModel)
    first = run.estimate_loss(run.val_batches, 2)
    result = run.run()
    assert result.val_loss < first - 0.5
    meta = json.loads((tmp_path / "config.json").read_text())
    assert meta["family"] == "lstm" and "LSTM" in (tmp_path / "README.md").read_text()
