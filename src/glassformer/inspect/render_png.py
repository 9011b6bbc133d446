"""Each view as a PNG picture, drawn with matplotlib (no display needed: the Agg backend)."""

import math
from pathlib import Path

from glassformer.core.files import atomic_write


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _attention(view: dict, plt):
    panels = [
        (m, h, p) for m in view["maps"] for h, p in zip(m["head_ids"], m["heads"], strict=True)
    ]
    cols = min(4, len(panels))
    rows = math.ceil(len(panels) / cols)
    n = len(view["tokens"])
    size = max(2.5, min(8.0, 0.25 * n)) if len(panels) == 1 else max(2.5, min(4.0, 0.18 * n))
    fig, axes = plt.subplots(rows, cols, figsize=(size * cols, size * rows), squeeze=False)
    for ax in axes.flat[len(panels) :]:
        ax.axis("off")
    for ax, (m, h, p) in zip(axes.flat, panels, strict=False):
        ax.imshow(p, cmap="Blues", vmin=0, vmax=1)
        # a seq2seq map says which attention it is: encoder self, decoder self or cross
        part = {"cross": "cross ", "self": "dec " if "dec" in m["name"] else "enc "}
        ax.set_title(f"{part.get(m.get('attention'), '')}layer {m['layer']} head {h}", fontsize=9)
        if n <= 40:
            ax.set_xticks(range(len(m["keys"])), m["keys"], rotation=90, fontsize=7)
            ax.set_yticks(range(len(m["queries"])), m["queries"], fontsize=7)
        else:
            ax.set_xticks([])
            ax.set_yticks([])
    return fig


def _image_attention(view: dict, plt):
    """The image, then per layer and head the image with each patch tinted by its weight."""
    import numpy as np

    image = np.array(view["image"])  # (H, W) ink 0..1
    block = np.ones((view["patch"], view["patch"]))
    panels = [
        (m, h, np.array(w))
        for m in view["maps"]
        for h, w in zip(m["head_ids"], m["heads"], strict=True)
    ]
    cols = min(4, len(panels)) + 1
    rows = math.ceil(len(panels) / (cols - 1))
    fig, axes = plt.subplots(rows, cols, figsize=(2.4 * cols, 2.5 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    guess = ", ".join(f"{name} {p:.2f}" for name, p in view["prediction"])
    axes[0, 0].imshow(image, cmap="gray_r", vmin=0, vmax=1)
    axes[0, 0].set_title(f"input\n{guess}", fontsize=9)
    for k, (m, h, w) in enumerate(panels):
        ax = axes[k // (cols - 1), 1 + k % (cols - 1)]
        ax.imshow(image, cmap="gray_r", vmin=0, vmax=1)
        ax.imshow(np.kron(w, block), cmap="Blues", alpha=0.6, vmin=0, vmax=max(w.max(), 1e-9))
        ax.set_title(f"layer {m['layer']} head {h}", fontsize=9)
    fig.suptitle(f"{view['title']}: {view['text']}", fontsize=10)
    return fig


def _logit_lens(view: dict, plt):
    rows = view["rows"][::-1]  # last layer on top
    probs = [[c["top"][0][1] for c in r["cells"]] for r in rows]
    n = len(view["tokens"])
    fig, ax = plt.subplots(figsize=(max(6, 0.7 * n + 2), 0.55 * len(rows) + 2))
    ax.imshow(probs, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    for i, r in enumerate(rows):
        for j, c in enumerate(r["cells"]):
            tok, p = c["top"][0]
            ax.text(
                j,
                i,
                tok,
                ha="center",
                va="center",
                fontsize=8,
                color="white" if p > 0.6 else "black",
                family="monospace",
            )
    ax.set_yticks(range(len(rows)), [r["layer"] for r in rows])
    ax.set_xticks(range(n), view["tokens"], family="monospace")
    ax.set_xlabel("input position (cells: the most likely next token read from that layer)")
    ax.set_title("Logit lens")
    return fig


def _next_token(view: dict, plt):
    cands, settings = view["candidates"], view["settings"]
    fig, ax = plt.subplots(figsize=(max(6, 0.8 * len(cands) + 2), 4))
    width = 0.8 / len(settings)
    for s, setting in enumerate(settings):
        ax.bar(
            [i + s * width for i in range(len(cands))],
            [c["probs"][s] for c in cands],
            width,
            label=setting["name"],
        )
    ax.set_xticks(
        [i + 0.4 - width / 2 for i in range(len(cands))],
        [c["token"] for c in cands],
        family="monospace",
    )
    ax.set_ylabel("probability")
    ax.set_title(f"Next token after …{view['context']}")
    ax.legend(fontsize=8)
    return fig


def _embeddings(view: dict, plt):
    labels = [lab if len(lab) <= 30 else lab[:28] + "…" for lab in view["labels"]]
    n = len(labels)
    fig, (a, b) = plt.subplots(1, 2, figsize=(13, 6))
    im = a.imshow(view["similarity"], cmap="RdBu", vmin=-1, vmax=1)
    if n <= 40:
        a.set_xticks(range(n), labels, rotation=90, fontsize=7)
        a.set_yticks(range(n), labels, fontsize=7)
    a.set_title("cosine similarity")
    fig.colorbar(im, ax=a, fraction=0.046)
    xs, ys = zip(*view["pca"], strict=True)
    b.scatter(xs, ys, s=12)
    for x, y, lab in zip(xs, ys, labels, strict=True):
        b.annotate(lab, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    b.set_title(f"2-D PCA ({100 * view['pca_explained']:.1f}% of the variance)")
    fig.suptitle(view["title"])
    return fig


def _neurons(view: dict, plt):
    ctx = view["contexts"]
    fig, ax = plt.subplots(figsize=(10, 0.4 * len(ctx) + 1.5))
    labels = [
        "".join(c["tokens"][: c["focus"]])
        + "["
        + c["tokens"][c["focus"]]
        + "]"
        + "".join(c["tokens"][c["focus"] + 1 :])
        for c in ctx
    ]
    ax.barh(range(len(ctx)), [c["activation"] for c in ctx])
    ax.set_yticks(range(len(ctx)), labels, family="monospace", fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("activation ([token] is where it peaks)")
    ax.set_title(view["title"])
    return fig


def _tokens(view: dict, plt):
    toks = view["tokens"]
    per_line = 12
    lines = math.ceil(len(toks) / per_line)
    fig, ax = plt.subplots(figsize=(12, 0.8 * lines + 1))
    ax.set_xlim(0, per_line)
    ax.set_ylim(lines, -0.5)
    ax.axis("off")
    for i, t in enumerate(toks):
        x, y = i % per_line + 0.5, i // per_line + 0.2
        ax.text(
            x,
            y,
            t["label"],
            ha="center",
            family="monospace",
            fontsize=10,
            bbox={"boxstyle": "round", "facecolor": f"C{i % 10}", "alpha": 0.25},
        )
        ax.text(x, y + 0.4, str(t["id"]), ha="center", fontsize=8, color="0.4")
    ax.set_title(f"{view['chars']} characters -> {len(toks)} tokens ({view['tokenizer']})")
    return fig


def _curves(view: dict, plt):
    series = view["series"]
    fig, (a, b) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    for key, style in (("train_loss", "-"), ("val_loss", "o-")):
        if key in series:
            a.plot(*zip(*series[key], strict=True), style, lw=1, label=key)
    a.set_ylabel("loss (nats/token)")
    a.legend()
    a.grid(alpha=0.3)
    if "lr" in series:
        b.plot(*zip(*series["lr"], strict=True), color="C2")
    b.set_ylabel("learning rate")
    b.set_xlabel("step")
    b.grid(alpha=0.3)
    fig.suptitle(view["title"])
    return fig


DRAW = {
    "attention": _attention,
    "image_attention": _image_attention,
    "logit_lens": _logit_lens,
    "next_token": _next_token,
    "embeddings": _embeddings,
    "neurons": _neurons,
    "tokens": _tokens,
    "curves": _curves,
}


def write_png(view: dict, path: str | Path) -> Path:
    plt = _plt()
    fig = DRAW[view["kind"]](view, plt)
    fig.tight_layout()
    path = Path(path)
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    plt.close(fig)
    return path
