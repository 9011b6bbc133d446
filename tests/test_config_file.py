"""`glassformer train --config FILE` (JSON or YAML, a run's own config.json too), flags over
the file, `--print-config`; and a run from .jsonl with `--data-field` and `--log` backends."""

import json
import re

import pytest

from glassformer.cli import main
from glassformer.core.metrics import read_metrics


def printed_config(capsys, *args) -> dict:
    capsys.readouterr()
    assert main(["train", "--print-config", *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_print_config_is_a_config_file(tmp_path, capsys):
    cfg = printed_config(capsys, "--preset", "tiny", "--train.lr", "0.01", "--max-steps", "7")
    assert cfg["family"] == "gpt" and cfg["train"]["lr"] == 0.01
    assert cfg["train"]["max_steps"] == 7 and cfg["model"]["n_layer"] == 2  # tiny's
    path = tmp_path / "c.json"
    path.write_text(json.dumps(cfg))
    assert printed_config(capsys, "--config", str(path)) == cfg  # round trip, any preset
    assert not (tmp_path / "runs").exists()  # printing trains nothing


def test_yaml_over_the_preset_and_flags_over_the_file(tmp_path, capsys):
    path = tmp_path / "small.yaml"
    path.write_text(
        "model: {n_layer: 3, n_embd: 48}\n"
        "train:\n  lr: 1e-3\n  max_steps: 50\n"  # YAML reads 1e-3 as text: it becomes 0.001
        "data: {path: notes.jsonl, field: body}\n"
    )
    cfg = printed_config(capsys, "--preset", "tiny", "--config", str(path), "--max-steps", "9")
    assert cfg["model"]["n_layer"] == 3 and cfg["model"]["n_embd"] == 48
    assert cfg["model"]["block_size"] == 32  # the rest stays the preset's
    assert cfg["train"]["lr"] == 0.001 and cfg["train"]["max_steps"] == 9  # the flag wins
    assert cfg["data"] == {**cfg["data"], "path": "notes.jsonl", "field": "body"}
    dotted = printed_config(capsys, "--config", str(path), "--train.max_steps", "11")
    assert dotted["train"]["max_steps"] == 11


def test_a_runs_own_config_json_trains_again(tmp_path, capsys, small_corpus):
    run = tmp_path / "run"
    args = ["--preset", "tiny", "--data", str(small_corpus), "--max-steps", "3", "--quiet"]
    assert main(["train", *args, "--train.lr", "0.002", "--out", str(run)]) == 0
    cfg = printed_config(capsys, "--config", str(run / "config.json"))
    assert cfg["train"]["lr"] == 0.002 and cfg["data"]["path"] == str(small_corpus)
    assert (
        cfg["model"]["vocab_size"]
        == json.loads((run / "config.json").read_text())["model"]["vocab_size"]
    )


@pytest.mark.parametrize(
    "text, message",
    [
        ('{"train": {"lrr": 1}}', r"c\.json: train\.lrr is not a setting"),
        ('{"trian": {}}', r"c\.json: 'trian' is not a section"),
        ('{"train": {"max_steps": "many"}}', r"c\.json: train\.max_steps must be int"),
        ('{"train": {"lr": -1}}', r"c\.json: invalid setting"),
        ("{not json", r"c\.json is not valid JSON"),
        ("[1, 2]", r"c\.json must hold a mapping"),
    ],
)
def test_a_bad_config_file_is_one_sentence(tmp_path, capsys, text, message):
    path = tmp_path / "c.json"
    path.write_text(text)
    assert main(["train", "--config", str(path), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert re.search(message, err), err
    assert not (tmp_path / "r").exists()


def test_jsonl_data_field_and_log_backends(tmp_path, capsys, shakespeare):
    lines = shakespeare.read_text().split("\n\n")[:200]
    data = tmp_path / "plays.jsonl"
    data.write_text("".join(json.dumps({"body": t}) + "\n" for t in lines))
    run = tmp_path / "run"
    args = ["train", "--preset", "tiny", "--data", str(data), "--data-field", "body",
            "--max-steps", "4", "--log", "tensorboard,csv", "--quiet",
            "--out", str(run)]  # fmt: skip
    assert main(args) == 0
    assert "plays.jsonl" in capsys.readouterr().err
    steps = [r["step"] for r in read_metrics(run / "metrics.jsonl")]
    assert steps == [1, 2, 3, 4]
    rows = (run / "metrics.csv").read_text().splitlines()
    assert rows[0] == "step,name,value" and {r.split(",")[0] for r in rows[1:]} == {
        "1",
        "2",
        "3",
        "4",
    }
    assert any(p.name.startswith("events.out.tfevents") for p in (run / "tensorboard").iterdir())
    assert main([*args[:5], "--data-field", "text", "--out", str(tmp_path / "r2")]) == 2
    assert "line 1 has no string field 'text'" in capsys.readouterr().err
    assert not (tmp_path / "r2").exists()
