"""The public API is typed and callable as documented: `py.typed`, mypy clean on the public
modules and on a user's script, `glassformer.generate` a function beside the importable
`glassformer.generate` subpackage, `glassformer --version`."""

import subprocess
import sys
import textwrap
from importlib.metadata import version
from pathlib import Path

import pytest
import torch

import glassformer
from glassformer import GPT, GPTConfig
from glassformer.checkpoint import save
from glassformer.cli import main
from glassformer.generate import Session
from glassformer.tokenizers import CharTokenizer

SRC = Path(glassformer.__file__).parent
PUBLIC = [
    "__init__.py",
    "checkpoint/__init__.py",
    "checkpoint/read.py",
    "generate/__init__.py",
    "generate/api.py",
    "generate/session.py",
    "inspect/__init__.py",
    "inspect/cache.py",
]

# What a user writes; mypy must accept it and infer these types (assert_type fails otherwise).
USER_SCRIPT = """
from typing import assert_type

import torch
from torch import nn

import glassformer
from glassformer.generate import Session
from glassformer.tokenizers import Tokenizer

model, tok = glassformer.load("runs/tiny")
assert_type(model, nn.Module)
assert_type(tok, Tokenizer)
assert_type(glassformer.generate(model, tok, "ROMEO:"), str)
assert_type(glassformer.generate(model, tok, ["a", "b"]), list[str])
best = glassformer.generate(model, tok, "a", strategy="beam", num_return_sequences=2)
assert_type(best, list[str])
for piece in glassformer.stream(model, tok, "ROMEO:", max_new_tokens=8):
    assert_type(piece, str)
out, cache = glassformer.run_with_cache(model, torch.zeros(1, 3, dtype=torch.long))
assert_type(cache, dict[str, torch.Tensor])
session = Session(model, tok)
session.feed("hi")
assert_type("".join(session.stream()), str)
"""


def test_py_typed_marks_the_package():
    assert (SRC / "py.typed").is_file()


@pytest.mark.slow
def test_mypy_is_clean_on_the_public_modules_and_a_users_script(tmp_path):
    script = tmp_path / "user.py"
    script.write_text(textwrap.dedent(USER_SCRIPT))
    files = [str(SRC / f) for f in PUBLIC] + [str(script)]
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--follow-imports=silent", "--cache-dir",
         str(tmp_path / "mypy"), *files],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    tok = CharTokenizer.train("to be or not to be")
    torch.manual_seed(0)
    cfg = GPTConfig(vocab_size=tok.vocab_size, block_size=16, n_layer=1, n_head=2, n_embd=16)
    out = tmp_path_factory.mktemp("tiny")
    save(out, GPT(cfg), tok)
    return out


def test_generate_is_a_function_and_the_subpackage_stays_importable(tiny):
    from glassformer.generate import api

    assert glassformer.generate is api.generate and callable(glassformer.generate)
    assert glassformer.stream is api.stream
    model, tok = glassformer.load(tiny)
    text = glassformer.generate(model, tok, "to be", max_new_tokens=5)
    assert isinstance(text, str) and text == "".join(glassformer.stream(model, tok, "to be", 5))
    session = Session(model, tok, max_new_tokens=5)
    session.feed("to be")
    assert "".join(session.stream()) == text  # greedy, both


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.strip() == f"glassformer {version('glassformer')}"
    assert glassformer.__version__ == version("glassformer")
