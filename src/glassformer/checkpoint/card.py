"""The model card: a README.md in every checkpoint folder saying what the model is.

    >>> from glassformer.models.lstm import LSTMConfig, LSTMLanguageModel
    >>> print(model_card("lstm", LSTMLanguageModel(LSTMConfig(vocab_size=65)), {}), end="")
    # glassformer LSTM language model (the baseline of benchmarks/transformer_vs_lstm.py)
    <BLANKLINE>
    - 1.07M parameters: 2 LSTM layers, width 256, vocabulary 65

The lines come from the model's config and from the checkpoint's config.json sections
(`data` of a training run, `task` and `results` of a task model).
"""

from torch import nn

TITLES = {
    "gpt": "GPT checkpoint",
    "lstm": "LSTM language model (the baseline of benchmarks/transformer_vs_lstm.py)",
    "encoder": "encoder (BERT-style)",
    "seq2seq": "encoder-decoder (seq2seq)",
    "vit": "vision transformer (ViT)",
}
USE_GPT = (
    "Use it:\n\n"
    "    glassformer generate --model THIS_FOLDER --prompt 'Hello'\n\n"
    "or in Python: `model, tokenizer = glassformer.load('THIS_FOLDER')`.\n"
)


def model_card(family: str, model: nn.Module, config: dict) -> str:
    """README.md text for `model` of `family`; `config` is the folder's config.json."""
    c = model.config
    params = f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters"
    lines = [f"# glassformer {TITLES.get(family, family)}", ""]
    if family == "lstm":
        shape = f"{c.n_layer} LSTM layers, width {c.n_embd}, vocabulary {c.vocab_size}"
        lines.append(f"- {params}: {shape}")
        return "\n".join(lines) + "\n"
    depth = f"{c.n_layer} layers"
    if hasattr(c, "n_dec_layer"):
        depth = f"{c.n_layer} encoder + {c.n_dec_layer} decoder layers"
    reads = f"context {c.block_size}, vocabulary {c.vocab_size}"
    if family == "vit":
        side, p = c.image_size, c.patch_size
        reads = f"{side}x{side} images in {p}x{p} patches ({c.block_size}), {c.n_classes} classes"
    lines += [
        f"- {params}: {depth}, {c.n_head} heads, width {c.n_embd}, {reads}",
        f"- positions: {c.pos_emb}; norm: {c.norm} ({c.norm_position}-norm); "
        f"MLP activation: {c.activation}",
    ]
    if "data" in config:
        corpus = config["data"].get("path") or "the embedded Python documentation"
        lines.append(f"- trained on: {corpus} ({config['data'].get('tokenizer')} tokenizer)")
    if "task" in config:
        lines.append(f"- task: {config['task']}")
    lines += [f"- {name}: {value}" for name, value in config.get("results", {}).items()]
    if family == "gpt":
        return "\n".join(lines) + "\n\n" + USE_GPT
    return "\n".join(lines) + "\n\nLoad it: `model, tokenizer = glassformer.load('THIS_FOLDER')`.\n"
