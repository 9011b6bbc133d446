"""`load(path)`: a model and its tokenizer from any folder glassformer reads.

    checkpoint folder (config.json names the family)   -> build the family, load the weights
    Hugging Face folder (config.json: model_type)       -> interop/convert.py, by the table
    a .gguf file, or a short name such as "smollm2"     -> interop/gguf.py, by the table

(the table: interop/architectures.py, one entry per foreign architecture)

Each problem with a folder ends in one sentence naming it and the fix (`UserError`): not a
folder, a missing file, files that disagree with the manifest, an unknown family or format
version, a config of the wrong shape or types (`n_layer: 2.5`), a tensor that does not fit
(`core/weights.py` names it), a trainer state from another step. Every file is read once,
checked against the manifest from the bytes that are then used (manifest.py).
"""

import io
import json
import sys
from pathlib import Path

import torch
from torch import nn

from glassformer.checkpoint.manifest import Snapshot, recover
from glassformer.checkpoint.state import check_trainer_state
from glassformer.checkpoint.write import FORMAT_VERSION, OBSOLETE
from glassformer.core.fields import check_fields
from glassformer.core.weights import load_weight_dict, parse_weights, weights_metadata
from glassformer.errors import UserError
from glassformer.interop.convert import load_hf_folder
from glassformer.interop.folder import is_hf_folder
from glassformer.interop.gguf import gguf_file, load_gguf
from glassformer.models.registry import FAMILIES, build, family_of
from glassformer.tokenizers import Tokenizer, load_tokenizer
from glassformer.tokenizers.symbols import SymbolVocab

SECTIONS = ("train", "data", "results")  # sections of config.json that must be objects
MODEL_ERRORS = (KeyError, ValueError, TypeError, AttributeError, ZeroDivisionError, OverflowError)


def _snapshot(path: Path, names: tuple[str, ...]) -> Snapshot:
    """The checked files `names` of checkpoint folder `path` (config.json and weights needed)."""
    if not path.is_dir():
        raise UserError(f"no such checkpoint folder: {path}; pass a folder that training wrote")
    snap = Snapshot(path, names)
    for name in ("config.json", "model.safetensors"):
        if not snap.has(name):
            raise UserError(
                f"{path} is not a glassformer checkpoint ({name} is missing); "
                "pass the --out folder of a training run"
            )
    return snap


def read_meta(path: str | Path) -> dict:
    """The config.json of checkpoint folder `path`, checked: a known format, family and model."""
    path = Path(path)
    snap = _snapshot(path, ("config.json",))
    meta = _meta(path, snap)
    _check_size(path, snap, meta)
    return meta


def _meta(path: Path, snap: Snapshot) -> dict:
    cfg_path = path / "config.json"
    try:
        meta = json.loads(snap.read("config.json").decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise UserError(f"{cfg_path} is not valid JSON ({e}); retrain or restore it") from None
    except RecursionError:
        raise UserError(f"{cfg_path} is nested too deeply to be a config; restore it") from None
    if not isinstance(meta, dict):
        raise UserError(f"{cfg_path} does not hold a JSON object; retrain or restore it")
    if "model_type" in meta:
        raise UserError(
            f"{path} is a Hugging Face folder, not a glassformer checkpoint; "
            "load it with glassformer.load"
        )
    version = meta.get("format_version")
    if type(version) is not int or version != FORMAT_VERSION:
        raise UserError(
            f"{cfg_path} has format_version {version!r}, this glassformer reads version "
            f"{FORMAT_VERSION}; use the glassformer that wrote it or retrain"
        )
    family = meta.get("family")
    if not isinstance(family, str) or family not in FAMILIES:
        raise UserError(
            f"{cfg_path} names the model family {family!r}, which this glassformer does not "
            f"know ({', '.join(FAMILIES)}); use the glassformer that wrote it or retrain"
        )
    if not isinstance(meta.get("model"), dict):
        raise UserError(f"{cfg_path} has an invalid model config (not a JSON object); retrain")
    try:
        config = FAMILIES[family].config_class.from_dict(meta["model"])
        check_fields(config, "model")
    except MODEL_ERRORS as e:
        raise UserError(f"{cfg_path} has an invalid model config ({e}); retrain") from None
    for section in SECTIONS:
        if section in meta and not isinstance(meta[section], dict):
            raise UserError(f"{cfg_path}: its {section!r} section is not a JSON object; retrain")
    return meta


def load(
    path: str | Path, device: str | torch.device = "cpu", family: str | None = None
) -> tuple[nn.Module, Tokenizer]:
    """`model, tokenizer` from `path`, the model in eval mode on `device`.

    `family` (e.g. "gpt" for a command that generates text) refuses a folder of another one.
    """
    model: nn.Module
    gguf = gguf_file(path)  # a .gguf file, or a short name such as "smollm2"
    if gguf is not None:
        model, tokenizer = load_gguf(gguf)
        _expect(gguf, family_of(model), family)
        return model.to(device).eval(), tokenizer
    path = Path(path)
    if is_hf_folder(path):  # e.g. the released gpt2 weights, or a Llama
        model, tokenizer = load_hf_folder(path)
        _expect(path, family_of(model), family)
        return model.to(device).eval(), tokenizer
    snap = _snapshot(path, ("config.json", "model.safetensors", "tokenizer.model"))
    meta = _meta(path, snap)
    _expect(path, meta["family"], family)
    model = _model(path, snap, meta)
    return model.to(device).eval(), _tokenizer(path, snap)


def _check_size(path: Path, snap: Snapshot, meta: dict) -> None:
    """Refuse a config.json that describes a far bigger model than its weights file holds
    (`n_layer: 1e30` would otherwise build layers until the memory runs out)."""
    c = FAMILIES[meta["family"]].config_class.from_dict(meta["model"])
    width, layers = getattr(c, "n_embd", 0), getattr(c, "n_layer", 0)
    least = layers * width * width + getattr(c, "vocab_size", 0) * width  # numbers, at least
    size = snap.size("model.safetensors")
    if least * 2 > size:  # 2 bytes a number even in bf16
        raise UserError(
            f"{path}/config.json describes a model of at least {least:.3g} numbers, but "
            f"model.safetensors holds {size} bytes; restore the config or retrain"
        )


def _model(path: Path, snap: Snapshot, meta: dict) -> nn.Module:
    _check_size(path, snap, meta)
    try:
        model = build(meta["family"], meta["model"])
    except MODEL_ERRORS as e:
        raise UserError(f"{path}/config.json has an invalid model config ({e}); retrain") from None
    file = path / "model.safetensors"
    load_weight_dict(model, parse_weights(snap.read("model.safetensors"), file), file)
    return model


def _expect(path: Path, found: str, wanted: str | None) -> None:
    if wanted is not None and found != wanted:
        raise UserError(
            f"{path} holds a {found!r} model, not a {wanted!r} one; "
            f"pass a checkpoint folder of the {wanted} family"
        )


def _tokenizer(path: Path, snap: Snapshot) -> Tokenizer:
    if snap.has("tokenizer.model"):
        return load_tokenizer(snap.path("tokenizer.model"))
    if (path / "vocab.json").is_file():  # a task folder of glassformer before the one format
        return SymbolVocab.from_vocab_json(path / "vocab.json")
    raise UserError(
        f"{path} has no tokenizer.model; copy the tokenizer of its training run into it or retrain"
    )


def load_trainer_state(path: str | Path) -> dict:
    """The optimizer, step and RNG states a run saved (read with weights_only=True), checked
    to belong to the same save as the weights beside them."""
    path = Path(path)
    snap = _snapshot(path, ("config.json", "model.safetensors", "trainer_state.pt"))
    return _trainer_state(path, snap)


def _trainer_state(path: Path, snap: Snapshot) -> dict:
    file = path / "trainer_state.pt"
    if not snap.has("trainer_state.pt"):
        raise UserError(
            f"cannot resume: {path} has no trainer_state.pt; train into it without --resume"
        )
    try:
        state = torch.load(
            io.BytesIO(snap.read("trainer_state.pt")), map_location="cpu", weights_only=True
        )
    except Exception:  # weights_only refuses code; anything else unreadable says the same
        raise UserError(
            f"{file} is not a readable trainer state; delete it and train without --resume"
        ) from None
    state = check_trainer_state(state, file)
    header = weights_metadata(snap.read("model.safetensors")).get("step")
    for where, step in (("manifest.json", snap.step), ("model.safetensors", header)):
        if step is not None and str(step) != str(state["step"]):
            raise UserError(
                f"the files of {path} disagree: {where} is from step {step}, trainer_state.pt "
                f"from step {state['step']}; resume from a consistent folder or retrain"
            )
    return state


def resume(path: str | Path, model: nn.Module, log=None) -> dict:
    """Load the weights of checkpoint `path` into `model` and return its trainer state,
    both from one save (checked). A save that was killed is finished or discarded first
    (`log` is told which); call this only while holding the folder (one writer)."""
    path = Path(path)
    if path.is_dir():
        note = recover(path, OBSOLETE)
        if note:
            (log or (lambda msg: print(f"note: {msg}", file=sys.stderr)))(note)
    names = ("config.json", "model.safetensors", "trainer_state.pt")
    snap = _snapshot(path, names)
    _check_size(path, snap, _meta(path, snap))
    state = _trainer_state(path, snap)
    file = path / "model.safetensors"
    load_weight_dict(model, parse_weights(snap.read("model.safetensors"), file), file)
    return state
