"""Patches as tokens: the patch embedding against torch's Conv2d, the 2-D position schemes,
the vision transformer's shapes and symmetries, its checkpoint folder, and `train --task
digits` with `inspect attention --image` on the folder it writes (PNG, HTML in Chromium, and
each bad input as one sentence, exit 2)."""

from dataclasses import fields

import numpy as np
import pytest
import torch

from glassformer import checkpoint
from glassformer.cli import main
from glassformer.models.config import GPTConfig
from glassformer.models.encoder import EncoderConfig
from glassformer.models.seq2seq import Seq2SeqConfig
from glassformer.models.vit import VisionTransformer, VitConfig
from glassformer.nn.patches import (
    LearnedGridPositions,
    PatchEmbedding,
    SinusoidalGridPositions,
    patchify,
)
from glassformer.nn.positions import POSITIONS, SEQUENCE_POSITIONS
from glassformer.tasks import digits

SMALL = dict(image_size=8, patch_size=2, n_layer=2, n_head=2, n_embd=16)


def test_patchify_matches_a_hand_loop_over_the_patches():
    images = torch.randn(2, 3, 6, 9)
    P = 3
    expected = torch.stack(
        [
            torch.stack(
                [
                    images[b, :, r * P : (r + 1) * P, c * P : (c + 1) * P].reshape(-1)
                    for r in range(2)
                    for c in range(3)  # row-major: left to right, then down
                ]
            )
            for b in range(2)
        ]
    )  # (B, N, ch*P*P)
    assert torch.equal(patchify(images, P), expected)


def test_patch_embedding_is_a_convolution_with_kernel_and_stride_the_patch():
    torch.manual_seed(0)
    emb = PatchEmbedding(channels=3, patch=4, d_model=10)
    conv = torch.nn.Conv2d(3, 10, kernel_size=4, stride=4)
    with torch.no_grad():
        conv.weight.copy_(emb.proj.weight.view(10, 3, 4, 4))  # (C, ch, P, P)
        conv.bias.copy_(emb.proj.bias)
    images = torch.randn(5, 3, 16, 12)
    expected = conv(images).flatten(2).transpose(1, 2)  # (B, C, 4, 3) -> (B, 12, C)
    torch.testing.assert_close(emb(images), expected, rtol=1e-5, atol=1e-5)


def test_grid_positions_know_rows_and_columns():
    sin = SinusoidalGridPositions(3, 4, 8)
    pos = torch.arange(12)
    table = sin(pos).view(3, 4, 8)  # (rows, cols, C)
    # the first half depends on the row only, the second on the column only
    assert torch.equal(table[:, :1, :4].expand(3, 4, 4), table[..., :4])
    assert torch.equal(table[:1, :, 4:].expand(3, 4, 4), table[..., 4:])
    assert len({tuple(v.tolist()) for v in sin(pos)}) == 12  # every patch its own vector
    learned = LearnedGridPositions(3, 4, 8)
    torch.testing.assert_close(learned(torch.tensor([6])), learned.row[1:2] + learned.col[2:3])
    with pytest.raises(ValueError, match="divisible by 4"):
        SinusoidalGridPositions(2, 2, 6)


def test_only_the_vit_offers_the_grid_schemes():
    grid = {name for name, scheme in POSITIONS.items() if scheme.grid}
    assert grid == {"learned-2d", "sinusoidal-2d"}
    assert set(SEQUENCE_POSITIONS) == set(POSITIONS) - grid
    for cls in (GPTConfig, EncoderConfig, Seq2SeqConfig):
        (pos_emb,) = [f for f in fields(cls) if f.name == "pos_emb"]
        assert set(pos_emb.metadata["choices"]) == set(SEQUENCE_POSITIONS), cls.__name__
    with pytest.raises(ValueError, match="pos_emb"):
        GPTConfig(pos_emb="sinusoidal-2d")
    (pos_emb,) = [f for f in fields(VitConfig) if f.name == "pos_emb"]
    assert set(pos_emb.metadata["choices"]) == set(POSITIONS)


def test_config_derives_the_sequence_from_the_patches():
    assert VitConfig(image_size=8, patch_size=2).block_size == 16
    assert VitConfig(image_size=12, patch_size=4).grid == (3, 3)
    with pytest.raises(ValueError, match="must divide"):
        VitConfig(image_size=8, patch_size=3)


@pytest.mark.parametrize("pool", ["cls", "mean"])
@pytest.mark.parametrize("pos_emb", sorted(POSITIONS))
def test_forward_shapes_and_loss(pool, pos_emb):
    torch.manual_seed(0)
    model = VisionTransformer(VitConfig(**SMALL, pool=pool, pos_emb=pos_emb, n_classes=7))
    images, labels = torch.randn(3, 1, 8, 8), torch.tensor([0, 3, 6])
    logits, loss = model(images, labels)
    assert logits.shape == (3, 7)
    torch.testing.assert_close(loss, torch.nn.functional.cross_entropy(logits, labels))
    T = 16 + (pool == "cls")
    assert model.encode(images).shape == (3, T, 16)
    loss.backward()
    assert model.patch_emb.proj.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="expected images of shape"):
        model(torch.randn(3, 1, 6, 6))


def _shuffle_patches(images: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
    """Move the 2 x 2 patches of (B, 1, 8, 8) images: patch perm[i] goes to place i."""
    p = images.view(-1, 4, 2, 4, 2).permute(0, 1, 3, 2, 4).reshape(-1, 16, 2, 2)
    p = p[:, perm].view(-1, 4, 4, 2, 2).permute(0, 1, 3, 2, 4)
    return p.reshape(-1, 1, 8, 8)


@pytest.mark.parametrize("pos_emb", ["none", "learned", "learned-2d", "sinusoidal-2d"])
def test_without_positions_the_patches_are_a_bag(pos_emb):
    """With no position signal a ViT cannot tell a digit from its patches shuffled; with any
    scheme it can."""
    torch.manual_seed(0)
    model = VisionTransformer(VitConfig(**SMALL, pos_emb=pos_emb)).eval()
    images = torch.randn(2, 1, 8, 8)
    shuffled = _shuffle_patches(images, torch.randperm(16))
    with torch.no_grad():
        same = torch.allclose(model(images)[0], model(shuffled)[0], atol=1e-5)
    assert same == (pos_emb == "none")


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    model = VisionTransformer(VitConfig(**SMALL, pos_emb="sinusoidal-2d", pool="mean")).eval()
    checkpoint.save(tmp_path / "vit", model, digits.label_vocab(), meta={"task": "digits"})
    loaded, vocab = checkpoint.load(tmp_path / "vit", family="vit")
    assert type(loaded) is VisionTransformer and loaded.config == model.config
    assert digits.class_name(vocab, 7) == "7"
    images = torch.randn(4, 1, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(loaded(images)[0], model(images)[0])


def test_the_split_is_fixed_and_the_pixels_scaled():
    a, b = digits.load_split(), digits.load_split()
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert len(a[1]) == 1437 and len(a[3]) == digits.N_TEST
    assert set(a[3].tolist()) == set(range(10))
    x = digits.to_pixels(a[0][:100])  # (100, 1, 8, 8) in [-1, 1]
    assert x.shape == (100, 1, 8, 8) and x.min() == -1 and x.max() == 1
    torch.testing.assert_close(x[:, 0], torch.as_tensor(a[0][:100] / 8 - 1, dtype=torch.float32))


# --- the task and its attention view, on a folder trained for a few steps -------------------

STEPS = 150


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("digits") / "run"
    assert (
        main(["train", "--task", "digits", "--max-steps", str(STEPS), "--out", str(out), "--quiet"])
        == 0
    )
    return out


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_short_run_learns_the_digits(digits_run):
    results = checkpoint.read_meta(digits_run)["results"]
    assert results["steps"] == STEPS and results["n_test"] == 360
    assert results["test_accuracy"] >= 0.5  # chance: 0.1; measured 0.75 after 150 steps
    model, vocab = checkpoint.load(digits_run, family="vit")
    _, _, test_x, test_y = digits.load_split()
    acc = digits.accuracy(model, digits.to_pixels(test_x), torch.as_tensor(test_y))
    assert acc == pytest.approx(results["test_accuracy"])


@pytest.mark.parametrize("fmt", ["--png", "--html"])
def test_inspect_attention_on_a_test_image(digits_run, capsys, tmp_path, fmt):
    out = tmp_path / f"digit{fmt[1:]}"
    code, printed, err = run(
        capsys, "inspect", "attention", "--model", digits_run, "--image", "5", fmt, "--out", out
    )
    assert code == 0, err
    assert printed.strip() == str(out) and out.stat().st_size > 2000


def test_the_view_is_the_class_tokens_attention(digits_run):
    from glassformer.inspect.image_attention import image_attention_view

    model, vocab = checkpoint.load(digits_run, family="vit")
    image, source = digits.chosen_image("5")
    names = [digits.class_name(vocab, k) for k in range(10)]
    pixels = digits.to_pixels(image[None])[0]
    view = image_attention_view(model, pixels, (image / 16).tolist(), names, source, layer=1)
    assert source.startswith("digits test image 5 (label ")
    (m,) = view["maps"]
    assert m["layer"] == 1 and len(m["heads"]) == model.config.n_head
    for weights, own in zip(m["heads"], m["self"], strict=True):
        assert np.array(weights).shape == (4, 4)
        assert np.array(weights).sum() + own == pytest.approx(1, abs=1e-3)  # the whole row
    with torch.no_grad():
        probs = model(pixels[None])[0].softmax(-1)[0]
    name, p = view["prediction"][0]
    assert name == str(probs.argmax().item()) and p == pytest.approx(probs.max().item(), abs=1e-4)


def test_an_npy_image_works_too(digits_run, capsys, tmp_path):
    file = tmp_path / "three.npy"
    np.save(file, digits.load_split()[2][3])
    out = tmp_path / "three.png"
    code, _, err = run(
        capsys,
        "inspect",
        "attention",
        "--model",
        digits_run,
        "--image",
        file,
        "--png",
        "--out",
        out,
        "--head",
        "0",
    )
    assert code == 0, err


def test_attention_view_renders_in_chromium(digits_run, browser, tmp_path, capsys):
    from test_browser import open_page

    out = tmp_path / "digit.html"
    code, _, err = run(
        capsys, "inspect", "attention", "--model", digits_run, "--image", "0", "--out", out
    )
    assert code == 0, err
    selectors = [
        "#image canvas",
        "#prediction td",
        "#thumbs canvas",
        "#overlay canvas",
        "#overlay table.heatmap td",
        "#map-select",
        "#head-select",
    ]
    open_page(browser, out, selectors, tmp_path / "digit-shot.png")


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--image", "360"], "--image 360 does not exist"),
        (["--image", "-1"], "--image -1 does not exist"),
        (["--image", "{tmp}/missing.npy"], "no such image file"),
        (["--image", "{tmp}/not.npy"], "is not a .npy array"),
        (["--image", "{tmp}/wide.npy"], "holds an array of shape (8, 9)"),
        (["--image", "{tmp}/bright.npy"], "values outside 0..16"),
        (["--text", "a digit"], "reads an image, not a text"),
        ([], "needs a text"),
        (["--image", "0", "--layer", "9"], "--layer 9 does not exist"),
    ],
)
def test_bad_image_input_is_one_sentence(digits_run, capsys, tmp_path, argv, words):
    (tmp_path / "not.npy").write_text("pixels")
    np.save(tmp_path / "wide.npy", np.zeros((8, 9)))
    np.save(tmp_path / "bright.npy", np.full((8, 8), 255.0))
    argv = [a.format(tmp=tmp_path) for a in argv]
    code, out, err = run(capsys, "inspect", "attention", "--model", digits_run, *argv)
    assert code == 2 and out == ""
    assert err.startswith("glassformer: error: ") and words in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_image_applies_to_a_vit_and_to_attention_only(digits_run, capsys, tmp_path):
    from glassformer.models.gpt import GPT
    from glassformer.tokenizers import CharTokenizer

    gpt = tmp_path / "gpt"
    checkpoint.save(
        gpt,
        GPT(GPTConfig(vocab_size=3, block_size=8, n_layer=1, n_head=1, n_embd=8)),
        CharTokenizer.train("ab"),
    )
    for argv, words in (
        (["attention", "--model", gpt, "--image", "0"], "holds a 'gpt' model"),
        (
            ["logit-lens", "--model", digits_run, "--image", "0"],
            "only applies to inspect attention",
        ),
    ):
        code, out, err = run(capsys, "inspect", *argv)
        assert code == 2 and words in err and len(err.strip().splitlines()) == 1
