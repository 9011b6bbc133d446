// Attention view (inspect/attention.py): a thumbnail per head, the chosen one as a heatmap.
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
