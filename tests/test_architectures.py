"""The architecture table (interop/architectures.py): its rows are our models' weights, and a
Llama travels through Hugging Face's class and back by the table alone."""

import json
from dataclasses import replace

import pytest
import torch

from glassformer.core.weights import stored_weights
from glassformer.errors import UserError
from glassformer.interop import from_hf, to_hf
from glassformer.interop.architectures import ARCHITECTURES, by_gguf_arch, by_hf_type
from glassformer.interop.mapping import _fill, _instances
from glassformer.models.registry import FAMILIES, build

SMALL = {"vocab_size": 40, "block_size": 16, "n_layer": 2, "n_head": 4, "n_embd": 32}


def small_config(arch) -> dict:
    config = dict(SMALL, **{k: v for k, v in arch.fixed.items()})
    if arch.family == "seq2seq":
        config |= {"n_dec_layer": 3, "pad_id": 0, "bos_id": 0, "eos_id": 1}
    if arch.family == "encoder":
        config |= {"pooler": True, "n_classes": 3}
    return config


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_rows_name_every_weight_once(name):
    """Every stored tensor of the family's model is named by exactly one row (per format)."""
    arch = ARCHITECTURES[name]
    model = build(arch.family, small_config(arch))
    for fmt in ("hf", "gguf") if arch.gguf_arch else ("hf",):
        named = [
            _fill(row.ours, sub)
            for row in arch.rows
            if getattr(row, fmt) and (row.when is None or row.when(model.config))
            for sub in _instances(row, model.config)
        ]
        assert sorted(named) == sorted(stored_weights(model)), (name, fmt)


def test_llama_round_trip_through_transformers(tmp_path):
    transformers = pytest.importorskip("transformers")
    config = SMALL | {"n_kv_head": 2, "mlp_hidden": 48, "tie_weights": False}
    ours = build("gpt", config | dict(ARCHITECTURES["llama"].fixed)).eval()
    to_hf(ours, tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["model_type"] == "llama"
    ref = transformers.AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    again = from_hf(tmp_path)
    ids = torch.randint(0, 40, (2, 9))
    with torch.no_grad():
        torch.testing.assert_close(ours(ids)[0], ref(ids).logits, atol=1e-5, rtol=1e-4)
    for name, tensor in ours.state_dict().items():
        assert torch.equal(tensor, again.state_dict()[name]), name
    same = {"emb_scale": ours.config.emb_scale}  # 'auto' and 'none': 1 with rotary positions
    assert replace(again.config, **same) == ours.config


def test_unknown_architectures_name_the_supported_ones():
    with pytest.raises(UserError, match="model_type 'mamba' .* supported: bert, gpt2, llama"):
        by_hf_type("mamba", "x")
    with pytest.raises(UserError, match=r"holds a 'gemma3' model; .* llama, qwen2, qwen3\.$"):
        by_gguf_arch("gemma3", "x.gguf")
    assert all(a.family in FAMILIES for a in ARCHITECTURES.values())


def test_mistral_is_the_llama_entry_under_another_name(tmp_path):
    transformers = pytest.importorskip("transformers")
    config = transformers.MistralConfig(
        vocab_size=40, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, sliding_window=None,
    )  # fmt: skip
    torch.manual_seed(0)
    ref = transformers.MistralForCausalLM(config).eval()
    ref.save_pretrained(tmp_path)
    ids = torch.randint(0, 40, (2, 9))
    with torch.no_grad():
        torch.testing.assert_close(from_hf(tmp_path)(ids)[0], ref(ids).logits)
    saved = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps(saved | {"sliding_window": 4}))
    with pytest.raises(UserError, match="Mistral setting sliding_window=4 is not supported"):
        from_hf(tmp_path)
