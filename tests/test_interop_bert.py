"""BERT interop: our Encoder equals Hugging Face's BERT (random weights), both directions."""

import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
transformers = pytest.importorskip("transformers")

from glassformer.errors import UserError  # noqa: E402
from glassformer.interop import from_hf, to_hf  # noqa: E402
from glassformer.models.encoder import Encoder, EncoderConfig  # noqa: E402

TOL = 1e-4


def _randomize(module: torch.nn.Module, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.2 + (1.0 if p.dim() == 1 else 0.0))


def _hf_config(**kw):
    base = dict(
        vocab_size=60,
        hidden_size=24,
        num_hidden_layers=2,
        num_attention_heads=3,
        intermediate_size=40,
        max_position_embeddings=16,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    return transformers.BertConfig(**{**base, **kw})


def _batch():
    gen = torch.Generator().manual_seed(5)
    ids = torch.randint(1, 60, (3, 11), generator=gen)
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    mask[2, 2:] = 0
    return ids.masked_fill(mask == 0, 0), mask


@pytest.mark.parametrize("act", ["gelu", "gelu_new"])
def test_masked_lm_logits_equal_with_padding(act, tmp_path):
    torch.manual_seed(0)
    hf = transformers.BertForMaskedLM(_hf_config(hidden_act=act)).eval()
    _randomize(hf, 1)
    hf.save_pretrained(tmp_path)
    ours = from_hf(tmp_path)
    assert isinstance(ours, Encoder) and ours.config.mlm_head and not ours.config.pooler
    ids, mask = _batch()
    with torch.no_grad():
        expected = hf(input_ids=ids, attention_mask=mask).logits
        got, _ = ours(ids, attention_mask=mask)
    real = mask.bool()  # padded positions' outputs are garbage in both; compare real ones
    assert (got - expected)[real].abs().max().item() <= TOL


def test_classifier_logits_equal(tmp_path):
    torch.manual_seed(0)
    hf = transformers.BertForSequenceClassification(_hf_config(num_labels=4)).eval()
    _randomize(hf, 2)
    hf.save_pretrained(tmp_path)
    ours = from_hf(tmp_path)
    assert ours.config.n_classes == 4 and ours.config.pooler
    ids, mask = _batch()
    with torch.no_grad():
        expected = hf(input_ids=ids, attention_mask=mask).logits
        got, _ = ours.classify(ids, mask)
    assert (got - expected).abs().max().item() <= TOL


@pytest.mark.parametrize("heads", [dict(mlm_head=True), dict(n_classes=3, pooler=True)])
def test_to_hf_round_trip(heads, tmp_path):
    cfg = EncoderConfig(
        vocab_size=50, block_size=12, n_layer=2, n_head=2, n_embd=16, dropout=0.0, **heads
    )
    torch.manual_seed(0)
    ours = Encoder(cfg).eval()
    _randomize(ours, 4)
    to_hf(ours, tmp_path)
    ids = torch.randint(1, 50, (2, 12), generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(ids)
    mask[0, 7:] = 0
    with torch.no_grad():
        if cfg.n_classes:
            hf = transformers.BertForSequenceClassification.from_pretrained(tmp_path).eval()
            expected, got = (
                hf(input_ids=ids, attention_mask=mask).logits,
                ours.classify(ids, mask)[0],
            )
        else:
            hf = transformers.BertForMaskedLM.from_pretrained(tmp_path).eval()
            expected, got = hf(input_ids=ids, attention_mask=mask).logits, ours(ids, None, mask)[0]
            expected, got = expected[mask.bool()], got[mask.bool()]
    assert (got - expected).abs().max().item() <= TOL
    again = from_hf(tmp_path)
    for name, tensor in ours.state_dict().items():
        assert torch.equal(tensor, again.state_dict()[name]), name


def test_missing_tensor_is_named(tmp_path):
    from safetensors.torch import load_file, save_file

    transformers.BertModel(_hf_config()).save_pretrained(tmp_path)
    weights = load_file(str(tmp_path / "model.safetensors"))
    del weights["encoder.layer.1.attention.self.key.bias"]
    save_file(weights, str(tmp_path / "model.safetensors"))
    with pytest.raises(UserError, match=r"missing tensor 'encoder\.layer\.1\.attention\.self\.key"):
        from_hf(tmp_path)
