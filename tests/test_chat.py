"""`glassformer chat` as people expect from ollama and llama-cli: commands, --system, Ctrl-C
stops one reply, a note at the length limit, a load line, a true --help.

Driven in-process (`main(["chat", ...])` with stdin replaced) on tiny random models built here:
a char model (plain text: each reply runs to a newline) and a ChatML one (a chat template).
Ctrl-C is a KeyboardInterrupt raised from inside a decode step or by a reader that stops
reading: no signals, no timing. The smollm2 test at the end is marked slow.
"""

import io

import pytest
import torch

import glassformer
from glassformer import GPT, GPTConfig
from glassformer.checkpoint import save
from glassformer.cli import main
from glassformer.generate.conversation import Conversation
from glassformer.generate.engine import Engine
from glassformer.tokenizers import CharTokenizer
from glassformer.tokenizers.pretrained_bpe import PretrainedBPE, pattern_for

GREEDY = ["--strategy", "greedy"]


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    """A char-level checkpoint (random weights): a plain-text model."""
    tok = CharTokenizer("".join(sorted(set("abcdefghijklmnopqrstuvwxyz .,:/\n"))))
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=64, n_layer=2, n_head=2, n_embd=32))
    with torch.no_grad():  # larger weights than the init: varied, confident predictions
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(std=0.3)
    out = tmp_path_factory.mktemp("ckpt") / "plain"
    save(out, model.eval(), tok)
    return out


@pytest.fixture(scope="module")
def chatml(tmp_path_factory):
    """A checkpoint whose vocabulary carries a ChatML template (as SmolLM2's)."""
    tokens = [chr(i) for i in range(33, 127)] + ["Ġ", "Ċ", "<|im_start|>", "<|im_end|>"]
    tok = PretrainedBPE.from_byte_level(
        tokens, [1] * 96 + [3, 3], [], pattern_for("gpt2"), eos_id=97,
        chat_template=(
            "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n"
            "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
        ),
    )  # fmt: skip
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=98, block_size=128, n_layer=1, n_head=2, n_embd=16))
    out = tmp_path_factory.mktemp("ckpt") / "chatml"
    save(out, model.eval(), tok)
    return out


def chat(monkeypatch, capsys, model, text, *flags, stdin=None):
    """`glassformer chat --model MODEL FLAGS` on `text` as stdin: (exit, stdout, stderr)."""
    monkeypatch.setattr("sys.stdin", stdin or io.StringIO(text))
    code = main(["chat", "--model", str(model), *flags])
    out, err = capsys.readouterr()
    return code, out, err


def reference(model_dir, system=None, max_new_tokens=8):
    model, tok = glassformer.load(model_dir)
    return Conversation(model, tok, system, strategy="greedy", max_new_tokens=max_new_tokens)


# ---- commands ------------------------------------------------------------------------------


def test_commands_are_never_sent_to_the_model(plain, monkeypatch, capsys):
    lines = "to be\n/help\n/frob\n/system be kind\n/clear\nto be\n/bye\nnever\n"
    code, out, err = chat(monkeypatch, capsys, plain, lines, *GREEDY, "--max-new-tokens", "6")
    assert code == 0
    model, tok = glassformer.load(plain)
    first = glassformer.generate(model, tok, "to be\n", max_new_tokens=6, stop=["\n"])
    assert out == f"{first}\n{first}\n"  # /clear: the same reply afresh; nothing after /bye
    assert "/system TEXT" in err and "/clear" in err  # /help
    assert "unknown command /frob; /help lists the commands" in err
    assert "has no chat template, so it has no system role" in err


def test_exit_ends_the_chat_and_double_slash_sends_a_slash(plain, monkeypatch, capsys):
    code, out, err = chat(monkeypatch, capsys, plain, "//a\n/exit\nb\n", *GREEDY)
    model, tok = glassformer.load(plain)
    assert code == 0
    assert out == glassformer.generate(model, tok, "/a\n", max_new_tokens=200, stop=["\n"]) + "\n"


def test_system_flag_on_a_plain_model_is_one_sentence_exit_2(plain, monkeypatch, capsys):
    code, out, err = chat(monkeypatch, capsys, plain, "hi\n", "--system", "be kind")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "no system role" in err and "--system" in err


def test_system_prompt_and_clear_with_a_chat_template(chatml, monkeypatch, capsys):
    n = ["--max-new-tokens", "5"]
    lines = "Speak.\n/system Be brief.\nSpeak.\n/clear\nSpeak.\n"
    code, out, err = chat(monkeypatch, capsys, chatml, lines, *GREEDY, *n, "--system", "Hi.")
    assert code == 0
    ref = reference(chatml, system="Hi.", max_new_tokens=5)
    expect, reasons = [], []
    for system, clear in [("Hi.", False), ("Be brief.", False), ("Be brief.", True)]:
        ref.system = system
        if clear:
            ref.clear()
        expect.append("".join(ref.say("Speak.")) + "\n")
        reasons.append(ref.finish_reason)
    assert out == "".join(expect)
    assert expect[2] != expect[0] or expect[1] != expect[0]  # the system prompt is in the prompt
    assert err.count("note: the reply stopped at --max-new-tokens 5;") == reasons.count("length")
    assert "(system prompt set)" in err and "(the conversation starts afresh)" in err


def test_a_system_change_restarts_the_cache_over_the_whole_conversation(chatml):
    ref = reference(chatml, max_new_tokens=4)
    "".join(ref.say("One."))
    ref.system = "Be brief."
    second = "".join(ref.say("Two."))
    fresh = reference(chatml, system="Be brief.", max_new_tokens=4)
    fresh.messages = list(ref.messages[:2])
    assert "".join(fresh.say("Two.")) == second
    assert ref.messages == fresh.messages and ref.seen == fresh.seen


# ---- the length note, the load line, Ctrl-C at the prompt ----------------------------------


def test_a_reply_cut_at_the_length_limit_gets_a_note(plain, monkeypatch, capsys):
    model, tok = glassformer.load(plain)
    reply = glassformer.generate(model, tok, "to be\n", max_new_tokens=4, stop=["\n"])
    assert len(reply) == 4  # (these weights write no newline in 4 characters)
    code, out, err = chat(monkeypatch, capsys, plain, "to be\n", *GREEDY, "--max-new-tokens", "4")
    assert code == 0 and out == reply + "\n"
    assert "note: the reply stopped at --max-new-tokens 4; pass a larger value" in err


class Terminal(io.StringIO):
    """A typed session: a tty that raises KeyboardInterrupt (Ctrl-C) after its lines."""

    def isatty(self) -> bool:
        return True

    def readline(self, *args) -> str:
        line = super().readline(*args)
        if not line:
            raise KeyboardInterrupt
        return line


def test_interactive_chat_says_it_loads_and_ctrl_c_at_the_prompt_ends_with_0(
    plain, monkeypatch, capsys
):
    code, out, err = chat(
        monkeypatch, capsys, plain, "", *GREEDY, "--max-new-tokens", "3", stdin=Terminal("ab\n")
    )
    assert code == 0
    assert err.index(f"loading {plain} ...") < err.index("chatting with")
    assert "/help lists the commands" in err
    model, tok = glassformer.load(plain)
    reply = glassformer.generate(model, tok, "ab\n", max_new_tokens=3, stop=["\n"])
    assert out == "> " + reply + "\n> "  # the prompts, the reply; Ctrl-C at the second prompt


def test_piped_chat_keeps_stdout_to_the_replies(plain, monkeypatch, capsys):
    code, out, err = chat(monkeypatch, capsys, plain, "", *GREEDY)
    assert code == 0 and out == "" and err == ""  # no load line, no prompt


# ---- Ctrl-C during a reply stops that reply only ---------------------------------------------


def interrupt_decode(monkeypatch, after: int) -> None:
    """Ctrl-C during the `after`-th decode step (once): a KeyboardInterrupt from the forward."""
    decode, calls = Engine.decode, []

    def decode_then_interrupt(self):
        calls.append(1)
        if len(calls) == after:
            raise KeyboardInterrupt
        return decode(self)

    monkeypatch.setattr(Engine, "decode", decode_then_interrupt)


def test_ctrl_c_in_a_reply_keeps_the_partial_reply_and_the_chat_goes_on(plain, monkeypatch, capsys):
    interrupt_decode(monkeypatch, after=3)  # prefill's token and 2 decoded ones, then Ctrl-C
    flags = [*GREEDY, "--max-new-tokens", "10"]
    code, out, err = chat(monkeypatch, capsys, plain, "to be\nor not\n", *flags)
    assert code == 0
    model, tok = glassformer.load(plain)
    full = glassformer.generate(model, tok, "to be\n", max_new_tokens=10, stop=["\n"])
    partial = full[:3]
    history = "to be\n" + partial + "\n" + "or not\n"  # the cut reply stays, then a newline
    second = glassformer.generate(model, tok, history, max_new_tokens=10, stop=["\n"])
    assert out == f"{partial}\n{second}\n"
    assert err.count("note: reply stopped (Ctrl-C)") == 1


def test_ctrl_c_in_a_templated_reply_keeps_it_as_the_assistants_turn(chatml, monkeypatch, capsys):
    interrupt_decode(monkeypatch, after=2)
    flags = [*GREEDY, "--max-new-tokens", "6"]
    code, out, err = chat(monkeypatch, capsys, chatml, "One.\nTwo.\n", *flags)
    assert code == 0 and "note: reply stopped (Ctrl-C)" in err
    monkeypatch.undo()
    ref = reference(chatml, max_new_tokens=6)
    whole = ref.say("One.")
    partial = "".join(next(whole) for _ in range(2))  # ASCII tokens: one piece each
    whole.close()
    assert ref.messages[-1] == {"role": "assistant", "content": partial}
    assert out == partial + "\n" + "".join(ref.say("Two.")) + "\n"


@pytest.mark.parametrize("where", ["decode", "reader"])
def test_an_interrupted_reply_continues_like_a_fresh_conversation(chatml, monkeypatch, where):
    """Cut inside a decode step the cache is dropped (it may be half-written) and the next turn
    starts afresh over the history; cut by the reader (at a yield) the cache is kept. Either
    way the next reply equals that of a fresh conversation with the same messages."""
    ref = reference(chatml, max_new_tokens=6)
    if where == "decode":
        interrupt_decode(monkeypatch, after=2)
        with pytest.raises(KeyboardInterrupt):
            "".join(ref.say("One."))
        monkeypatch.undo()
        assert ref.session.seq is None and ref.finish_reason == "cancelled"
    else:
        pieces = ref.say("One.")
        next(pieces), next(pieces)
        pieces.close()
        assert ref.session.seq is not None and ref.finish_reason == "cancelled"
    assert [m["role"] for m in ref.messages] == ["user", "assistant"]
    fresh = reference(chatml, max_new_tokens=6)
    fresh.messages = list(ref.messages)
    assert "".join(ref.say("Two.")) == "".join(fresh.say("Two."))
    assert ref.session.ids == fresh.session.ids


# ---- --help --------------------------------------------------------------------------------


def test_help_describes_both_kinds_of_model(capsys):
    with pytest.raises(SystemExit):
        main(["chat", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "answers until it ends its turn" in text
    assert "appends each line to the text and answers until it writes a newline" in text
    for words in ("/bye", "/clear", "/system TEXT", "/help", "--system", "Ctrl-C during a reply"):
        assert words in text


# ---- a real instruct model -------------------------------------------------------------------


@pytest.mark.slow
def test_smollm2_system_prompt_and_clear(smollm2_gguf, monkeypatch, capsys):
    question = "What is the capital of France?"
    lines = f"{question}\n/clear\n{question}\n/system Your name is Glassy.\nWhat is your name?\n"
    code, out, err = chat(monkeypatch, capsys, "smollm2", lines, *GREEDY, "--max-new-tokens", "30")
    assert code == 0, err
    first, again, name = out.strip().split("\n")
    assert "Paris" in first and again == first  # /clear: the same answer afresh
    # /system: the next reply is that of the conversation so far with the system prompt (a
    # 135M model does not take the name on, but the prompt changes its answer)
    model, tokenizer = glassformer.load("smollm2")
    answers = {}
    for system in (None, "Your name is Glassy."):
        ref = Conversation(model, tokenizer, system, strategy="greedy", max_new_tokens=30)
        ref.messages = [
            {"role": "user", "content": question},
            {"role": "assistant", "content": first},
        ]
        answers[system] = "".join(ref.say("What is your name?")).strip()
    assert name == answers["Your name is Glassy."] != answers[None]
