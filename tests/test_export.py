"""`glassformer export --format hf`: transformers loads the folder and computes what we do."""

import json

import pytest
import torch

import glassformer
from glassformer import checkpoint
from glassformer.cli import main
from glassformer.errors import UserError
from glassformer.models.config import GPTConfig
from glassformer.models.gpt import GPT
from glassformer.tokenizers import BPETokenizer, CharTokenizer
from glassformer.tokenizers.formats import save_hf_tokenizer_json

TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll: Speak, speak!"


def export(src, out, *extra) -> int:
    return main(["export", str(src), "--format", "hf", "--out", str(out), *extra])


def assert_transformers_agrees(src, out, text: str) -> None:
    """Same ids, same logits (<= 1e-4), and a pipeline that generates from the folder."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, pipeline

    model, tok = glassformer.load(src)
    hf = AutoModelForCausalLM.from_pretrained(out).eval()
    hf_tok = AutoTokenizer.from_pretrained(out)
    ids = tok.encode(text)
    assert hf_tok(text)["input_ids"] == ids
    assert hf_tok.decode(ids) == text
    with torch.no_grad():
        ours, theirs = model(torch.tensor([ids]))[0], hf(torch.tensor([ids])).logits
    torch.testing.assert_close(theirs, ours, atol=1e-4, rtol=0)
    generate = pipeline("text-generation", model=str(out))
    reply = generate(text[:10], max_new_tokens=5, do_sample=False)[0]["generated_text"]
    assert reply.startswith(text[:10]) and len(reply) > 10


def assert_glassformer_reloads(src, out, text: str) -> None:
    model, tok = glassformer.load(src)
    again, tok2 = glassformer.load(out)
    ids = tok.encode(text)
    assert tok2.encode(text) == ids and tok2.eot_id == tok.eot_id
    with torch.no_grad():
        torch.testing.assert_close(
            again(torch.tensor([ids]))[0], model(torch.tensor([ids]))[0], atol=1e-5, rtol=0
        )


def save_gpt(path, tokenizer, bias: bool) -> None:
    torch.manual_seed(0)
    act = "gelu_tanh" if bias else "gelu"
    config = GPTConfig(vocab_size=tokenizer.vocab_size, block_size=128, n_layer=2, n_head=2,
                       n_embd=32, bias=bias, activation=act)  # fmt: skip
    model = GPT(config)
    if bias:  # non-zero biases, so a mapping that dropped them would show
        for name, p in model.named_parameters():
            if name.endswith(".bias"):
                torch.nn.init.normal_(p, std=0.1)
    checkpoint.save(path, model, tokenizer, {"data": {"path": "test text"}})


def test_bias_free_char_model(tmp_path, shakespeare):
    """A preset-shaped GPT (no biases) with a char tokenizer: zero biases, no end-of-text."""
    save_gpt(tmp_path / "char", CharTokenizer.train(shakespeare.read_text()), bias=False)
    assert export(tmp_path / "char", tmp_path / "hf") == 0
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert config["architectures"] == ["GPT2LMHeadModel"] and config["eos_token_id"] is None
    generation = json.loads((tmp_path / "hf" / "generation_config.json").read_text())
    assert generation["eos_token_id"] is None
    card = (tmp_path / "hf" / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: transformers\npipeline_tag: text-generation\n")
    assert_transformers_agrees(tmp_path / "char", tmp_path / "hf", TEXT)
    assert_glassformer_reloads(tmp_path / "char", tmp_path / "hf", TEXT)
    _, tok = glassformer.load(tmp_path / "hf")
    assert isinstance(tok, CharTokenizer)


def test_gpt_with_biases_and_bpe(tmp_path, shakespeare):
    tok = BPETokenizer.train(shakespeare.read_text()[:20_000], 300)
    save_gpt(tmp_path / "bpe", tok, bias=True)
    assert export(tmp_path / "bpe", tmp_path / "hf") == 0
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert config["eos_token_id"] == tok.eot_id and config["activation_function"] == "gelu_new"
    tok_config = json.loads((tmp_path / "hf" / "tokenizer_config.json").read_text())
    assert tok_config["eos_token"] == "<|endoftext|>"
    assert_transformers_agrees(tmp_path / "bpe", tmp_path / "hf", TEXT + " 123 ünïcödé")
    assert_glassformer_reloads(tmp_path / "bpe", tmp_path / "hf", TEXT)


def test_finetuned_llama_exports_as_llama(tmp_path, shakespeare, capsys):
    """A small random Llama saved by transformers, LoRA-fine-tuned here, exported back."""
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    text = shakespeare.read_text()
    tok = BPETokenizer.train(text[:20_000], 300)
    save_hf_tokenizer_json(tok, tmp_path / "tokenizer.json")
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=tok.vocab_size, hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=128, tie_word_embeddings=False,
                         bos_token_id=tok.eot_id, eos_token_id=tok.eot_id)  # fmt: skip
    LlamaForCausalLM(config).save_pretrained(tmp_path / "llama")
    fast = PreTrainedTokenizerFast(
        tokenizer_file=str(tmp_path / "tokenizer.json"), eos_token="<|endoftext|>"
    )
    fast.save_pretrained(tmp_path / "llama")
    rc = main(["train", "--init-from", str(tmp_path / "llama"), "--data", str(shakespeare),
               "--out", str(tmp_path / "ft"), "--lora-rank", "4", "--max-steps", "3",
               "--context", "16", "--train.batch_size", "2", "--train.eval_iters", "1",
               "--train.sample_tokens", "0", "--train.lr", "1e-2", "--quiet"])  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    assert export(tmp_path / "ft", tmp_path / "hf") == 0
    exported = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert exported["architectures"] == ["LlamaForCausalLM"]
    assert exported["num_key_value_heads"] == 2 and exported["eos_token_id"] == tok.eot_id
    assert "- lora" in (tmp_path / "hf" / "README.md").read_text()
    assert_transformers_agrees(tmp_path / "ft", tmp_path / "hf", TEXT)
    assert_glassformer_reloads(tmp_path / "ft", tmp_path / "hf", TEXT)


def test_export_never_overwrites_without_force(tmp_path, shakespeare, capsys):
    save_gpt(tmp_path / "m", CharTokenizer.train(TEXT), bias=False)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep.txt").write_text("mine")
    assert export(tmp_path / "m", tmp_path / "busy") == 2
    err = capsys.readouterr().err
    assert "--force" in err and len(err.strip().splitlines()) == 1
    assert (tmp_path / "busy" / "keep.txt").read_text() == "mine"
    assert export(tmp_path / "m", tmp_path / "m", "--force") == 2  # never the model itself
    assert "is the model being exported" in capsys.readouterr().err
    assert export(tmp_path / "m", tmp_path / "busy", "--force") == 0
    assert sorted(p.name for p in (tmp_path / "busy").iterdir()) == [
        "README.md", "config.json", "generation_config.json", "model.safetensors",
        "tokenizer.json", "tokenizer_config.json",
    ]  # fmt: skip
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left


def test_a_model_of_neither_shape_is_refused(tmp_path):
    from glassformer.interop.export import hf_model

    model = GPT(GPTConfig(vocab_size=10, n_layer=1, n_embd=16, n_head=2, pos_emb="rotary"))
    with pytest.raises(UserError, match="neither GPT-2-shaped .* model.norm='layernorm'"):
        hf_model(model)


@pytest.mark.slow
def test_smollm2_exports_with_equal_logits(tmp_path, smollm2_gguf):
    assert export("smollm2", tmp_path / "hf") == 0
    assert_transformers_agrees("smollm2", tmp_path / "hf", TEXT + " naïve café 42")
