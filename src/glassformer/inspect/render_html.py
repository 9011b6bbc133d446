"""One self-contained HTML file per view: inline CSS, inline JavaScript, the data as JSON.

The CSS and the scripts are real files in `inspect/assets/` (`page.css`, `common.js` with the
helpers every view uses, and one `KIND.js` per view) read with `importlib.resources` and
inlined into each page when it is written.

Nothing is fetched: no CDN, no fonts, no images from elsewhere, so a page opens offline and
can be mailed or committed as one file. The view's data sits in a
``<script type="application/json" id="data">`` element and a small script draws it; when it
is done it sets ``data-rendered="1"`` on ``<main id="view">`` (tests/test_browser.py waits for
that in headless Chromium).
"""

import html
import json
from importlib.resources import files
from pathlib import Path

from glassformer.core.files import atomic_write_text

EXPLAIN = {
    "attention": (
        "Each row is a query position, each column a key position; a cell is how much the "
        "query attends to the key: softmax(q·k/√d + mask), so every row sums to 1. "
        "Code: src/glassformer/nn/attention.py"
    ),
    "image_attention": (
        "The image is cut into square patches, one token each. Every panel is one layer and "
        "head: a patch is tinted by how much the query (the class token, the only vector the "
        "classifier reads; without one, every patch on average) attends to it, "
        "softmax(q·k/√d) laid back on the patch grid, "
        "darkest = the head's largest weight. Code: src/glassformer/nn/patches.py, "
        "src/glassformer/models/vit.py"
    ),
    "logit_lens": (
        "Each row reads the residual stream after one layer through the final norm and the "
        "LM head, as if the model stopped there. A cell shows the most likely next token and "
        "its probability (hover for the top 5); a green border marks the token that really "
        "comes next. Code: src/glassformer/inspect/logit_lens.py"
    ),
    "next_token": (
        "The model's candidates for the token after the text, and how temperature, top-k and "
        "top-p reshape their probabilities before sampling. Move the sliders to see it live. "
        "Code: src/glassformer/generate/processors.py"
    ),
    "embeddings": (
        "Cosine similarity between embedding vectors (1 = same direction), each item's "
        "nearest neighbours, and a 2-D map along the two directions of largest variance "
        "(PCA). Code: src/glassformer/inspect/geometry.py"
    ),
    "neurons": (
        "The contexts in which one MLP neuron fires most (each token coloured by the neuron's "
        "activation there; the boxed token is the peak), and the tokens with the highest mean "
        "activation. Code: src/glassformer/nn/mlp.py, src/glassformer/inspect/neurons.py"
    ),
    "tokens": (
        "Where the tokenizer cuts the text, and each piece's id: the numbers the model "
        "actually sees. Code: src/glassformer/tokenizers/"
    ),
    "curves": (
        "Training loss at every step, validation loss at each evaluation, and the learning "
        "rate schedule, from metrics.jsonl. Code: src/glassformer/train/trainer.py"
    ),
}


def asset(name: str) -> str:
    """The text of `inspect/assets/NAME` (package data, so it ships in the wheel)."""
    return (files("glassformer.inspect") / "assets" / name).read_text(encoding="utf-8")


def page(view: dict) -> str:
    """The HTML text of `view` (a dict from one of the view functions)."""
    kind = view["kind"]
    data = json.dumps(view, ensure_ascii=False).replace("<", "\\u003c")
    subtitle = view.get("text") or view.get("source") or ""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(view["title"])} · glassformer</title>
<style>
{asset("page.css")}</style>
</head>
<body>
<h1>{html.escape(view["title"])}</h1>
<p class="explain tok">{html.escape(subtitle[:500])}</p>
<p class="explain">{html.escape(EXPLAIN[kind])}</p>
<main id="view" data-kind="{kind}"></main>
<script type="application/json" id="data">{data}</script>
<script>

{asset("common.js")}

{asset(f"{kind}.js")}
VIEW.dataset.rendered = "1";
</script>
</body>
</html>
"""


def write_html(view: dict, path: str | Path) -> Path:
    path = Path(path)
    atomic_write_text(path, page(view))
    return path
