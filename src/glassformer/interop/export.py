"""Our GPT as a Hugging Face folder that `transformers` loads as it loads any model.

    OUT/config.json              GPT2LMHeadModel or LlamaForCausalLM (chosen by the shape)
    OUT/model.safetensors        the weights under Hugging Face's names (architectures.py)
    OUT/tokenizer.json           the same ids as our tokenizer (tokenizers/hf_json.py)
    OUT/tokenizer_config.json    PreTrainedTokenizerFast, its eos/bos, the chat template
    OUT/generation_config.json   bos / eos ids: where `generate` and pipelines stop
    OUT/README.md                a model card, YAML metadata first (the Hub reads it)

Which architecture: the first decoder entry of the architecture table whose position scheme
and norm are the model's (`exports_as`): a GPT with learned positions and LayerNorm is GPT-2;
one with rotary positions and RMSNorm is Llama (SmolLM2 and its fine-tunes).
A bias-free GPT-2-shaped model (every preset) exports with zero biases: x W^T + 0 is x W^T,
and LayerNorm without a shift is LayerNorm with a zero shift, so the function is the same.

The end-of-text id is the tokenizer's own (`eot_id`); a char tokenizer has none, so the config
names none and generation stops at the length asked for.

The folder is written under a temporary name beside OUT and renamed into place at the end,
so a failed export leaves no half-written OUT.
"""

import json
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

import torch

from glassformer.core.files import atomic_write_text, fsync_dir
from glassformer.errors import UserError
from glassformer.interop.architectures import ARCHITECTURES, exports_as
from glassformer.interop.convert import hf_pair
from glassformer.interop.folder import write_hf_folder
from glassformer.models.gpt import GPT
from glassformer.tokenizers.hf_json import token_string, tokenizer_json
from glassformer.tokenizers.pretrained_bpe import PretrainedBPE


def with_zero_biases(model: GPT) -> GPT:
    """The same function as bias-free `model`, as a GPT with biases (all zero)."""
    full = GPT(replace(model.config, bias=True))
    state = model.state_dict()
    full.load_state_dict(
        {k: state[k] if k in state else torch.zeros_like(v) for k, v in full.state_dict().items()}
    )
    return full.eval()


def hf_model(model: GPT) -> tuple[dict, dict[str, torch.Tensor]]:
    """The Hugging Face config and tensors of `model`, as the table entry its shape picks."""
    c = model.config
    arch = exports_as(c, "gpt")
    if arch is None:
        shapes, seen = [], set()
        for a in ARCHITECTURES.values():
            shape = (a.fixed["pos_emb"], a.fixed["norm"])
            if a.family == "gpt" and shape not in seen:
                seen.add(shape)
                shapes.append(
                    f"{a.title}-shaped (model.pos_emb={shape[0]!r}, model.norm={shape[1]!r})"
                )
        raise UserError(
            f"this model is neither {' nor '.join(shapes)}: it has model.pos_emb={c.pos_emb!r}, "
            f"model.norm={c.norm!r}; only those architectures export to Hugging Face"
        )
    if arch.fixed.get("bias") and not c.bias:
        model = with_zero_biases(model)
    return hf_pair(model, arch)


def model_card(hf: dict, model: GPT, meta: dict, source: str) -> str:
    """README.md: YAML metadata (library, pipeline, tags, base model), then what it is."""
    arch = hf["architectures"][0]
    finetune = meta.get("finetune") or {}
    tags = ["glassformer", hf["model_type"]] + (["lora"] if finetune.get("lora_rank") else [])
    yaml = ["---", "library_name: transformers", "pipeline_tag: text-generation", "tags:"]
    yaml += [f"- {t}" for t in tags]
    base = finetune.get("init_from")
    if base == "smollm2":
        yaml.append("base_model: HuggingFaceTB/SmolLM2-135M-Instruct")
    yaml.append("---")
    c = model.config
    n = sum(p.numel() for p in model.parameters())
    lines = [
        "",
        f"# {Path(source).name or source} (exported from glassformer)",
        "",
        f"- {arch}: {n / 1e6:.2f}M parameters, {c.n_layer} layers, {c.n_head} heads, "
        f"width {c.n_embd}, context {c.block_size}, vocabulary {c.vocab_size}",
    ]
    if base:
        how = f"LoRA rank {finetune['lora_rank']}, merged" if finetune.get("lora_rank") else "full"
        lines.append(f"- fine-tuned from {base} ({how})")
    data = meta.get("data") or {}
    if data.get("path"):
        lines.append(f"- trained on {data['path']}")
    lines += [
        "",
        "```python",
        "from transformers import pipeline",
        'generate = pipeline("text-generation", model="THIS_FOLDER")',
        'print(generate("Hello", max_new_tokens=40)[0]["generated_text"])',
        "```",
        "",
    ]
    return "\n".join(yaml + lines)


def export_hf(
    model: GPT, tokenizer, out: str | Path, meta: dict | None = None, source: str = "model"
) -> None:
    """Write `model` and `tokenizer` as the Hugging Face folder `out` (replacing it if it
    exists: the caller decides whether that is allowed)."""
    meta = meta or {}
    hf, weights = hf_model(model)
    pretrained = isinstance(tokenizer, PretrainedBPE)  # brings a start id and chat template
    eos, bos = tokenizer.eot_id, tokenizer.bos_id if pretrained else None
    hf |= {"bos_token_id": bos if bos is not None else eos, "eos_token_id": eos}
    tok_json = tokenizer_json(tokenizer)
    tok_config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": model.config.block_size,
        "clean_up_tokenization_spaces": False,
        "eos_token": token_string(tokenizer, eos),
        "bos_token": token_string(tokenizer, hf["bos_token_id"]),
    }
    if pretrained and tokenizer.chat_template:
        tok_config["chat_template"] = tokenizer.chat_template
    generation = {"bos_token_id": hf["bos_token_id"], "eos_token_id": eos}

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        write_hf_folder(staging, hf, weights)
        files = {
            "tokenizer.json": tok_json,
            "tokenizer_config.json": tok_config,
            "generation_config.json": generation,
        }
        for name, data in files.items():
            atomic_write_text(staging / name, json.dumps(data, indent=2, ensure_ascii=False))
        atomic_write_text(staging / "README.md", model_card(hf, model, meta, source))
        if out.exists():
            old = out.with_name(f".{out.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            out.rename(old)
            staging.rename(out)
            shutil.rmtree(old)
        else:
            staging.rename(out)
        fsync_dir(out.parent)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
