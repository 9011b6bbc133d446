"""Every model family from the command line, on the folders `glassformer train --task` writes:
generate on seq2seq (dates), classify (sentiment), fill-mask (mlm), inspect attention on an
encoder and an encoder-decoder; and each bad input as one sentence, exit 2.

The tasks train for one step here (the folders are real, the answers are not). Measured: a
dates model after 150 steps prints a well-formed but wrong date ("1999-08-19"), after one step
"7777..."; the documented ~1,500 steps are needed for "2021-03-03". So the generate test checks
that the command prints exactly the model's greedy decoding (as the dates task measures it).
"""

import re

import pytest

from glassformer import checkpoint
from glassformer.cli import main
from glassformer.generate.seq2seq import translate_tokens
from glassformer.tasks.dates import encode_batch
from glassformer.tokenizers.symbols import EOS


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("tasks")
    for task in ("dates", "sentiment", "mlm"):
        argv = ["train", "--task", task, "--max-steps", "1", "--out", str(root / task), "--quiet"]
        assert main(argv) == 0
    return root


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_generate_translates_with_a_seq2seq_folder(folders, capsys):
    code, out, err = run(
        capsys, "generate", "--model", folders / "dates", "--prompt", "March 3, 2021"
    )
    assert code == 0, err
    model, vocab = checkpoint.load(folders / "dates", family="seq2seq")
    src, mask, _, _ = encode_batch([("March 3, 2021", "2021-03-03")], vocab)
    ids = translate_tokens(model, src, mask)[0].tolist()
    assert out == vocab.decode(ids[: ids.index(EOS)] if EOS in ids else ids) + "\n"


def test_classify_prints_label_and_probability(folders, capsys):
    texts = ["the camera is not excellent", "the phone is great"]
    code, out, err = run(capsys, "classify", "--model", folders / "sentiment", *texts)
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 2
    for line, text in zip(lines, texts, strict=True):
        label, prob, shown = line.split("\t")
        assert label in ("negative", "positive") and 0.5 <= float(prob) <= 1 and shown == text


def test_fill_mask_lists_candidates_per_mask(folders, capsys):
    code, out, err = run(
        capsys, "fill-mask", "--model", folders / "mlm", "--top", "3", "t[MASK]x[MASK]"
    )
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "t[MASK]x[MASK]" and len(lines) == 3
    for n, line in enumerate(lines[1:], 1):
        assert line.startswith(f"  [MASK] {n}: ")
        probs = [float(p) for p in re.findall(r"' ([0-9.]+)", line)]
        assert len(probs) == 3 and probs == sorted(probs, reverse=True)


@pytest.mark.parametrize("fmt", ["--png", "--html"])
def test_inspect_attention_of_an_encoder(folders, capsys, tmp_path, fmt):
    out_file = tmp_path / f"enc{'.png' if fmt == '--png' else '.html'}"
    code, out, err = run(
        capsys, "inspect", "attention", "--model", folders / "sentiment",
        "--text", "the phone is great", fmt, "--out", out_file,
    )  # fmt: skip
    assert code == 0, err
    assert out.strip() == str(out_file) and out_file.stat().st_size > 1000


def test_inspect_attention_of_a_seq2seq_has_cross_attention(folders, capsys, tmp_path):
    out_file = tmp_path / "dates.html"
    code, out, err = run(
        capsys, "inspect", "attention", "--model", folders / "dates",
        "--text", "March 3, 2021", "--out", out_file,
    )  # fmt: skip
    assert code == 0, err
    page = out_file.read_text()
    assert "dec_blocks.0.cross.pattern" in page and "enc_blocks.0.attn.pattern" in page
    png = tmp_path / "dates.png"
    args = ["--text", "March 3, 2021", "--png", "--out", png]
    assert run(capsys, "inspect", "attention", "--model", folders / "dates", *args)[0] == 0
    assert png.stat().st_size > 1000


@pytest.mark.parametrize(
    "argv, words",
    [
        (["classify", "--model", "{dates}", "x"], "'seq2seq' model, not a 'encoder' one"),
        (["classify", "--model", "{mlm}", "x"], "without a classification head"),
        (
            ["classify", "--model", "{sentiment}", "the phone is zzz"],
            "not in this task's vocabulary",
        ),
        (["classify", "--model", "{sentiment}", ""], "is empty"),
        (["fill-mask", "--model", "{mlm}", "text"], "holds no [MASK]"),
        (["fill-mask", "--model", "{sentiment}", "a[MASK]"], "without a masked-LM head"),
        (["fill-mask", "--model", "{mlm}", "a[MASK]\u2603"], "not in this task's vocabulary"),
        (["generate", "--model", "{dates}", "--prompt", ""], "the prompt is empty"),
        (["generate", "--model", "{dates}", "--prompt", "March 3, 2021!"], "not in this task's"),
        (["generate", "--model", "{sentiment}"], "'encoder' model, not a 'gpt' one"),
        (["chat", "--model", "{dates}"], "'seq2seq' model, not a 'gpt' one"),
        (["inspect", "attention", "--model", "{dates}", "--text", "%"], "not in this task's"),
    ],
)
def test_bad_input_is_one_sentence(folders, capsys, argv, words):
    argv = [a.format(**{t: folders / t for t in ("dates", "sentiment", "mlm")}) for a in argv]
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.startswith("glassformer: error: ") and words in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
