"""The checkpoint folder: one writer and one loader for every family, old folders, bad folders."""

import json

import pytest
import torch
from safetensors.torch import save_file

from glassformer import checkpoint
from glassformer.cli import main
from glassformer.core.weights import stored_weights
from glassformer.errors import UserError
from glassformer.models.registry import FAMILIES, build, family_of
from glassformer.tokenizers import CharTokenizer
from glassformer.tokenizers.symbols import SymbolVocab

TEXT = "hello world, the checkpoint folder"
SMALL = {"vocab_size": 40, "block_size": 16, "n_layer": 1, "n_embd": 16}
CONFIGS = {
    "gpt": {**SMALL, "n_head": 2},
    "lstm": SMALL,
    "encoder": {**SMALL, "n_head": 2, "n_classes": 3, "dropout": 0.0},
    "seq2seq": {**SMALL, "n_head": 2, "n_dec_layer": 1},
    "vit": {
        "n_layer": 1,
        "n_embd": 16,
        "n_head": 2,
        "image_size": 8,
        "patch_size": 4,
        "n_classes": 3,
        "dropout": 0.0,
    },
}


def _model(family: str, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = build(family, CONFIGS[family]).eval()
    with torch.no_grad():  # random everywhere (norm gains, biases), so a swapped tensor shows
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return model


def _tokenizer(family: str):
    return CharTokenizer.train(TEXT) if family in ("gpt", "lstm") else SymbolVocab.of_chars(TEXT)


@torch.no_grad()
def _outputs(model: torch.nn.Module) -> torch.Tensor:
    ids = torch.tensor([[5, 7, 9, 11, 6, 8]])  # (1, T)
    if family_of(model) == "vit":
        return model(torch.linspace(-1, 1, 64).view(1, 1, 8, 8))[0]  # (1, n_classes)
    if family_of(model) == "seq2seq":
        return model(ids, ids[:, :4])[0]
    if family_of(model) == "encoder":
        return torch.cat([model(ids)[0].flatten(), model.classify(ids)[0].flatten()])
    return model(ids)[0]


def _write_weights(path, model) -> None:
    save_file({k: v.cpu() for k, v in stored_weights(model).items()}, path / "model.safetensors")


def _old_gpt_folder(path, model, tokenizer) -> None:
    """A run folder as glassformer train wrote it before checkpoint/ (plain json + safetensors)."""
    path.mkdir()
    _write_weights(path, model)
    meta = {
        "format_version": 1,
        "family": "gpt",
        "model": model.config.to_dict(),
        "train": {"batch_size": 8, "max_steps": 10, "lr": 1e-3},
        "data": {"path": "", "tokenizer": "char", "vocab_size": 0},
    }
    (path / "config.json").write_text(json.dumps(meta, indent=2))
    tokenizer.save(path / "tokenizer.model")


@pytest.mark.parametrize("family", list(FAMILIES))
def test_every_family_saves_and_loads_with_equal_outputs(family, tmp_path):
    model, tok = _model(family), _tokenizer(family)
    checkpoint.save(tmp_path, model, tok, meta={"task": "demo", "results": {"accuracy": 0.5}})
    loaded, loaded_tok = checkpoint.load(tmp_path)
    assert type(loaded) is type(model) and not loaded.training
    assert torch.equal(_outputs(loaded), _outputs(model))
    assert loaded_tok.encode("hello") == tok.encode("hello")
    meta = checkpoint.read_meta(tmp_path)
    assert (meta["format_version"], meta["family"], meta["task"]) == (1, family, "demo")
    assert meta["model"] == model.config.to_dict()
    card = (tmp_path / "README.md").read_text()
    shape = "3 classes" if family == "vit" else f"vocabulary {SMALL['vocab_size']}"
    assert card.startswith("# glassformer") and shape in card
    assert not (tmp_path / "trainer_state.pt").exists()


def test_meta_sections_cannot_override_the_model(tmp_path):
    model = _model("gpt")
    wrong = {**model.config.to_dict(), "n_layer": 7}
    checkpoint.save(tmp_path, model, _tokenizer("gpt"), meta={"family": "lstm", "model": wrong})
    meta = checkpoint.read_meta(tmp_path)
    assert meta["family"] == "gpt" and meta["model"]["n_layer"] == 1


def test_card_and_trainer_state(tmp_path):
    model = _model("gpt")
    state = {"step": 3, "optimizer": {"lr": torch.tensor([0.1, 0.2])}}
    checkpoint.save(tmp_path, model, _tokenizer("gpt"), trainer_state=state, card="# mine\n")
    assert (tmp_path / "README.md").read_text() == "# mine\n"
    loaded = checkpoint.load_trainer_state(tmp_path)
    assert loaded["step"] == 3 and torch.equal(loaded["optimizer"]["lr"], state["optimizer"]["lr"])
    (tmp_path / "trainer_state.pt").write_bytes(b"not a pickle")
    with pytest.raises(UserError, match="trainer_state.pt is not the file manifest.json names"):
        checkpoint.load_trainer_state(tmp_path)
    (tmp_path / "manifest.json").unlink()  # as a folder written before manifests
    with pytest.raises(UserError, match="not a readable trainer state"):
        checkpoint.load_trainer_state(tmp_path)
    (tmp_path / "trainer_state.pt").unlink()
    with pytest.raises(UserError, match="no trainer_state.pt"):
        checkpoint.load_trainer_state(tmp_path)


def test_gpt_card_names_the_training_data(tmp_path):
    data = {"path": "shakespeare.txt", "tokenizer": "bpe"}
    checkpoint.save(tmp_path, _model("gpt"), _tokenizer("gpt"), meta={"data": data})
    card = (tmp_path / "README.md").read_text()
    assert "trained on: shakespeare.txt (bpe tokenizer)" in card
    assert "glassformer generate --model THIS_FOLDER" in card


def test_old_gpt_run_folder_loads(tmp_path):
    model, tok = _model("gpt"), _tokenizer("gpt")
    _old_gpt_folder(tmp_path / "run", model, tok)
    loaded, loaded_tok = checkpoint.load(tmp_path / "run", family="gpt")
    assert torch.equal(_outputs(loaded), _outputs(model))
    assert loaded_tok.decode(loaded_tok.encode(TEXT)) == TEXT
    assert checkpoint.read_meta(tmp_path / "run")["train"]["max_steps"] == 10


def test_old_task_folder_with_vocab_json_loads(tmp_path):
    """A task folder as glassformer wrote it before the one format: symbols in vocab.json."""
    model = _model("seq2seq")
    _write_weights(tmp_path, model)
    meta = {
        "format_version": 1,
        "family": "seq2seq",
        "task": "dates",
        "model": model.config.to_dict(),
        "results": {"exact_match": 0.9},
    }
    (tmp_path / "config.json").write_text(json.dumps(meta, indent=2))
    symbols = list(SymbolVocab.of_chars(TEXT).symbols)
    (tmp_path / "vocab.json").write_text(json.dumps({"words": False, "symbols": symbols}))
    loaded, vocab = checkpoint.load(tmp_path)
    assert torch.equal(_outputs(loaded), _outputs(model))
    assert vocab.decode(vocab.encode("hello")) == "hello" and vocab.eot_id == 2
    assert checkpoint.read_meta(tmp_path)["results"] == {"exact_match": 0.9}


def test_hugging_face_gpt2_folder_loads(tmp_path):
    from glassformer.interop import to_hf
    from glassformer.tokenizers.formats import bytes_to_unicode

    config = {"vocab_size": 257, "block_size": 16, "n_layer": 1, "n_head": 2, "n_embd": 16}
    model = build("gpt", {**config, "activation": "gelu_tanh"}).eval()
    to_hf(model, tmp_path)
    vocab = {ch: i for i, ch in enumerate(bytes_to_unicode().values())}
    (tmp_path / "vocab.json").write_text(json.dumps({**vocab, "<|endoftext|>": 256}))
    (tmp_path / "merges.txt").write_text("#version: 0.2\n")
    loaded, tok = checkpoint.load(tmp_path, family="gpt")
    ids = torch.tensor([tok.encode("Hi there")])
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids)[0], model(ids)[0])
    with pytest.raises(UserError, match="Hugging Face folder"):
        checkpoint.read_meta(tmp_path)


def _edit_config(path, **changes) -> None:
    meta = json.loads((path / "config.json").read_text())
    for key, value in changes.items():
        if value is None:
            meta.pop(key)
        else:
            meta[key] = value
    (path / "config.json").write_text(json.dumps(meta))


@pytest.fixture
def folder(tmp_path):
    """A saved encoder folder without its manifest (as older versions wrote them), so that
    the damage these tests do by hand reaches the checks of each file's contents."""
    out = tmp_path / "ckpt"
    checkpoint.save(out, _model("encoder"), _tokenizer("encoder"))
    (out / "manifest.json").unlink()
    return out


def _one_sentence(exc: pytest.ExceptionInfo) -> str:
    msg = str(exc.value)
    assert "\n" not in msg and msg.count("; ") == 1, msg
    return msg


def test_bad_folders_give_one_sentence(folder, tmp_path):
    cases = [
        (lambda: None, tmp_path / "nothing", "no such checkpoint folder"),
        (lambda: (folder / "model.safetensors").unlink(), folder, "model.safetensors is missing"),
    ]
    for damage, path, expected in cases:
        damage()
        with pytest.raises(UserError, match=expected) as exc:
            checkpoint.load(path)
        _one_sentence(exc)
    file = tmp_path / "file.txt"
    file.write_text("x")
    with pytest.raises(UserError, match="no such checkpoint folder"):
        checkpoint.load(file)
    with pytest.raises(UserError, match="is a file, but a folder is needed"):
        checkpoint.save(file, _model("gpt"), _tokenizer("gpt"))


@pytest.mark.parametrize(
    "changes, expected",
    [
        ({"family": "transformerxl"}, "model family 'transformerxl'"),
        ({"family": None}, "model family None"),
        ({"format_version": 2}, "format_version 2"),
        ({"format_version": None}, "format_version None"),
        ({"model": None}, "invalid model config"),
        ({"model": {"n_embd": 33, "n_head": 2}}, "invalid model config"),
        ({"model": {"n_wings": 2}}, "invalid model config"),
    ],
)
def test_bad_config_gives_one_sentence(folder, changes, expected):
    _edit_config(folder, **changes)
    for read in (checkpoint.read_meta, checkpoint.load):
        with pytest.raises(UserError, match=expected) as exc:
            read(folder)
        _one_sentence(exc)


def test_damaged_files_give_one_sentence(folder):
    (folder / "config.json").write_text("{not json")
    with pytest.raises(UserError, match="not valid JSON") as exc:
        checkpoint.load(folder)
    _one_sentence(exc)
    (folder / "config.json").write_text("[1, 2]")
    with pytest.raises(UserError, match="does not hold a JSON object"):
        checkpoint.load(folder)


def test_missing_tokenizer_and_mismatched_weights(folder):
    _edit_config(folder, model={**CONFIGS["encoder"], "n_embd": 32})
    with pytest.raises(UserError, match="tensor '[\\w.]+' has shape"):
        checkpoint.load(folder)
    _edit_config(folder, model=CONFIGS["encoder"])
    (folder / "tokenizer.model").unlink()
    with pytest.raises(UserError, match="no tokenizer.model") as exc:
        checkpoint.load(folder)
    _one_sentence(exc)


def test_wrong_family_is_refused(folder, capsys):
    with pytest.raises(UserError, match="holds a 'encoder' model, not a 'seq2seq' one"):
        checkpoint.load(folder, family="seq2seq")
    assert main(["generate", "--model", str(folder), "--prompt", "hello"]) == 2
    err = capsys.readouterr().err
    assert "holds a 'encoder' model, not a 'gpt' one" in err and "Traceback" not in err
