"""User mistakes end in one sentence and exit status 2; Ctrl-C in 130 with a usable checkpoint."""

import os
import signal
import subprocess
import sys
import time

import pytest

import glassformer
from glassformer.cli import main


def run_cli(*args, **kw):
    return subprocess.run(
        [sys.executable, "-m", "glassformer", *args],
        capture_output=True,
        text=True,
        timeout=120,
        **kw,
    )


def one_clear_error(capsys_or_text) -> str:
    err = capsys_or_text if isinstance(capsys_or_text, str) else capsys_or_text.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert lines and "error" in lines[-1]
    return lines[-1]


@pytest.fixture
def trained(tmp_path_factory, small_corpus):
    out = tmp_path_factory.mktemp("ckpt") / "run"
    assert (
        main(
            [
                "train",
                "--preset",
                "tiny",
                "--quiet",
                "--out",
                str(out),
                "--data",
                str(small_corpus),
                "--max-steps",
                "4",
            ]
        )
        == 0
    )
    return out


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda d: d / "missing.txt", "no such file"),
        (lambda d: (d / "empty.txt").write_text("") and None or d / "empty.txt", "empty"),
        (
            lambda d: (d / "short.txt").write_text("hello world") and None or d / "short.txt",
            "too short",
        ),
        (
            lambda d: (d / "bin.txt").write_bytes(b"\x00\x01\x02" * 100) and None or d / "bin.txt",
            "binary",
        ),
        (
            lambda d: (
                (d / "latin.txt").write_bytes("café".encode("latin-1") * 100)
                and None
                or d / "latin.txt"
            ),
            "not UTF-8",
        ),
        (lambda d: (d / "nodir").mkdir() or d / "nodir", "no .txt, .jsonl or .parquet files"),
    ],
)
def test_bad_corpus(tmp_path, capsys, make, match):
    data = make(tmp_path)
    out = tmp_path / "out"
    assert (
        main(["train", "--preset", "tiny", "--quiet", "--data", str(data), "--out", str(out)]) == 2
    )
    assert match in one_clear_error(capsys)
    assert not out.exists()  # nothing half-written


@pytest.mark.parametrize("steps", ["0", "-3", "many"])
def test_bad_max_steps(tmp_path, capsys, steps):
    with pytest.raises(SystemExit) as e:
        main(["train", "--preset", "tiny", "--max-steps", steps, "--out", str(tmp_path / "o")])
    assert e.value.code == 2
    assert "--max-steps" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_bad_config_override(tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["train", "--preset", "tiny", "--model.n_head", "3", "--out", str(out)]) == 2
    assert "divisible" in one_clear_error(capsys)
    assert main(["train", "--preset", "tiny", "--model.pos_emb", "xpos", "--out", str(out)]) == 2
    assert "learned, sinusoidal, rotary, alibi, none" in one_clear_error(capsys)
    assert not out.exists()


@pytest.mark.parametrize(
    "flags, match",
    [
        (["--temperature", "-1"], "--temperature"),
        (["--temperature", "nan"], "--temperature"),
        (["--top-p", "1.5"], "--top-p"),
        (["--top-k", "-2"], "--top-k"),
        (["--max-new-tokens", "0"], "--max-new-tokens"),
        (["--prompt", "\u2603 snowman"], "\u2603"),
    ],
)
def test_bad_generate_options(trained, capsys, flags, match):
    assert main(["generate", "--model", str(trained), *flags]) == 2
    assert match in one_clear_error(capsys)


def test_generate_from_a_folder_that_is_not_a_checkpoint(tmp_path, capsys):
    assert main(["generate", "--model", str(tmp_path)]) == 2
    assert "not a glassformer checkpoint" in one_clear_error(capsys)
    assert main(["generate", "--model", str(tmp_path / "nope")]) == 2
    assert "no such checkpoint folder" in one_clear_error(capsys)
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.safetensors").write_bytes(b"not safetensors")
    assert main(["generate", "--model", str(tmp_path)]) == 2
    one_clear_error(capsys)


def test_generate_crops_a_long_prompt_and_is_seeded(trained, capsys):
    args = [
        "generate",
        "--model",
        str(trained),
        "--prompt",
        "the " * 40,
        "--max-new-tokens",
        "10",
        "--seed",
        "3",
    ]
    assert main(args) == 0
    first = capsys.readouterr()
    assert "longer than the model's context" in first.err
    assert main(args) == 0
    assert capsys.readouterr().out == first.out  # same seed, same text
    assert (
        main(
            [
                "generate",
                "--model",
                str(trained),
                "--prompt",
                "the",
                "--temperature",
                "0",
                "--max-new-tokens",
                "5",
            ]
        )
        == 0
    )
    assert capsys.readouterr().out.startswith("the")


def test_the_installed_command_reports_errors_without_traceback(tmp_path):
    r = run_cli("train", "--data", str(tmp_path / "nothing.txt"), "--out", str(tmp_path / "o"))
    assert r.returncode == 2
    assert "no such file" in one_clear_error(r.stderr)
    help_text = run_cli("train", "--help").stdout
    for flag in (
        "--data",
        "--tokenizer",
        "--vocab-size",
        "--preset",
        "--max-steps",
        "--time-budget",
        "--out",
        "--resume",
        "--seed",
        "--stop-after",
        "--model.n_layer",
        "--train.lr",
        "--data.val_fraction",
    ):
        assert flag in help_text, flag


def test_ctrl_c_exits_130_and_leaves_a_loadable_checkpoint(tmp_path, small_corpus):
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "glassformer",
            "train",
            "--preset",
            "tiny",
            "--quiet",
            "--data",
            str(small_corpus),
            "--out",
            str(out),
            "--max-steps",
            "100000",
            "--train.eval_interval",
            "5",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    deadline = time.time() + 90
    while time.time() < deadline and not (out / "trainer_state.pt").exists():
        time.sleep(0.2)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "--resume" in err
    model, _ = glassformer.load(out)
    assert model.config.n_layer == 2
    assert not list(out.glob(".*tmp"))
