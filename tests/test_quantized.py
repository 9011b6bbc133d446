"""Weight-only int8 / int4 layers (nn/quantized.py): the kernels against a float matmul over
the dequantized weights, the rounding error bound, a quantized model decoding through Session
and the generate CLI, and SmolLM2 still knowing Paris in 8 and 4 bits."""

import pytest
import torch
from torch import nn

from glassformer import GPT, GPTConfig
from glassformer.checkpoint import load, save
from glassformer.cli import main
from glassformer.errors import UserError
from glassformer.generate import Session
from glassformer.nn.quantized import (
    Int4Linear,
    Int8Embedding,
    Int8Linear,
    int4_weights,
    int8_weights,
    quantize,
    quantized_copy,
)
from glassformer.tokenizers import CharTokenizer
from glassformer.train.config import RunConfig


def _linear(n_out: int, n_in: int, bias: bool = True) -> nn.Linear:
    torch.manual_seed(0)
    layer = nn.Linear(n_in, n_out, bias=bias)
    with torch.no_grad():
        layer.weight.mul_(torch.rand(n_out, 1) * 4)  # rows of different ranges
    return layer


def _quantized(layer: nn.Linear, dtype: str, **kw) -> nn.Module:
    return quantize(nn.Sequential(layer), dtype, **kw)[0]


def test_int8_weights_rounding_error_is_half_a_step_per_row():
    w = _linear(48, 80).weight.detach()
    q, scales = int8_weights(w)
    assert q.dtype == torch.int8 and int(q.abs().max()) == 127
    err = (q.float() * scales[:, None] - w).abs()  # (N, K)
    assert bool((err <= scales[:, None] / 2 + 1e-7).all())


@pytest.mark.parametrize("group_size", [32, 64])
def test_int4_weights_rounding_error_is_half_a_step_per_group(group_size):
    w = _linear(32, 128).weight.detach()
    q, sz = int4_weights(w, group_size)
    assert int(q.min()) == 0 and int(q.max()) == 15
    G = 128 // group_size
    s, z = sz[..., 0].t(), sz[..., 1].t()  # (N, G) each
    deq = (q.float().view(32, G, group_size) - 8) * s[..., None] + z[..., None]  # (N, G, gs)
    err = (deq - w.view(32, G, group_size)).abs()
    assert bool((err <= s[..., None] / 2 + 1e-6).all())
    # the packed kernel multiplies by exactly these numbers
    layer = Int4Linear.from_weight(w, None, torch.float32, group_size)
    torch.testing.assert_close(layer.dequantize(), deq.view(32, 128), rtol=0, atol=1e-6)


@pytest.mark.parametrize("dtype", ["int8", "int4"])
def test_quantized_linear_equals_matmul_with_dequantized_weight(dtype):
    layer = _linear(64, 96)
    x = torch.randn(2, 5, 96)
    # fp32 activations: the kernel against the float matmul, to fp32 rounding
    q32 = _quantized(layer, dtype, activations=torch.float32)
    ref = x @ q32.dequantize().t() + layer.bias
    torch.testing.assert_close(q32(x), ref, rtol=1e-5, atol=1e-4)
    # bf16 activations (the default): the input and output are rounded to bf16
    q16 = _quantized(layer, dtype)
    y = q16(x)
    assert y.dtype == torch.float32 and y.shape == (2, 5, 64)
    ref16 = x.bfloat16().float() @ q16.dequantize().t() + layer.bias.bfloat16().float()
    torch.testing.assert_close(y, ref16, rtol=2e-2, atol=2e-2)
    # and the quantized layer stays near the float one (4 bits: 16 levels a group)
    exact = layer(x).detach()
    assert float((y - exact).abs().max()) < {"int8": 0.02, "int4": 0.1}[dtype] * float(
        exact.abs().max()
    )


def test_int4_falls_back_to_int8_where_the_kernel_cannot_take_the_shape():
    assert isinstance(_quantized(_linear(64, 96), "int4"), Int4Linear)
    assert isinstance(_quantized(_linear(10, 96), "int4"), Int8Linear)  # N not a multiple of 16
    assert isinstance(_quantized(_linear(64, 80), "int4"), Int8Linear)  # K not of the group
    assert isinstance(_quantized(_linear(64, 128), "int4", group_size=128), Int4Linear)


def test_bad_dtype_or_group_size_is_a_user_error():
    with pytest.raises(UserError, match="int4"):
        quantize(nn.Sequential(_linear(16, 32)), "int3")
    with pytest.raises(UserError, match="group size 48"):
        quantize(nn.Sequential(_linear(16, 32)), "int4", group_size=48)


def _llama(tie: bool) -> GPT:
    """A small Llama-shaped GPT (rotary, RMSNorm, SwiGLU, grouped-query attention) that
    spells the alphabet: unit-size embeddings outweigh the blocks' small random outputs, and
    the head scores token j by its match with token j - 1 (tied: with token j itself), so
    each greedy choice wins by a margin that 4-bit rounding does not overturn."""
    torch.manual_seed(0)
    config = GPTConfig(
        vocab_size=64,
        block_size=64,
        n_layer=2,
        n_head=4,
        n_kv_head=2,
        n_embd=64,
        mlp_hidden=96,
        bias=False,
        pos_emb="rotary",
        norm="rmsnorm",
        activation="swiglu",
        tie_weights=tie,
    )
    model = GPT(config).eval()
    with torch.no_grad():
        model.tok_emb.weight.normal_()
        if not tie:
            model.lm_head.weight.copy_(model.tok_emb.weight.roll(1, dims=0))
    return model


@pytest.mark.parametrize("tie", [True, False])
def test_quantize_replaces_every_linear_and_the_embedding(tie):
    model = _llama(tie).requires_grad_(False)
    ids = torch.randint(0, 64, (2, 12))
    ref, _ = model(ids)
    copy4 = quantized_copy(model, "int4")
    assert not any(isinstance(m, nn.Linear | nn.Embedding) for m in copy4.modules())
    assert isinstance(copy4.tok_emb, Int8Embedding) and isinstance(
        copy4.blocks[0].mlp.fc, Int4Linear
    )
    assert isinstance(copy4.lm_head, Int8Linear)  # the head stays 8-bit unless asked
    assert isinstance(quantized_copy(model, "int4", int8_layers=()).lm_head, Int4Linear)
    assert torch.equal(model(ids)[0], ref)  # the copy left the model as it was
    out, _ = copy4(ids)
    assert out.dtype == torch.float32
    assert float((out - ref).abs().max()) < 0.1 * float(ref.abs().max())
    copy8 = quantized_copy(model, "int8")
    if tie:  # one int8 table serves the embedding and the head
        assert copy8.lm_head.q is copy8.tok_emb.q and copy4.lm_head.q is copy4.tok_emb.q
    assert float((copy8(ids)[0] - ref).abs().max()) < 0.02 * float(ref.abs().max())
    in_place = quantize(model, "int4")
    assert in_place is model and torch.equal(model(ids)[0], out)


def _tokenizer() -> CharTokenizer:
    return CharTokenizer("".join(chr(c) for c in range(32, 96)))  # 64 characters


@pytest.mark.parametrize("dtype", ["int8", "int4"])
def test_session_decodes_greedily_with_quantized_weights(dtype):
    model, tok = _llama(tie=False), _tokenizer()
    prompt = "HELLO, WORLD"

    def reply(**opts) -> str:
        session = Session(model, tok, strategy="greedy", max_new_tokens=24, **opts)
        session.feed(prompt)
        return "".join(session.stream())

    fp32 = reply()
    assert fp32 == "EFGHIJKLMNOPQRSTUVWXYZ[\\"  # the next characters after "D"
    assert reply(decode_dtype=dtype) == fp32
    assert all(p.dtype == torch.float32 for p in model.parameters())  # Session made a copy


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    config = RunConfig()
    config.model = _llama(tie=True).config
    out = tmp_path_factory.mktemp("ckpt") / "llama"
    save(out, _llama(tie=True), _tokenizer(), meta=config.to_dict())
    return out


@pytest.mark.parametrize("dtype", ["int8", "int4"])
def test_cli_generate_with_quantized_decode(checkpoint, capsys, dtype):
    base = ["generate", "--model", str(checkpoint), "--prompt", "TO BE", "--max-new-tokens", "16"]
    assert main([*base, "--strategy", "greedy"]) == 0
    fp32 = capsys.readouterr().out
    assert main([*base, "--strategy", "greedy", "--decode-dtype", dtype]) == 0
    assert capsys.readouterr().out == fp32


def test_cli_bad_decode_dtype_exits_2_with_one_line(checkpoint, capsys):
    assert main(["generate", "--model", str(checkpoint), "--decode-dtype", "int3"]) == 2
    captured = capsys.readouterr()
    assert "--decode-dtype" in captured.err and "int4" in captured.err
    assert len(captured.err.strip().splitlines()) == 1 and captured.out == ""


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["int8", "int4"])
def test_smollm2_quantized_still_knows_paris(smollm2_gguf, dtype):
    """Quantized in place: the prompt (prefill) and the reply both run on the 8 / 4 bits."""
    model, tok = load(smollm2_gguf)
    session = Session(quantize(model, dtype), tok, strategy="greedy", max_new_tokens=3)
    session.feed("The capital of France is")
    assert "".join(session.stream()).startswith(" Paris")
