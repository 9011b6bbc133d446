"""Encoder-decoder: equal to Hugging Face Marian (post-norm) and torch.nn.Transformer (pre-norm)."""

import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from glassformer.errors import UserError  # noqa: E402
from glassformer.generate.seq2seq import translate_tokens  # noqa: E402
from glassformer.interop import from_hf, to_hf  # noqa: E402
from glassformer.models.seq2seq import Seq2Seq, Seq2SeqConfig  # noqa: E402

TOL = 1e-4


def _randomize(module: torch.nn.Module, seed: int) -> None:
    """Random values in every weight; Marian's fixed sinusoidal position tables stay."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if "embed_positions" in name:
                continue
            p.copy_(torch.randn(p.shape, generator=gen) * 0.2 + (1.0 if p.dim() == 1 else 0.0))


def _batch(vocab: int):
    gen = torch.Generator().manual_seed(3)
    src = torch.randint(3, vocab, (3, 9), generator=gen)
    src_mask = torch.ones_like(src)
    src_mask[1, 5:] = 0
    src_mask[2, 1:] = 0
    tgt = torch.randint(3, vocab, (3, 7), generator=gen)
    return src.masked_fill(src_mask == 0, 0), src_mask, tgt


@pytest.mark.parametrize(
    "kw",
    [
        dict(activation_function="swish", scale_embedding=True),
        dict(activation_function="gelu", scale_embedding=False, encoder_layers=1),
        dict(activation_function="relu", scale_embedding=True, d_model=30, decoder_layers=3),
    ],
)
def test_marian_logits_equal(kw, tmp_path):
    transformers = pytest.importorskip("transformers")
    base = dict(
        vocab_size=41,
        d_model=24,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=3,
        decoder_attention_heads=3,
        encoder_ffn_dim=40,
        decoder_ffn_dim=40,
        max_position_embeddings=32,
        pad_token_id=0,
        eos_token_id=2,
        decoder_start_token_id=0,
        dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
    )
    torch.manual_seed(0)
    hf = transformers.MarianMTModel(transformers.MarianConfig(**{**base, **kw})).eval()
    _randomize(hf, 1)
    with torch.no_grad():
        hf.final_logits_bias.normal_()
    hf.save_pretrained(tmp_path)
    ours = from_hf(tmp_path)
    assert isinstance(ours, Seq2Seq) and not ours.training
    src, src_mask, tgt = _batch(41)
    with torch.no_grad():
        expected = hf(input_ids=src, attention_mask=src_mask, decoder_input_ids=tgt).logits
        got, _ = ours(src, tgt, src_mask=src_mask)
    assert (got - expected).abs().max().item() <= TOL

    to_hf(ours, tmp_path / "back")  # and out again: Hugging Face reads our export
    hf2 = transformers.MarianMTModel.from_pretrained(tmp_path / "back").eval()
    with torch.no_grad():
        again = hf2(input_ids=src, attention_mask=src_mask, decoder_input_ids=tgt).logits
    assert (again - got).abs().max().item() <= TOL


@pytest.mark.filterwarnings("ignore:enable_nested_tensor")
def test_pre_norm_equals_torch_transformer():
    C, nh, ff, L = 24, 4, 48, 2
    cfg = Seq2SeqConfig(
        vocab_size=30,
        block_size=16,
        n_layer=L,
        n_dec_layer=L,
        n_head=nh,
        n_embd=C,
        mlp_ratio=ff / C,
        dropout=0.0,
        norm_position="pre",
        activation="relu",
    )
    torch.manual_seed(0)
    ours = Seq2Seq(cfg).eval()
    _randomize(ours, 2)
    ref = torch.nn.Transformer(C, nh, L, L, ff, dropout=0.0, batch_first=True, norm_first=True)
    sd = ours.state_dict()
    with torch.no_grad():
        for i, layer in enumerate(ref.encoder.layers):
            b = f"enc_blocks.{i}."
            layer.self_attn.in_proj_weight.copy_(sd[b + "attn.qkv.weight"])
            layer.self_attn.in_proj_bias.copy_(sd[b + "attn.qkv.bias"])
            layer.self_attn.out_proj.load_state_dict(
                {"weight": sd[b + "attn.proj.weight"], "bias": sd[b + "attn.proj.bias"]}
            )
            for theirs, mine in (("linear1", "mlp.fc"), ("linear2", "mlp.proj")):
                getattr(layer, theirs).load_state_dict(
                    {"weight": sd[b + mine + ".weight"], "bias": sd[b + mine + ".bias"]}
                )
            for theirs, mine in (("norm1", "ln_1"), ("norm2", "ln_2")):
                getattr(layer, theirs).load_state_dict(
                    {"weight": sd[b + mine + ".weight"], "bias": sd[b + mine + ".bias"]}
                )
        for i, layer in enumerate(ref.decoder.layers):
            b = f"dec_blocks.{i}."
            layer.self_attn.in_proj_weight.copy_(sd[b + "attn.qkv.weight"])
            layer.self_attn.in_proj_bias.copy_(sd[b + "attn.qkv.bias"])
            layer.self_attn.out_proj.weight.copy_(sd[b + "attn.proj.weight"])
            layer.self_attn.out_proj.bias.copy_(sd[b + "attn.proj.bias"])
            mha = layer.multihead_attn
            mha.in_proj_weight.copy_(
                torch.cat([sd[b + "cross.q.weight"], sd[b + "cross.kv.weight"]])
            )
            mha.in_proj_bias.copy_(torch.cat([sd[b + "cross.q.bias"], sd[b + "cross.kv.bias"]]))
            mha.out_proj.weight.copy_(sd[b + "cross.proj.weight"])
            mha.out_proj.bias.copy_(sd[b + "cross.proj.bias"])
            for theirs, mine in (("linear1", "mlp.fc"), ("linear2", "mlp.proj")):
                getattr(layer, theirs).weight.copy_(sd[b + mine + ".weight"])
                getattr(layer, theirs).bias.copy_(sd[b + mine + ".bias"])
            for theirs, mine in (("norm1", "ln_self"), ("norm2", "ln_cross"), ("norm3", "ln_mlp")):
                getattr(layer, theirs).weight.copy_(sd[b + mine + ".weight"])
                getattr(layer, theirs).bias.copy_(sd[b + mine + ".bias"])
        for theirs, mine in ((ref.encoder.norm, "enc_ln_f"), (ref.decoder.norm, "dec_ln_f")):
            theirs.weight.copy_(sd[mine + ".weight"])
            theirs.bias.copy_(sd[mine + ".bias"])
    ref.eval()
    src, src_mask, tgt = _batch(30)
    with torch.no_grad():
        x_src, _ = ours._embed(src)
        x_tgt, _ = ours._embed(tgt)
        T = tgt.size(1)
        hidden = ref(
            x_src,
            x_tgt,
            tgt_mask=torch.ones(T, T, dtype=torch.bool).triu(1),
            src_key_padding_mask=src_mask == 0,
            memory_key_padding_mask=src_mask == 0,
        )
        expected = ours.lm_head(hidden)
        got, _ = ours(src, tgt, src_mask=src_mask)
    assert (got - expected).abs().max().item() <= TOL


def test_greedy_stops_at_eos():
    cfg = Seq2SeqConfig(
        vocab_size=12, block_size=10, n_layer=1, n_dec_layer=1, n_head=2, n_embd=8, head_bias=True
    )
    model = Seq2Seq(cfg).eval()
    with torch.no_grad():
        model.lm_head.bias[cfg.eos_id] = 100.0  # EOS always wins
    src, mask = torch.tensor([[5, 6, 7], [8, 9, 0]]), torch.tensor([[1, 1, 1], [1, 1, 0]])
    out = translate_tokens(model, src, mask)
    assert out.tolist() == [[cfg.eos_id], [cfg.eos_id]]


@torch.no_grad()
def _greedy_by_hand(model, src, mask, max_len):
    """The plain greedy loop: the whole decoder over the target so far, every step."""
    memory = model.encode(src, mask)
    out = torch.full((src.size(0), 1), model.config.bos_id)
    done = torch.zeros(src.size(0), dtype=torch.bool)
    for _ in range(max_len):
        nxt = model.decode(out, memory, mask)[:, -1].argmax(-1)  # (B,)
        nxt = nxt.masked_fill(done, model.config.pad_id)
        out = torch.cat((out, nxt[:, None]), dim=1)
        done |= nxt == model.config.eos_id
        if done.all():
            break
    return out[:, 1:]


@pytest.mark.parametrize("cross_attention", ["full", "mean"])
def test_translation_by_the_engine_equals_the_plain_greedy_loop(cross_attention):
    """The engine decodes with a KV cache, a batch whose rows leave at [EOS], the memory
    following each row: the same ids as recomputing the whole decoder each step."""
    torch.manual_seed(0)
    cfg = Seq2SeqConfig(
        vocab_size=14, block_size=16, n_layer=2, n_dec_layer=2, n_head=2, n_embd=16,
        cross_attention=cross_attention,
    )  # fmt: skip
    model = Seq2Seq(cfg).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(std=0.4)
    gen = torch.Generator().manual_seed(1)
    src = torch.randint(3, 14, (6, 7), generator=gen)
    mask = torch.ones_like(src)
    mask[1, 5:], mask[4, 3:] = 0, 0  # two shorter sources
    free = _greedy_by_hand(model, src, mask, 12)
    model.config.eos_id = int(free[0, 3])  # a token some rows write (and then stop at)
    want = _greedy_by_hand(model, src, mask, 12)
    stopped = (want == model.config.eos_id).any(dim=1)
    assert stopped.any() and not stopped.all(), "rows should stop at different steps"
    assert torch.equal(translate_tokens(model, src, mask, max_len=12), want)


def test_marian_export_refuses_interleaved_positions(tmp_path):
    cfg = Seq2SeqConfig(vocab_size=12, block_size=10, n_layer=1, n_dec_layer=1, n_head=2, n_embd=8)
    with pytest.raises(UserError, match="sinusoid_layout='halves'"):
        to_hf(Seq2Seq(cfg), tmp_path)
