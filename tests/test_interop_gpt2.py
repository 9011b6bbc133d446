"""GPT-2 interop: our GPT equals Hugging Face's GPT2LMHeadModel, in both directions."""

import json
import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
transformers = pytest.importorskip("transformers")

from glassformer.errors import UserError  # noqa: E402
from glassformer.interop import from_hf, to_hf  # noqa: E402
from glassformer.models.config import GPTConfig  # noqa: E402
from glassformer.models.gpt import GPT  # noqa: E402

TOL = 1e-4
# (n_layer, n_head, n_embd, vocab_size, n_positions, n_inner)
SHAPES = [(1, 1, 16, 50, 8, None), (2, 4, 32, 97, 32, None), (3, 2, 48, 300, 64, 80)]


def _randomize(module: torch.nn.Module, seed: int) -> None:
    """Random values everywhere (LayerNorm gains and biases too), so a swapped tensor shows."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.2 + (1.0 if p.dim() == 1 else 0.0))


def _hf_model(shape, seed=0):
    n_layer, n_head, n_embd, vocab, n_pos, n_inner = shape
    cfg = transformers.GPT2Config(
        n_layer=n_layer,
        n_head=n_head,
        n_embd=n_embd,
        vocab_size=vocab,
        n_positions=n_pos,
        n_inner=n_inner,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
    )
    torch.manual_seed(seed)
    model = transformers.GPT2LMHeadModel(cfg)
    _randomize(model, seed)
    return model.eval()


def _ids(vocab, n_pos, seed=1):
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(vocab, (2, n_pos), generator=gen)


@pytest.mark.parametrize("shape", SHAPES)
def test_from_hf_logits_equal(shape, tmp_path):
    hf = _hf_model(shape)
    hf.save_pretrained(tmp_path)
    ours = from_hf(tmp_path)
    assert isinstance(ours, GPT) and not ours.training
    ids = _ids(shape[3], shape[4])
    with torch.no_grad():
        expected = hf(ids).logits
        got, _ = ours(ids)
        got_short, _ = ours(ids[:, :3])
        expected_short = hf(ids[:, :3]).logits
    assert (got - expected).abs().max().item() <= TOL
    assert (got_short - expected_short).abs().max().item() <= TOL


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("activation", ["gelu_tanh", "gelu"])
def test_to_hf_logits_equal(shape, activation, tmp_path):
    n_layer, n_head, n_embd, vocab, n_pos, n_inner = shape
    cfg = GPTConfig(
        vocab_size=vocab,
        block_size=n_pos,
        n_layer=n_layer,
        n_head=n_head,
        n_embd=n_embd,
        mlp_ratio=(n_inner or 4 * n_embd) / n_embd,
        activation=activation,
    )
    torch.manual_seed(0)
    ours = GPT(cfg).eval()
    _randomize(ours, 3)
    to_hf(ours, tmp_path)
    hf = transformers.GPT2LMHeadModel.from_pretrained(tmp_path).eval()
    ids = _ids(vocab, n_pos, seed=2)
    with torch.no_grad():
        assert (ours(ids)[0] - hf(ids).logits).abs().max().item() <= TOL
    # and back again: the round trip is exact
    again = from_hf(tmp_path)
    for name, tensor in ours.state_dict().items():
        assert torch.equal(tensor, again.state_dict()[name]), name


def test_hub_layout_without_prefix_and_with_mask_buffers(tmp_path):
    """The hub's gpt2 stores GPT2Model tensors (`h.0...`, no `transformer.`) and mask buffers."""
    from safetensors.torch import load_file, save_file

    hf = _hf_model(SHAPES[1])
    hf.save_pretrained(tmp_path)
    weights = load_file(str(tmp_path / "model.safetensors"))
    bare = {k.removeprefix("transformer."): v for k, v in weights.items()}
    bare["h.0.attn.bias"] = torch.ones(1, 1, 32, 32).tril()
    save_file(bare, str(tmp_path / "model.safetensors"))
    ids = _ids(97, 32)
    with torch.no_grad():
        assert (from_hf(tmp_path)(ids)[0] - hf(ids).logits).abs().max().item() <= TOL


def test_missing_extra_and_misshapen_tensors_are_named(tmp_path):
    from safetensors.torch import load_file, save_file

    _hf_model(SHAPES[1]).save_pretrained(tmp_path)
    path = tmp_path / "model.safetensors"
    good = load_file(str(path))

    broken = dict(good)
    del broken["transformer.h.1.mlp.c_fc.weight"]
    save_file(broken, str(path))
    with pytest.raises(UserError, match=r"missing tensor 'h\.1\.mlp\.c_fc\.weight'"):
        from_hf(tmp_path)

    save_file({**good, "transformer.h.9.attn.c_attn.weight": torch.zeros(1)}, str(path))
    with pytest.raises(UserError, match=r"unexpected tensor 'h\.9\.attn\.c_attn\.weight'"):
        from_hf(tmp_path)

    save_file({**good, "transformer.wpe.weight": torch.zeros(5, 32)}, str(path))
    with pytest.raises(UserError, match=r"'pos_emb\.weight' has shape \(5, 32\)"):
        from_hf(tmp_path)


def test_unknown_model_type_and_not_a_folder(tmp_path):
    with pytest.raises(UserError, match="no config.json"):
        from_hf(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "mamba"}))
    with pytest.raises(UserError, match="'mamba' is not one glassformer reads"):
        from_hf(tmp_path)


def test_export_refuses_non_gpt2_shapes(tmp_path):
    model = GPT(
        GPTConfig(vocab_size=10, block_size=8, n_layer=1, n_head=2, n_embd=8, norm="rmsnorm")
    )
    with pytest.raises(UserError, match="model.norm='layernorm'"):
        to_hf(model, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_generate_cli_runs_a_hugging_face_gpt2_folder(tmp_path, capsys):
    """A GPT-2 folder as released (weights + vocab.json + merges.txt) works with `generate`:
    greedy decoding gives the same continuation as Hugging Face's own generate()."""
    from glassformer.cli import main
    from glassformer.tokenizers.formats import bytes_to_unicode

    vocab = {ch: i for i, ch in enumerate(bytes_to_unicode().values())}
    vocab["<|endoftext|>"] = 256
    (tmp_path / "vocab.json").write_text(json.dumps(vocab))
    (tmp_path / "merges.txt").write_text("#version: 0.2\n")
    hf = _hf_model((2, 2, 32, 257, 64, None))
    hf.save_pretrained(tmp_path)
    prompt = "Hello"
    ids = torch.tensor([[vocab[c] for c in prompt]])
    with torch.no_grad():
        expected = hf.generate(
            ids, max_new_tokens=8, do_sample=False, pad_token_id=256, eos_token_id=None
        )[0, 5:].tolist()
    if 256 in expected:
        expected = expected[: expected.index(256)]
    argv = ["generate", "--model", str(tmp_path), "--prompt", prompt, "--temperature", "0"]
    assert main([*argv, "--max-new-tokens", "8"]) == 0
    out = capsys.readouterr().out
    inverse = {i: b for b, i in ((bytes([b]), vocab[c]) for b, c in bytes_to_unicode().items())}
    want = (prompt.encode() + b"".join(inverse[i] for i in expected)).decode("utf-8", "replace")
    assert out.rstrip("\n") == want
