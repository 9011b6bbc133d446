"""The encoder's own behaviour: bidirectional, padding-invariant, heads and pooling."""

import pytest
import torch

from glassformer.models.encoder import Encoder, EncoderConfig, mean_pool


def _encoder(**kw) -> Encoder:
    cfg = dict(vocab_size=40, block_size=16, n_layer=2, n_head=2, n_embd=16, dropout=0.0)
    torch.manual_seed(0)
    return Encoder(EncoderConfig(**{**cfg, **kw})).eval()


def test_every_position_sees_the_future():
    enc = _encoder()
    ids = torch.tensor([[5, 6, 7, 8, 9]])
    changed = ids.clone()
    changed[0, -1] = 10
    with torch.no_grad():
        a, b = enc.encode(ids), enc.encode(changed)
    assert (a[0, 0] - b[0, 0]).abs().max() > 1e-4  # the first token's state depends on the last


@pytest.mark.parametrize("norm_position", ["post", "pre"])
def test_padding_does_not_change_real_tokens(norm_position):
    enc = _encoder(norm_position=norm_position)
    ids = torch.tensor([[5, 6, 7]])
    padded = torch.tensor([[5, 6, 7, 0, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 0, 0, 0]])
    with torch.no_grad():
        alone = enc.encode(ids)
        batch = enc.encode(padded, mask)
        assert (alone[0] - batch[0, :3]).abs().max().item() <= 1e-5
        e1 = enc.sentence_embedding(ids)
        e2 = enc.sentence_embedding(padded, mask)
    assert (e1 - e2).abs().max().item() <= 1e-5
    assert torch.allclose(e2.norm(dim=-1), torch.ones(1))


def test_mean_pool_ignores_padding():
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    assert mean_pool(hidden, torch.tensor([[1, 1, 0]])).tolist() == [[2.0, 3.0]]


def test_heads_and_their_errors():
    enc = _encoder(n_classes=3, pooler=True)
    ids = torch.randint(5, 40, (4, 7))
    logits, loss = enc.classify(ids, labels=torch.tensor([0, 1, 2, 0]))
    assert logits.shape == (4, 3) and loss.item() > 0
    mlm_logits, mlm_loss = enc(ids, torch.full((4, 7), -1).index_fill(1, torch.tensor([2]), 7))
    assert mlm_logits.shape == (4, 7, 40) and mlm_loss.item() > 0
    assert enc.mlm.decoder.weight is enc.tok_emb.weight  # the MLM head is tied
    with pytest.raises(ValueError, match="no masked-LM head"):
        _encoder(mlm_head=False)(ids)
    with pytest.raises(ValueError, match="no classification head"):
        _encoder().classify(ids)
    with pytest.raises(ValueError, match="longer than"):
        enc.encode(torch.zeros(1, 17, dtype=torch.long))


def test_token_types_change_the_output():
    enc = _encoder()
    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():
        a = enc.encode(ids)
        b = enc.encode(ids, token_type_ids=torch.tensor([[0, 0, 1, 1]]))
    assert (a - b).abs().max() > 1e-4
