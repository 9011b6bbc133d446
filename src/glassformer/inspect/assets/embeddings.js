// Embeddings view (inspect/embeddings.py): cosine similarity, neighbours, a 2-D PCA map.
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
