"""One self-contained HTML file per view: inline CSS, inline JavaScript, the data as JSON.

Nothing is fetched: no CDN, no fonts, no images from elsewhere, so a page opens offline and
can be mailed or committed as one file. The view's data sits in a
``<script type="application/json" id="data">`` element and a small script draws it; when it
is done it sets ``data-rendered="1"`` on ``<main id="view">`` (tests/test_browser.py waits for
that in headless Chromium).
"""

import html
import json
from pathlib import Path

from glassformer.core.files import atomic_write_text

EXPLAIN = {
    "attention": (
        "Each row is a query position, each column a key position; a cell is how much the "
        "query attends to the key: softmax(q·k/√d + mask), so every row sums to 1. "
        "Code: src/glassformer/nn/attention.py"
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

CSS = """
:root { --ink: #1f2937; --muted: #6b7280; --line: #e5e7eb; --accent: 37, 99, 235; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       color: var(--ink); margin: 24px; background: #fff; }
h1 { font-size: 20px; margin: 0 0 4px; }
h2 { font-size: 15px; margin: 20px 0 6px; }
p.explain { color: var(--muted); max-width: 880px; margin: 0 0 14px; }
.controls { display: flex; gap: 16px; align-items: center; flex-wrap: wrap; margin: 8px 0; }
.controls label { display: flex; gap: 6px; align-items: center; }
table { border-collapse: collapse; }
td, th { border: 1px solid var(--line); padding: 2px 5px; text-align: center;
         font-variant-numeric: tabular-nums; }
th { background: #f9fafb; font-weight: 600; }
.tok { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; white-space: pre; }
table.heatmap td { width: 26px; height: 22px; padding: 0; font-size: 10px; }
table.heatmap th { font-size: 11px; }
table.heatmap th.col { writing-mode: vertical-rl; transform: rotate(180deg); height: 60px; }
.thumbs { display: flex; flex-wrap: wrap; gap: 8px; }
.thumb { border: 2px solid transparent; cursor: pointer; text-align: center; font-size: 11px; }
.thumb.active { border-color: rgb(var(--accent)); }
.chip { display: inline-block; border: 1px solid #c7d2fe; border-radius: 4px; margin: 2px;
        padding: 2px 4px; text-align: center; }
.chip .id { display: block; font-size: 10px; color: var(--muted); }
.ctx { margin: 3px 0; }
.ctx span { padding: 1px 0; }
.ctx span.focus { outline: 2px solid #b91c1c; }
.bar { height: 14px; background: rgb(var(--accent)); }
.lens td { min-width: 44px; font-size: 12px; }
.lens td.hit { outline: 2px solid #059669; outline-offset: -2px; }
svg text { font: 11px system-ui, sans-serif; fill: var(--ink); }
"""

COMMON_JS = r"""
const DATA = JSON.parse(document.getElementById("data").textContent);
const VIEW = document.getElementById("view");
function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else if (k === "text") e.textContent = v;
    else if (k === "style") e.style.cssText = v; else e.setAttribute(k, v);
  }
  for (const k of kids) e.append(k);
  return e;
}
function heat(v, max) {            // 0..max -> white..blue
  const a = Math.max(0, Math.min(1, max > 0 ? v / max : 0));
  return `rgba(37, 99, 235, ${a.toFixed(3)})`;
}
function diverging(v) {            // -1..1 -> red..white..blue
  const a = Math.min(1, Math.abs(v));
  return v >= 0 ? `rgba(37, 99, 235, ${a.toFixed(3)})` : `rgba(220, 38, 38, ${a.toFixed(3)})`;
}
function ink(v, max) { return max > 0 && v / max > 0.6 ? "#fff" : "#1f2937"; }
function fmt(p) { return p.toFixed(3); }
const SVGNS = "http://www.w3.org/2000/svg";
function svg(tag, attrs, text) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}
function heatTable(rows, cols, values, max, title) {
  const t = el("table", {class: "heatmap"});
  const head = el("tr", {}, el("th", {}));
  cols.forEach(c => head.append(el("th", {class: "col tok", text: c})));
  t.append(head);
  values.forEach((row, i) => {
    const tr = el("tr", {}, el("th", {class: "tok", text: rows[i]}));
    row.forEach((v, j) => tr.append(el("td", {
      style: `background:${heat(v, max)}`, title: title(i, j, v)})));
    t.append(tr);
  });
  return t;
}
"""

VIEW_JS = {
    "attention": r"""
const maps = DATA.maps;
let current = {map: 0, head: 0};
const controls = el("div", {class: "controls"});
const mapSel = el("select", {id: "map-select"});
maps.forEach((m, i) => mapSel.append(el("option", {value: i, text: m.name})));
const headSel = el("select", {id: "head-select"});
controls.append(el("label", {}, "pattern", mapSel), el("label", {}, "head", headSel));
const thumbs = el("div", {class: "thumbs", id: "thumbs"});
const big = el("div", {id: "heatmap"});
VIEW.append(controls, el("h2", {text: "All heads"}), thumbs, el("h2", {id: "big-title"}), big);
function drawThumb(canvas, p) {
  const n = p.length, m = p[0].length, s = Math.max(2, Math.floor(96 / Math.max(n, m)));
  canvas.width = m * s; canvas.height = n * s;
  const g = canvas.getContext("2d");
  p.forEach((row, i) => row.forEach((v, j) => {
    g.fillStyle = `rgba(37, 99, 235, ${v})`; g.fillRect(j * s, i * s, s, s); }));
}
function drawThumbs() {
  thumbs.textContent = "";
  maps.forEach((m, mi) => m.heads.forEach((p, hi) => {
    const c = el("canvas");
    drawThumb(c, p);
    const box = el("div", {class: "thumb" + (mi === current.map && hi === current.head ?
      " active" : "")}, c, el("div", {text: `L${m.layer} H${m.head_ids[hi]}`}));
    box.addEventListener("click", () => { current = {map: mi, head: hi}; update(); });
    thumbs.append(box);
  }));
}
function update() {
  const m = maps[current.map];
  headSel.textContent = "";
  m.head_ids.forEach((h, i) => headSel.append(el("option", {value: i, text: h})));
  mapSel.value = current.map; headSel.value = current.head;
  const p = m.heads[current.head];
  document.getElementById("big-title").textContent =
    `${m.name}, head ${m.head_ids[current.head]} (rows: queries, columns: keys)`;
  big.textContent = "";
  big.append(heatTable(m.queries, m.keys, p, 1,
    (i, j, v) => `${m.queries[i]} → ${m.keys[j]}: ${fmt(v)}`));
  drawThumbs();
}
mapSel.addEventListener("change", () => { current = {map: +mapSel.value, head: 0}; update(); });
headSel.addEventListener("change", () => { current.head = +headSel.value; update(); });
update();
""",
    "logit_lens": r"""
const t = el("table", {class: "lens", id: "lens"});
const head = el("tr", {}, el("th", {text: "input →"}));
DATA.tokens.forEach(tok => head.append(el("th", {class: "tok", text: tok})));
t.append(head);
[...DATA.rows].reverse().forEach(row => {
  const tr = el("tr", {}, el("th", {text: row.layer}));
  row.cells.forEach((c, i) => {
    const [tok, p] = c.top[0];
    const hit = i + 1 < DATA.tokens.length && tok === DATA.tokens[i + 1];
    const tip = c.top.map(([t, q]) => `${t} ${fmt(q)}`).join("\n") +
      (c.next_prob !== undefined ? `\nnext token: p=${fmt(c.next_prob)}, rank ${c.next_rank}` : "");
    tr.append(el("td", {class: "tok" + (hit ? " hit" : ""), title: tip,
      style: `background:${heat(p, 1)};color:${ink(p, 1)}`, text: tok}));
  });
  t.append(tr);
});
const next = el("tr", {}, el("th", {text: "actual next"}));
DATA.tokens.forEach((_, i) => next.append(el("td", {class: "tok",
  text: i + 1 < DATA.tokens.length ? DATA.tokens[i + 1] : "?"})));
t.append(next);
VIEW.append(t);
""",
    "next_token": r"""
VIEW.append(el("p", {}, "Text ends with ", el("span", {class: "tok", text: DATA.context}),
  `; vocabulary: ${DATA.vocab_size} tokens.`));
const t = el("table", {id: "candidates"});
const head = el("tr", {}, el("th", {text: "token"}), el("th", {text: "id"}),
  el("th", {text: "logit"}));
DATA.settings.forEach(s => head.append(el("th", {text: s.name})));
t.append(head);
DATA.candidates.forEach(c => {
  const tr = el("tr", {}, el("td", {class: "tok", text: c.token}), el("td", {text: c.id}),
    el("td", {text: c.logit.toFixed(2)}));
  c.probs.forEach(p => tr.append(el("td", {style: `background:${heat(p, 1)};color:${ink(p, 1)}`,
    text: fmt(p)})));
  t.append(tr);
});
VIEW.append(t, el("h2", {text: "Try it: reshape the distribution"}));
const T = el("input", {type: "range", id: "temperature", min: "0.05", max: "3", step: "0.05",
  value: "1"});
const K = el("input", {type: "number", id: "top-k", min: "0",
  max: String(DATA.slider_tokens.length), value: "0"});
const P = el("input", {type: "range", id: "top-p", min: "0.05", max: "1", step: "0.01",
  value: "1"});
const out = el("span");
VIEW.append(el("div", {class: "controls"}, el("label", {}, "temperature", T),
  el("label", {}, "top-k (0: off)", K), el("label", {}, "top-p", P), out));
const bars = el("table", {id: "live"});
VIEW.append(bars);
if (DATA.vocab_size > DATA.slider_tokens.length) VIEW.append(el("p", {class: "explain",
  text: `The live bars use the ${DATA.slider_tokens.length} most likely tokens; the table ` +
  "above is exact over the whole vocabulary."}));
function live() {
  const temp = +T.value, k = +K.value, p = +P.value;
  out.textContent = `T=${temp}, top-k=${k || "off"}, top-p=${p}`;
  let x = DATA.slider_logits.map(v => v / temp);          // already sorted, most likely first
  if (k > 0) x = x.map((v, i) => i < k ? v : -Infinity);
  const m = Math.max(...x);
  let e = x.map(v => Math.exp(v - m)), z = e.reduce((a, b) => a + b, 0);
  let probs = e.map(v => v / z), before = 0;
  probs = probs.map(q => { const keep = before < p; before += q; return keep ? q : 0; });
  z = probs.reduce((a, b) => a + b, 0);
  probs = probs.map(q => q / z);
  bars.textContent = "";
  probs.slice(0, 15).forEach((q, i) => bars.append(el("tr", {},
    el("td", {class: "tok", text: DATA.slider_tokens[i]}),
    el("td", {style: "width:320px;text-align:left"}, el("div", {class: "bar",
      style: `width:${(q * 100).toFixed(1)}%`})), el("td", {text: fmt(q)}))));
}
[T, K, P].forEach(i => i.addEventListener("input", live));
live();
""",
    "embeddings": r"""
const L = DATA.labels, n = L.length;
VIEW.append(el("h2", {text: "Cosine similarity"}));
const t = el("table", {class: "heatmap", id: "similarity"});
const head = el("tr", {}, el("th"));
const short = (l, n) => l.length > n ? l.slice(0, n - 2) + "…" : l;
L.forEach(l => head.append(el("th", {class: "col tok", text: short(l, 24)})));
t.append(head);
DATA.similarity.forEach((row, i) => {
  const tr = el("tr", {}, el("th", {class: "tok", style: "text-align:left",
    text: L[i].length > 40 ? L[i].slice(0, 38) + "…" : L[i]}));
  row.forEach((v, j) => tr.append(el("td", {style: `background:${diverging(v)}`,
    title: `${L[i]} · ${L[j]}: ${fmt(v)}`})));
  t.append(tr);
});
VIEW.append(t, el("h2", {text: "Nearest neighbours"}));
const nb = el("table", {id: "neighbours"});
DATA.neighbours.forEach((row, i) => {
  const tr = el("tr", {}, el("th", {class: "tok", style: "text-align:left", text: L[i]}));
  row.forEach(([l, s]) => tr.append(el("td", {class: "tok", text: `${l}  ${fmt(s)}`})));
  nb.append(tr);
});
VIEW.append(nb, el("h2", {text:
  `2-D PCA map (${(100 * DATA.pca_explained).toFixed(1)}% of the variance)`}));
const W = 640, H = 480, pad = 40, xs = DATA.pca.map(p => p[0]), ys = DATA.pca.map(p => p[1]);
const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
const sx = v => pad + (x1 > x0 ? (v - x0) / (x1 - x0) : 0.5) * (W - 2 * pad);
const sy = v => H - pad - (y1 > y0 ? (v - y0) / (y1 - y0) : 0.5) * (H - 2 * pad);
const map = svg("svg", {width: W, height: H, id: "pca", viewBox: `0 0 ${W} ${H}`});
map.append(svg("rect", {x: 0, y: 0, width: W, height: H, fill: "#f9fafb"}));
DATA.pca.forEach(([x, y], i) => {
  map.append(svg("circle", {cx: sx(x), cy: sy(y), r: 4, fill: "rgb(37, 99, 235)"}));
  map.append(svg("text", {x: sx(x) + 6, y: sy(y) + 4},
    L[i].length > 30 ? L[i].slice(0, 28) + "…" : L[i]));
});
VIEW.append(map);
""",
    "neurons": r"""
VIEW.append(el("p", {text: `Scanned ${DATA.scanned_tokens} tokens; layer ${DATA.layer} has ` +
  `${DATA.hidden} neurons; the peak activation of neuron ${DATA.neuron} is ` +
  `${DATA.max_activation.toFixed(3)}.`}), el("h2", {text: "Top contexts"}));
const box = el("div", {id: "contexts"});
DATA.contexts.forEach(c => {
  const line = el("div", {class: "ctx tok"}, el("b", {text: c.activation.toFixed(2) + "  "}));
  c.tokens.forEach((tok, i) => line.append(el("span", {class: i === c.focus ? "focus" : "",
    title: `${tok}: ${c.acts[i].toFixed(3)}`,
    style: `background:${heat(c.acts[i], DATA.max_activation)}`, text: tok})));
  box.append(line);
});
VIEW.append(box, el("h2", {text: "Tokens with the highest mean activation"}));
const t = el("table", {id: "top-tokens"}, el("tr", {}, el("th", {text: "token"}),
  el("th", {text: "mean activation"}), el("th", {text: "count"})));
DATA.top_tokens.forEach(([tok, m, n]) => t.append(el("tr", {},
  el("td", {class: "tok", text: tok}), el("td", {text: m.toFixed(3)}), el("td", {text: n}))));
VIEW.append(t);
""",
    "tokens": r"""
VIEW.append(el("p", {text: `${DATA.tokenizer}, vocabulary ${DATA.vocab_size}: ` +
  `${DATA.chars} characters → ${DATA.tokens.length} tokens ` +
  `(${(DATA.chars / DATA.tokens.length).toFixed(2)} characters per token).`}));
const box = el("div", {id: "tokens"});
DATA.tokens.forEach((t, i) => box.append(el("span", {class: "chip tok", title: `id ${t.id}`,
  style: `background:hsl(${(i * 47) % 360}, 80%, 92%)`}, t.label,
  el("span", {class: "id", text: t.id}))));
VIEW.append(box, el("h2", {text: "Ids"}), el("p", {class: "tok", id: "ids",
  text: "[" + DATA.tokens.map(t => t.id).join(", ") + "]"}));
""",
    "curves": r"""
VIEW.append(el("p", {text: `${DATA.source}: ${DATA.steps} steps.`}));
const colors = {train_loss: "rgb(37, 99, 235)", val_loss: "#dc2626", lr: "#059669",
  tokens_per_s: "#7c3aed"};
function chart(keys, label) {
  const W = 720, H = 280, pad = 48, pts = keys.flatMap(k => DATA.series[k] || []);
  if (!pts.length) return;
  const xs = pts.map(p => p[0]), ys = pts.map(p => p[1]);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const sx = v => pad + (x1 > x0 ? (v - x0) / (x1 - x0) : 0.5) * (W - 2 * pad);
  const sy = v => H - pad - (y1 > y0 ? (v - y0) / (y1 - y0) : 0.5) * (H - 2 * pad);
  const s = svg("svg", {width: W, height: H, class: "chart", viewBox: `0 0 ${W} ${H}`});
  s.append(svg("line", {x1: pad, y1: H - pad, x2: W - pad, y2: H - pad, stroke: "#9ca3af"}));
  s.append(svg("line", {x1: pad, y1: pad, x2: pad, y2: H - pad, stroke: "#9ca3af"}));
  const range = `${y0.toPrecision(3)} … ${y1.toPrecision(3)}`;
  s.append(svg("text", {x: pad, y: pad - 8}, `${label}: ${range}`));
  s.append(svg("text", {x: W - pad, y: H - pad + 28, "text-anchor": "end"}, `step ${x0} … ${x1}`));
  keys.forEach((k, n) => {
    const d = DATA.series[k];
    if (!d) return;
    s.append(svg("polyline", {fill: "none", stroke: colors[k], "stroke-width": 1.5,
      points: d.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(" ")}));
    s.append(svg("text", {x: W - pad - 90, y: pad + 14 * n, fill: colors[k]}, k));
  });
  VIEW.append(el("h2", {text: label}), s);
}
chart(["train_loss", "val_loss"], "loss (nats/token)");
chart(["lr"], "learning rate");
chart(["tokens_per_s"], "tokens per second");
""",
}


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
<style>{CSS}</style>
</head>
<body>
<h1>{html.escape(view["title"])}</h1>
<p class="explain tok">{html.escape(subtitle[:500])}</p>
<p class="explain">{html.escape(EXPLAIN[kind])}</p>
<main id="view" data-kind="{kind}"></main>
<script type="application/json" id="data">{data}</script>
<script>
{COMMON_JS}
{VIEW_JS[kind]}
VIEW.dataset.rendered = "1";
</script>
</body>
</html>
"""


def write_html(view: dict, path: str | Path) -> Path:
    path = Path(path)
    atomic_write_text(path, page(view))
    return path
