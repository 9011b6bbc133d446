"""The next-token table: the model's candidates for the next token, and how decoding reshapes
their probabilities.

    p = softmax(logits / T)       temperature T < 1 sharpens, T > 1 flattens
    top-k: keep the k most likely tokens, renormalise
    top-p: keep the most likely tokens until their mass reaches p, renormalise

The same processors that `glassformer generate` uses (generate/processors.py) compute each
column, so the table shows exactly what sampling with those settings draws from.
"""

import torch

from glassformer.generate.processors import apply_temperature, top_k_filter, top_p_filter
from glassformer.inspect.text import as_batch, encode_prompt, token_label

# how many of the most likely tokens the HTML page carries for its live sliders
SLIDER_TOKENS = 256


def decoding_settings(temperature: float, top_k: int, top_p: float) -> list[dict]:
    """The columns of the table: raw softmax, then each setting on its own and together."""
    return [
        {"name": "T=1", "temperature": 1.0, "top_k": 0, "top_p": 1.0},
        {"name": f"T={temperature:g}", "temperature": temperature, "top_k": 0, "top_p": 1.0},
        {"name": f"top-k={top_k}", "temperature": 1.0, "top_k": top_k, "top_p": 1.0},
        {"name": f"top-p={top_p:g}", "temperature": 1.0, "top_k": 0, "top_p": top_p},
        {
            "name": f"T={temperature:g}, top-k={top_k}, top-p={top_p:g}",
            "temperature": temperature,
            "top_k": top_k,
            "top_p": top_p,
        },
    ]


def reshaped_probs(logits: torch.Tensor, temperature: float, top_k: int, top_p: float):
    """softmax(top_p(top_k(logits / T))) for logits (V,) -> probabilities (V,)."""
    x = apply_temperature(logits.float()[None], temperature)
    x = top_p_filter(top_k_filter(x, top_k), top_p)
    return torch.softmax(x, dim=-1)[0]


@torch.no_grad()
def next_token_view(
    model,
    tokenizer,
    text: str,
    top: int = 10,
    temperature: float = 0.7,
    top_k: int = 5,
    top_p: float = 0.9,
) -> dict:
    ids = encode_prompt(tokenizer, text, model.config.block_size)
    logits, _ = model(as_batch(ids, model))
    last = logits[0, -1].float()  # (V,)
    settings = decoding_settings(temperature, top_k, top_p)
    columns = [
        reshaped_probs(last, s["temperature"], s["top_k"], s["top_p"]) for s in settings
    ]  # each (V,)
    order = last.argsort(descending=True)
    candidates = [
        {
            "id": int(i),
            "token": token_label(tokenizer, int(i)),
            "logit": round(float(last[i]), 4),
            "probs": [round(float(col[i]), 4) for col in columns],
        }
        for i in order[:top]
    ]
    slider = order[:SLIDER_TOKENS]
    return {
        "kind": "next_token",
        "title": "Next-token candidates",
        "text": text,
        "context": token_label(tokenizer, ids[-1]),
        "settings": settings,
        "candidates": candidates,
        "vocab_size": int(last.numel()),
        "slider_tokens": [token_label(tokenizer, int(i)) for i in slider],
        "slider_logits": [round(float(last[i]), 4) for i in slider],
    }
