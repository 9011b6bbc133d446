"""Fine-tuning: `glassformer train --init-from MODEL` (full or LoRA) and nn/lora.py's math."""

import io
import json
import re

import pytest
import torch
from torch import nn

import glassformer
from glassformer import checkpoint
from glassformer.cli import main
from glassformer.errors import UserError
from glassformer.models.config import GPTConfig
from glassformer.models.gpt import GPT
from glassformer.nn.lora import LoRALinear, add_lora, merge_lora, merged_copy
from glassformer.tokenizers import BPETokenizer, CharTokenizer
from glassformer.tokenizers.formats import save_hf_tokenizer_json

FAST = [
    "--quiet", "--max-steps", "12", "--context", "16", "--train.batch_size", "4",
    "--train.eval_interval", "12", "--train.eval_iters", "2", "--train.sample_tokens", "0",
    "--train.warmup_steps", "2", "--train.lr", "3e-3", "--train.precision", "fp32",
]  # fmt: skip


def tiny_checkpoint(path, text: str, bias: bool = False) -> None:
    tok = CharTokenizer.train(text)
    config = GPTConfig(
        vocab_size=tok.vocab_size, block_size=32, n_layer=2, n_head=2, n_embd=32, bias=bias
    )
    torch.manual_seed(0)
    checkpoint.save(path, GPT(config), tok, {"data": {"path": "made by the test"}})


def finetune(capsys, init, data, out, *extra) -> tuple[float, float]:
    """Run `train --init-from`; returns (val loss before, val loss after)."""
    rc = main(["train", "--init-from", str(init), "--data", str(data), "--out", str(out)]
              + FAST + list(extra))  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 0, err
    before = float(re.search(r"before fine-tuning: val loss ([\d.]+)", err)[1])
    after = float(re.search(r"step \d+: val loss ([\d.]+)", err)[1])
    return before, after


def hf_bpe_tokenizer(text: str, folder) -> BPETokenizer:
    """A small byte-level BPE, also written as `folder/tokenizer.json`."""
    tok = BPETokenizer.train(text, 300)
    folder.mkdir(parents=True, exist_ok=True)
    save_hf_tokenizer_json(tok, folder / "tokenizer.json")
    return tok


def save_with_transformers(model, tok: BPETokenizer, src, out) -> None:
    """`save_pretrained` of transformers 5: config, safetensors, tokenizer.json only."""
    from transformers import PreTrainedTokenizerFast

    model.save_pretrained(out)
    fast = PreTrainedTokenizerFast(
        tokenizer_file=str(src / "tokenizer.json"), eos_token="<|endoftext|>"
    )
    fast.save_pretrained(out)


# ---- the adapter itself --------------------------------------------------------------------


def test_lora_starts_as_the_base_layer_and_merges_to_the_same_function():
    torch.manual_seed(0)
    base = nn.Linear(16, 12)
    lora = LoRALinear(base, rank=4, alpha=8.0)
    x = torch.randn(5, 16)
    assert torch.equal(lora(x), base(x))  # B = 0
    nn.init.normal_(lora.B)
    expected = base(x) + 2.0 * (x @ lora.A.t() @ lora.B.t())  # alpha / r = 2
    torch.testing.assert_close(lora(x), expected)
    torch.testing.assert_close(lora.merged()(x), lora(x), atol=1e-6, rtol=1e-5)
    assert [n for n, p in lora.named_parameters() if p.requires_grad] == ["A", "B"]


def test_add_lora_freezes_the_model_and_only_adapters_train():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=20, block_size=8, n_layer=2, n_head=2, n_embd=16))
    idx = torch.randint(0, 20, (2, 8))
    reference = model(idx)[0]
    trainable = add_lora(model, rank=2, alpha=4.0)
    # per block: qkv 16->48, proj 16->16, fc 16->64, proj 64->16: 2 * (in + out) each
    assert trainable == 2 * 2 * ((16 + 48) + (16 + 16) + (16 + 64) + (64 + 16))
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    assert names and all(n.endswith((".A", ".B")) for n in names)
    assert torch.equal(model(idx)[0], reference)
    for p in model.parameters():
        if p.requires_grad:
            nn.init.normal_(p, std=0.1)
    adapted = model(idx)[0]
    merged = merged_copy(model)  # the original keeps its adapters
    assert any(isinstance(m, LoRALinear) for m in model.modules())
    assert not any(isinstance(m, LoRALinear) for m in merged.modules())
    torch.testing.assert_close(merged(idx)[0], adapted, atol=1e-5, rtol=1e-5)
    assert set(merge_lora(model).state_dict()) == set(GPT(model.config).state_dict())
    with pytest.raises(ValueError, match="between 1 and 16"):
        add_lora(GPT(model.config), rank=17, alpha=1.0)


# ---- train --init-from ---------------------------------------------------------------------


def test_full_finetune_of_our_checkpoint_lowers_val_loss_and_resumes(tmp_path, shakespeare, capsys):
    tiny_checkpoint(tmp_path / "base", shakespeare.read_text())
    before, after = finetune(capsys, tmp_path / "base", shakespeare, tmp_path / "ft")
    assert after < before - 0.2
    meta = checkpoint.read_meta(tmp_path / "ft")
    assert meta["finetune"] == {
        "init_from": str(tmp_path / "base"), "lora_rank": 0, "lora_alpha": 16.0, "context": 16,
    }  # fmt: skip
    assert meta["model"] == checkpoint.read_meta(tmp_path / "base")["model"]  # its architecture
    # a full fine-tune is an ordinary run: it resumes
    rc = main(["train", "--out", str(tmp_path / "ft"), "--resume", "--data", str(shakespeare),
               "--max-steps", "14", "--quiet"])  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    last = (tmp_path / "ft" / "metrics.jsonl").read_text().splitlines()[-1]
    assert json.loads(last)["step"] == 14


def test_lora_finetune_of_a_transformers_gpt2_folder(tmp_path, shakespeare, capsys):
    """A GPT-2 saved by transformers 5 (tokenizer.json only) loads, fine-tunes with LoRA and
    the merged folder generates."""
    from transformers import GPT2Config, GPT2LMHeadModel

    text = shakespeare.read_text()
    tok = hf_bpe_tokenizer(text[:20_000], tmp_path / "tok")
    torch.manual_seed(0)
    eot = tok.eot_id
    config = GPT2Config(vocab_size=tok.vocab_size, n_positions=64, n_embd=32, n_layer=2,
                        n_head=2, bos_token_id=eot, eos_token_id=eot)  # fmt: skip
    hf = GPT2LMHeadModel(config).eval()
    save_with_transformers(hf, tok, tmp_path / "tok", tmp_path / "gpt2")
    assert not (tmp_path / "gpt2" / "vocab.json").exists()
    model, loaded = glassformer.load(tmp_path / "gpt2")
    ids = tok.encode(text[:200])
    assert loaded.encode(text[:200]) == ids and loaded.eot_id == eot
    with torch.no_grad():
        torch.testing.assert_close(
            model(torch.tensor([ids[:64]]))[0], hf(torch.tensor([ids[:64]])).logits, atol=1e-4,
            rtol=0,
        )  # fmt: skip

    out = tmp_path / "ft"
    before, after = finetune(capsys, tmp_path / "gpt2", shakespeare, out, "--lora-rank", "4",
                             "--train.lr", "1e-2")  # fmt: skip
    assert after < before
    assert checkpoint.read_meta(out)["finetune"]["lora_rank"] == 4
    assert not (out / "trainer_state.pt").exists()  # merged adapters do not resume
    tuned, _ = glassformer.load(out)
    assert not any(isinstance(m, LoRALinear) for m in tuned.modules())
    rc = main(["generate", "--model", str(out), "--prompt", "ROMEO:", "--max-new-tokens", "5"])
    assert rc == 0 and capsys.readouterr().out.startswith("ROMEO:")
    rc = main(["train", "--out", str(out), "--resume", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and "LoRA" in err and "--init-from" in err


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--init-from", "README.md"], "not a glassformer checkpoint|no such checkpoint"),
        (["--init-from", "no/such/model"], "no such checkpoint folder"),
        (["--init-from", "BASE", "--lora-rank", "0"], "--lora-rank must be a positive"),
        (["--init-from", "BASE", "--lora-rank", "-3"], "--lora-rank must be a positive"),
        (["--init-from", "BASE", "--lora-rank", "33"], "between 1 and 32"),
        (["--init-from", "BASE", "--model.n_layer", "3"], "does not apply with --init-from"),
        (["--lora-rank", "4"], "need --init-from"),
    ],
)
def test_bad_finetune_input_is_one_sentence(tmp_path, shakespeare, capsys, extra, message):
    tiny_checkpoint(tmp_path / "base", shakespeare.read_text())
    extra = [str(tmp_path / "base") if a == "BASE" else a for a in extra]
    rc = main(["train", "--data", str(shakespeare), "--out", str(tmp_path / "o"), *FAST, *extra])
    err = capsys.readouterr().err
    assert rc == 2
    assert re.search(message, err) and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "o").exists()


def test_init_from_refuses_a_model_that_is_not_a_language_model(tmp_path):
    from glassformer.train.finetune import FinetuneConfig, load_pretrained

    with pytest.raises(UserError, match="no such checkpoint folder"):
        load_pretrained(FinetuneConfig(str(tmp_path / "missing")))


# ---- the real model ------------------------------------------------------------------------


@pytest.mark.slow
def test_lora_finetune_of_smollm2_lowers_val_loss_and_generates_and_chats(
    tmp_path, shakespeare, capsys, monkeypatch, smollm2_gguf
):
    data = tmp_path / "plays.txt"
    data.write_text(shakespeare.read_text()[:12_000], encoding="utf-8")
    out = tmp_path / "ft"
    before, after = finetune(capsys, "smollm2", data, out, "--lora-rank", "8", "--max-steps",
                             "4", "--context", "32", "--train.batch_size", "2",
                             "--train.eval_interval", "4", "--train.lr", "2e-3")  # fmt: skip
    assert after < before
    rc = main(["generate", "--model", str(out), "--prompt", "ROMEO:", "--max-new-tokens", "4"])
    assert rc == 0 and capsys.readouterr().out.startswith("ROMEO:")
    monkeypatch.setattr("sys.stdin", io.StringIO("Say hello.\n"))
    rc = main(["chat", "--model", str(out), "--strategy", "greedy", "--max-new-tokens", "4"])
    assert rc == 0 and capsys.readouterr().out.strip()
